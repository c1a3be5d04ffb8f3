use ed25519_dalek::SigningKey;
use hashmesh_protocol::{Body, Entry, Fingerprint, FingerprintKind, UnsignedRecord};

use super::*;

use std::collections::BTreeMap;

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
    reopen(dir, "fed", member)
}

fn reopen(dir: &Path, federation: &str, member: MemberId) -> Store {
    Store::open(dir, federation, member).expect("store opens")
}

fn load(store: &Store) -> (Vec<Record>, Vec<EquivocationProof>, BTreeMap<MemberId, Head>) {
    let mut records = Vec::new();
    let Loaded { heads, proofs } = store.load(|r| records.push(r)).expect("load");
    (records, proofs.into_values().collect(), heads)
}

#[test]
fn appended_records_survive_reopen_in_log_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = Log::new(1);
    let mut other = Log::new(2);
    let (a, b, c) = (log.entry(1), log.entry(2), other.entry(3));
    {
        let store = open(dir.path(), log.member());
        store.append([&a, &c]).expect("append");
        store.append([&b]).expect("append");
        store.flush().expect("flush");
    }
    let store = open(dir.path(), log.member());
    let (records, proofs, heads) = load(&store);
    let mut want = vec![a.clone(), b.clone(), c];
    want.sort_by_key(|r| (r.author(), r.seq()));
    assert_eq!(records, want);
    assert!(proofs.is_empty());
    assert_eq!(heads.get(&log.member()), log.head.as_ref());
    assert_eq!(heads.get(&other.member()), other.head.as_ref());
    assert_eq!(store.get_at(&log.member(), 2).expect("get"), Some(b.clone()));
    assert_eq!(store.range(&log.member(), 2, 9, 10).expect("range"), vec![b]);
    assert_eq!(store.range(&log.member(), 1, 1, 10).expect("range"), vec![a.clone()], "capped at to_seq");
    assert!(store.range(&log.member(), 3, 2, 10).expect("range").is_empty());
    let bytes = store.range_bytes(&log.member(), 1, 9, 10, 1).expect("range");
    assert_eq!(bytes, vec![a.bytes().to_vec()], "at least one record, then the byte cap");
}

#[test]
fn a_log_with_a_gap_or_a_broken_chain_is_reported_corrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = Log::new(1);
    let store = open(dir.path(), log.member());
    let _first = log.entry(1);
    store.append([&log.entry(2)]).expect("append");
    let err = store.load(|_| {}).expect_err("gap");
    assert!(err.to_string().contains("jumps to seq 2"), "{err}");

    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = Log::new(1);
    let store = open(dir.path(), log.member());
    let first = log.entry(1);
    log.head = Some(Head { seq: 1, id: RecordId([5; 32]) });
    store.append([&first, &log.entry(2)]).expect("append");
    let err = store.load(|_| {}).expect_err("broken chain");
    assert!(err.to_string().contains("does not chain"), "{err}");
    assert!(err.to_string().contains("restore the data dir"), "says what to do: {err}");
}

#[test]
fn a_proof_truncates_the_log_at_the_fork_durably() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = Log::new(1);
    let member = log.member();
    let records: Vec<Record> = (1..=4).map(|n| log.entry(n)).collect();
    log.head = Some(Head { seq: 2, id: records[1].id() });
    let fork = log.entry(9);
    let proof = EquivocationProof::new(records[2].clone(), fork).expect("proof");
    {
        let store = open(dir.path(), member);
        store.append(&records).expect("append");
        store.put_proof(&proof).expect("proof");
        assert_eq!(store.get_at(&member, 3).expect("get"), None);
    }
    let store = open(dir.path(), member);
    let (held, proofs, heads) = load(&store);
    assert_eq!(held, records[..2].to_vec());
    assert_eq!(proofs, vec![proof]);
    assert_eq!(heads.get(&member), Some(&Head { seq: 2, id: records[1].id() }));
}

#[test]
fn records_past_a_proof_left_by_a_crash_are_dropped_at_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = Log::new(1);
    let member = log.member();
    let records: Vec<Record> = (1..=3).map(|n| log.entry(n)).collect();
    log.head = Some(Head { seq: 1, id: records[0].id() });
    let proof = EquivocationProof::new(records[1].clone(), log.entry(8)).expect("proof");
    let store = open(dir.path(), member);
    store.proofs.insert(member.0, proof.encode()).expect("insert"); // the proof, but no truncation
    store.append(&records).expect("append");
    let (held, _, _) = load(&store);
    assert_eq!(held, records[..1].to_vec());
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
fn range_bytes_stops_only_past_the_byte_cap_and_within_the_seqs_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = Log::new(1);
    let store = open(dir.path(), log.member());
    let records: Vec<Record> = (1..=3).map(|n| log.entry(n)).collect();
    store.append(&records).expect("append");
    let bytes: Vec<Vec<u8>> = records.iter().map(|r| r.bytes().to_vec()).collect();
    let two = bytes[0].len() + bytes[1].len();
    let member = log.member();
    assert_eq!(store.range_bytes(&member, 1, 9, 10, two).expect("range"), bytes[..2].to_vec(), "exact fit");
    assert_eq!(store.range_bytes(&member, 1, 9, 10, two - 1).expect("range"), bytes[..1].to_vec());
    assert_eq!(store.range_bytes(&member, 1, 9, 2, usize::MAX).expect("range"), bytes[..2].to_vec(), "limit");
    assert_eq!(store.range_bytes(&member, 2, 2, 10, usize::MAX).expect("range"), bytes[1..2].to_vec());
    assert!(store.range_bytes(&member, 3, 2, 10, usize::MAX).expect("range").is_empty());
    assert_eq!(store.range(&member, 2, 3, 1).expect("range"), records[1..2].to_vec(), "limit");
    assert_eq!(store.get_at(&member, 4).expect("get"), None);
    assert_eq!(store.get_at(&Log::new(2).member(), 1).expect("get"), None, "another author's key");
}

#[test]
fn a_record_filed_under_another_key_is_reported_corrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = Log::new(1);
    let store = open(dir.path(), log.member());
    let first = log.entry(1);
    store.records.insert(log_key(&log.member(), 7), first.bytes()).expect("insert");
    let err = store.load(|_| {}).expect_err("wrong key");
    assert!(err.to_string().contains("filed under the wrong key"), "{err}");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), log.member());
    store.records.insert(log_key(&log.member(), 1), &b"not a record"[..]).expect("insert");
    let err = store.load(|_| {}).expect_err("garbage");
    assert!(err.to_string().contains("stored record does not decode"), "{err}");
}

#[test]
fn a_store_held_open_is_refused_after_a_bounded_wait_and_freed_on_close() {
    let dir = tempfile::tempdir().expect("tempdir");
    let member = Log::new(1).member();
    let held = open(dir.path(), member);
    let t = std::time::Instant::now();
    let err = Store::open(dir.path(), "fed", member).err().map(|e| e.to_string()).unwrap_or_default();
    let waited = t.elapsed();
    assert!(err.contains("another hashmesh process"), "says what to check: {err}");
    assert!(
        waited >= LOCK_WAIT && waited < LOCK_WAIT * 3,
        "waited {waited:?} for the lock, not forever or not at all"
    );
    drop(held);
    // Once closed, the store opens again (sled lets go of its lock from a background thread).
    drop(open(dir.path(), member));
}

/// A store passes from a key to its successor only from the key it belongs to, and a store
/// of another member is still refused.
#[test]
fn a_store_passes_to_a_rotated_key_and_to_no_other() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (old, new, other) = (MemberId([1; 32]), MemberId([2; 32]), MemberId([3; 32]));
    let store = Store::open(dir.path(), "fed", old).expect("opens");
    assert_eq!(store.member().expect("read"), Some(old));
    assert!(!store.pass_to(other, new).expect("cas"), "not other's store");
    assert_eq!(store.member().expect("read"), Some(old));
    let refused = store.claim_member(dir.path(), new, None).expect_err("another key");
    assert!(matches!(refused, StoreError::WrongIdentity { .. }), "{refused}");
    store.claim_member(dir.path(), new, Some(old)).expect("rotated to new");
    assert_eq!(store.member().expect("read"), Some(new));
    assert!(!store.pass_to(old, other).expect("cas"), "passed once, from its holder only");
    drop(store);
    let unclaimed =
        Store::open_unclaimed(tempfile::tempdir().expect("tempdir").path(), "fed").expect("opens");
    assert_eq!(unclaimed.member().expect("read"), None);
}
