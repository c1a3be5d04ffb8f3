use ed25519_dalek::SigningKey;
use hashmesh_protocol::{Entry, Fingerprint, FingerprintKind, UnsignedRecord};

use super::*;

struct Log {
    key: SigningKey,
    head: Option<Head>,
}

impl Log {
    fn new(seed: u8) -> Self {
        Self { key: SigningKey::from_bytes(&[seed; 32]), head: None }
    }
    fn member(&self) -> MemberId {
        MemberId::from_key(&self.key.verifying_key())
    }
    fn entry(&mut self, n: u8) -> Record {
        let body = Body::Entry(Entry {
            fingerprints: vec![Fingerprint::new(FingerprintKind::Md5, vec![n; 16]).expect("valid")],
            category: "csam".parse().expect("valid"),
            links: vec![],
            note: None,
            expires_at: None,
        });
        let seq = self.head.map_or(1, |h| h.seq + 1);
        let record = UnsignedRecord {
            author: self.member(),
            seq,
            prev: self.head.map_or(RecordId::ZERO, |h| h.id),
            timestamp: 0,
            body,
        }
        .sign(&self.key)
        .expect("within limits");
        self.head = Some(Head { seq, id: record.id() });
        record
    }
}

fn open(dir: &Path, member: MemberId) -> Store {
    Store::open(dir, "fed", member).expect("store opens")
}

#[test]
fn appends_in_order_indexes_and_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = Log::new(1);
    let (a, b) = (log.entry(1), log.entry(2));
    {
        let store = open(dir.path(), log.member());
        assert_eq!(store.append(&a).expect("append"), Appended::New);
        assert_eq!(store.append(&a).expect("append"), Appended::Duplicate);
        assert_eq!(store.append(&b).expect("append"), Appended::New);
        store.db.flush().expect("flush");
    }
    let store = open(dir.path(), log.member());
    assert_eq!(store.len(), 2);
    assert_eq!(store.head(&log.member()).expect("head"), log.head);
    assert_eq!(store.get(&b.id()).expect("get"), Some(b.clone()));
    assert_eq!(store.entries_with(FingerprintKind::Md5.tag(), &[2; 16]).expect("scan"), vec![b.id()]);
    assert_eq!(store.range(&log.member(), 2, 10).expect("range"), vec![b]);
}

#[test]
fn gaps_are_reported_not_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = Log::new(1);
    let store = open(dir.path(), log.member());
    let _first = log.entry(1);
    let second = log.entry(2);
    assert_eq!(store.append(&second).expect("append"), Appended::Gap { next: 1 });
    assert!(store.is_empty());
}

#[test]
fn equivocation_is_kept_as_evidence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = Log::new(1);
    let store = open(dir.path(), log.member());
    let first = log.entry(1);
    log.head = None;
    let fork = log.entry(9);
    assert_eq!(store.append(&first).expect("append"), Appended::New);
    assert_eq!(store.append(&fork).expect("append"), Appended::Equivocation { existing: first.id() });
    assert_eq!(store.get_at(&log.member(), 1).expect("get"), Some(first));
    assert_eq!(store.evidence().expect("evidence"), vec![fork]);
}

#[test]
fn broken_chain_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = Log::new(1);
    let store = open(dir.path(), log.member());
    store.append(&log.entry(1)).expect("append");
    log.head = Some(Head { seq: 1, id: RecordId([5; 32]) });
    let bad = log.entry(2);
    assert!(matches!(store.append(&bad), Err(StoreError::Invalid(_))));
}

#[test]
fn refuses_another_federation_or_identity() {
    let dir = tempfile::tempdir().expect("tempdir");
    let member = Log::new(1).member();
    drop(open(dir.path(), member));
    let err = Store::open(dir.path(), "other", member).err().expect("must refuse");
    assert!(err.to_string().contains("belongs to federation \"fed\""), "{err}");
    let err = Store::open(dir.path(), "fed", Log::new(2).member()).err().expect("must refuse");
    assert!(matches!(err, StoreError::WrongIdentity { .. }), "{err}");
}

#[test]
fn a_run_is_stored_up_to_the_first_record_that_does_not_follow() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = Log::new(1);
    let store = open(dir.path(), log.member());
    let run: Vec<Record> = (1..=5).map(|n| log.entry(n)).collect();
    assert_eq!(store.append_run(&run[..2]).expect("run"), 2);
    // Already-held records and gaps end a run.
    assert_eq!(store.append_run(&run[1..]).expect("run"), 0);
    assert_eq!(store.append_run(&[run[3].clone(), run[4].clone()]).expect("run"), 0);
    assert_eq!(store.append_run(&run[2..]).expect("run"), 3);
    assert_eq!(store.head(&log.member()).expect("head"), log.head);
    assert_eq!(store.entries_with(FingerprintKind::Md5.tag(), &[4; 16]).expect("scan"), vec![run[3].id()]);
}
