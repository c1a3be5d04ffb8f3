use ed25519_dalek::SigningKey;
use hashmesh_protocol::{
    Entry, Fingerprint, FingerprintKind, MemberInfo, PolicyParams, RecordId, Status, Verdict, Vote,
};

use super::*;

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn manifest(members: &[u8]) -> Manifest {
    Manifest {
        name: "fed".into(),
        epoch: 1,
        policy: PolicyParams::default(),
        members: members
            .iter()
            .map(|n| MemberInfo {
                name: format!("m{n}"),
                key: MemberId::from_key(&key(*n).verifying_key()),
                peers: vec![],
                addresses: vec![],
            })
            .collect(),
    }
}

fn replica(dir: &std::path::Path, me: u8) -> Replica {
    let store = Store::open(dir, "fed", MemberId::from_key(&key(me).verifying_key())).expect("open");
    Replica::load(store, manifest(&[1, 2, 3])).expect("load")
}

fn entry(n: u8) -> Body {
    Body::Entry(Entry {
        fingerprints: vec![Fingerprint::new(FingerprintKind::Sha1, vec![n; 20]).expect("valid")],
        category: "drugs".parse().expect("valid"),
        links: vec!["https://example.com/x".into()],
        note: None,
        expires_at: None,
    })
}

fn vote(entry: RecordId, verdict: Verdict) -> Body {
    Body::Vote(Vote { entry, verdict, reason: None, reviewer: None })
}

#[test]
fn tampered_record_is_rejected_and_not_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut source = replica(&tempfile::tempdir().expect("tempdir").keep(), 1);
    let record = source.author(&key(1), entry(1), 5).expect("author");
    let mut bytes = record.bytes().to_vec();
    let last = bytes.len() - 70; // inside the body, before the signature
    bytes[last] ^= 0x01;
    let mut target = replica(dir.path(), 2);
    let outcome =
        Record::decode(&bytes).map_err(ValidationError::from).and_then(|r| r.verify_signature().map(|()| r));
    match outcome {
        Err(_) => {}
        Ok(r) => assert!(target.ingest(r).is_err(), "a tampered record must be refused"),
    }
    assert!(target.store().is_empty());
}

#[test]
fn out_of_order_records_wait_then_land_in_order() {
    let mut source = replica(&tempfile::tempdir().expect("tempdir").keep(), 1);
    let records: Vec<Record> =
        (1..=5).map(|n| source.author(&key(1), entry(n), 0).expect("author")).collect();
    let mut target = replica(&tempfile::tempdir().expect("tempdir").keep(), 2);
    for r in records.iter().rev().take(4) {
        assert!(matches!(target.ingest(r.clone()).expect("ingest"), Ingested::Buffered { next: 1 }));
    }
    assert_eq!(target.buffered(), 4);
    let Ingested::Stored { also } = target.ingest(records[0].clone()).expect("ingest") else {
        panic!("not stored")
    };
    assert_eq!(also.len(), 4);
    assert_eq!(target.buffered(), 0);
    assert_eq!(target.store().len(), 5);
}

#[test]
fn non_member_records_are_refused() {
    let mut outsider = replica(&tempfile::tempdir().expect("tempdir").keep(), 1);
    let mut manifest_with_9 = manifest(&[9]);
    std::mem::swap(&mut outsider.manifest, &mut manifest_with_9);
    let record = outsider.author(&key(9), entry(1), 0).expect("author");
    let mut target = replica(&tempfile::tempdir().expect("tempdir").keep(), 2);
    assert!(matches!(target.ingest(record), Err(IngestError::Invalid(ValidationError::NotMember(_)))));
}

#[test]
fn votes_arriving_before_their_entry_still_count() {
    let mut a = replica(&tempfile::tempdir().expect("tempdir").keep(), 1);
    let mut b = replica(&tempfile::tempdir().expect("tempdir").keep(), 2);
    let mut c = replica(&tempfile::tempdir().expect("tempdir").keep(), 3);
    let e = a.author(&key(1), entry(7), 0).expect("author");
    b.ingest(e.clone()).expect("ingest");
    c.ingest(e.clone()).expect("ingest");
    let vb = b.author(&key(2), vote(e.id(), Verdict::Confirm), 0).expect("vote");
    let vc = c.author(&key(3), vote(e.id(), Verdict::Confirm), 0).expect("vote");
    let mut late = replica(&tempfile::tempdir().expect("tempdir").keep(), 1);
    late.ingest(vc).expect("ingest");
    late.ingest(vb).expect("ingest");
    assert!(late.catalog().get(&e.id()).is_none());
    late.ingest(e.clone()).expect("ingest");
    let state = late.catalog().get(&e.id()).expect("entry known");
    assert_eq!(state.votes.status(&late.manifest().policy(), 0), Status::Verified);
}

#[test]
fn catalog_is_rebuilt_after_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let id = {
        let mut r = replica(dir.path(), 1);
        r.author(&key(1), entry(3), 0).expect("author").id()
    };
    let r = replica(dir.path(), 1);
    let fp = Fingerprint::new(FingerprintKind::Sha1, vec![3; 20]).expect("valid");
    assert_eq!(r.catalog().exact(&fp), &[id]);
}
