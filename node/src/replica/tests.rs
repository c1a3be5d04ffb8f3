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
    Replica::open(store, manifest(&[1, 2, 3])).expect("load")
}

/// Signs and stores one own record.
fn author(r: &mut Replica, me: u8, body: Body) -> Record {
    let mut records = r.author(&key(me), vec![body], 5).expect("author");
    r.commit(true).expect("commit");
    records.pop().expect("one record")
}

/// Verifies, stages and stores one record from outside.
fn ingest(r: &mut Replica, record: &Record) -> Result<Ingested, IngestError> {
    let outcome = r.ingest(Verified::check(record.clone())?);
    r.commit(false).expect("commit");
    outcome
}

fn status(r: &Replica, entry: &RecordId) -> Status {
    let view = r.read_view();
    view.catalog().get(entry).expect("entry known").votes.status(view.policy(), 0)
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
fn tampered_record_fails_the_signature_check_that_ingest_requires() {
    let mut source = replica(&tempfile::tempdir().expect("tempdir").keep(), 1);
    let record = author(&mut source, 1, entry(1));
    let mut bytes = record.bytes().to_vec();
    let at = bytes.len() - 70; // inside the body, before the signature
    bytes[at] ^= 0x01;
    let tampered = Record::decode(&bytes).expect("still well-formed");
    assert_eq!(Verified::check(tampered.clone()).err(), Some(ValidationError::BadSignature(tampered.id())));
    let (verified, error) = verify_run(vec![record.clone(), tampered.clone(), record]);
    assert_eq!(verified.len(), 1, "the run stops at the bad record");
    assert_eq!(error, Some(ValidationError::BadSignature(tampered.id())));
}

#[test]
fn out_of_order_records_wait_then_land_in_order() {
    let mut source = replica(&tempfile::tempdir().expect("tempdir").keep(), 1);
    let records: Vec<Record> = (1..=5).map(|n| author(&mut source, 1, entry(n))).collect();
    let mut target = replica(&tempfile::tempdir().expect("tempdir").keep(), 2);
    for r in records.iter().rev().take(4) {
        assert_eq!(ingest(&mut target, r).expect("ingest"), Ingested::Buffered { next: 1 });
    }
    assert_eq!(target.read_view().buffered(), 4);
    assert_eq!(ingest(&mut target, &records[0]).expect("ingest"), Ingested::Stored { also: 4 });
    assert_eq!(target.read_view().buffered(), 0);
    assert_eq!(target.read_view().records(), 5);
    assert_eq!(target.read_view().clock()[&records[0].author()].id, records[4].id());
    assert_eq!(ingest(&mut target, &records[2]).expect("ingest"), Ingested::Duplicate);
}

#[test]
fn non_member_records_are_refused() {
    let mut outsider = replica(&tempfile::tempdir().expect("tempdir").keep(), 1);
    outsider.manifest = manifest(&[9]);
    let record = author(&mut outsider, 9, entry(1));
    let mut target = replica(&tempfile::tempdir().expect("tempdir").keep(), 2);
    assert!(matches!(ingest(&mut target, &record), Err(IngestError::Invalid(ValidationError::NotMember(_)))));
    assert_eq!(target.read_view().records(), 0);
}

#[test]
fn votes_arriving_before_their_entry_still_count() {
    let mut a = replica(&tempfile::tempdir().expect("tempdir").keep(), 1);
    let mut b = replica(&tempfile::tempdir().expect("tempdir").keep(), 2);
    let mut c = replica(&tempfile::tempdir().expect("tempdir").keep(), 3);
    let e = author(&mut a, 1, entry(7));
    ingest(&mut b, &e).expect("ingest");
    ingest(&mut c, &e).expect("ingest");
    let vb = author(&mut b, 2, vote(e.id(), Verdict::Confirm));
    let vc = author(&mut c, 3, vote(e.id(), Verdict::Confirm));
    let mut late = replica(&tempfile::tempdir().expect("tempdir").keep(), 1);
    ingest(&mut late, &vc).expect("ingest");
    ingest(&mut late, &vb).expect("ingest");
    assert!(late.read_view().catalog().get(&e.id()).is_none());
    ingest(&mut late, &e).expect("ingest");
    assert_eq!(status(&late, &e.id()), Status::Verified);
}

#[test]
fn catalog_and_clock_are_rebuilt_after_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (id, clock) = {
        let mut r = replica(dir.path(), 1);
        let id = author(&mut r, 1, entry(3)).id();
        (id, r.read_view().clock().clone())
    };
    let r = replica(dir.path(), 1);
    let fp = Fingerprint::new(FingerprintKind::Sha1, vec![3; 20]).expect("valid");
    assert_eq!(r.read_view().catalog().exact(&fp), &[id]);
    assert_eq!(r.read_view().clock(), &clock);
}

#[test]
fn staged_records_are_invisible_until_committed() {
    let mut r = replica(&tempfile::tempdir().expect("tempdir").keep(), 1);
    let staged = r.author(&key(1), vec![entry(1), entry(2)], 0).expect("author");
    assert_eq!(r.head(&staged[0].author()).map(|h| h.seq), Some(2), "the writer sees what it staged");
    assert_eq!(r.read_view().records(), 0, "readers do not");
    assert!(r.read_view().clock().is_empty());
    r.commit(true).expect("commit");
    assert_eq!(r.read_view().records(), 2);
}

/// Member 2's key signs two histories from a common prefix: a confirm on one, a dispute on
/// the other, both at seq 2.
fn forked_votes(e: &Record) -> (Record, Record, Record) {
    let mut honest = replica(&tempfile::tempdir().expect("tempdir").keep(), 2);
    let mut copy = replica(&tempfile::tempdir().expect("tempdir").keep(), 2);
    let base = author(&mut honest, 2, entry(50));
    ingest(&mut copy, &base).expect("ingest");
    for r in [&mut honest, &mut copy] {
        ingest(r, e).expect("ingest");
    }
    let confirm = author(&mut honest, 2, vote(e.id(), Verdict::Confirm));
    let dispute = author(&mut copy, 2, vote(e.id(), Verdict::Dispute));
    (base, confirm, dispute)
}

#[test]
fn equivocation_forks_the_author_whichever_branch_arrived_first() {
    let mut a = replica(&tempfile::tempdir().expect("tempdir").keep(), 1);
    let e = author(&mut a, 1, entry(1));
    let (base, confirm, dispute) = forked_votes(&e);
    let mut digests = Vec::new();
    for (first, second) in [(&confirm, &dispute), (&dispute, &confirm)] {
        let mut r = replica(&tempfile::tempdir().expect("tempdir").keep(), 3);
        for rec in [&e, &base, first] {
            ingest(&mut r, rec).expect("ingest");
        }
        assert_eq!(ingest(&mut r, second).expect("ingest"), Ingested::Equivocation);
        let view = r.read_view();
        assert!(view.policy().forked.contains(&base.author()));
        assert_eq!(view.clock()[&base.author()].seq, 1, "the forked log counts up to the fork point");
        assert_eq!(view.clock()[&base.author()].fork.map(|f| f.seq), Some(2));
        assert_eq!(view.records(), 2, "the entry and the forked author's first record");
        digests.push(crate::sync::digest(view.clock()));
        drop(view);
        assert_eq!(status(&r, &e.id()), Status::Pending, "the forked member's vote does not count");
        assert_eq!(status(&r, &base.id()), Status::Disputed, "its entries go to review");
        assert_eq!(ingest(&mut r, &confirm).expect("ingest"), Ingested::PastFork);
    }
    assert_eq!(digests[0], digests[1], "both orders end in the same replica");
}

#[test]
fn a_conflict_further_back_is_reported_for_search() {
    let mut a = replica(&tempfile::tempdir().expect("tempdir").keep(), 1);
    let e = author(&mut a, 1, entry(1));
    let (base, confirm, _) = forked_votes(&e);
    // A third history that shares nothing with the others after seq 0.
    let mut rogue = replica(&tempfile::tempdir().expect("tempdir").keep(), 2);
    author(&mut rogue, 2, entry(99));
    let rogue_second = author(&mut rogue, 2, entry(98));
    let mut r = replica(&tempfile::tempdir().expect("tempdir").keep(), 3);
    for rec in [&e, &base, &confirm] {
        ingest(&mut r, rec).expect("ingest");
    }
    assert_eq!(ingest(&mut r, &rogue_second).expect("ingest"), Ingested::Conflict { seq: 2 });
    assert!(r.read_view().proofs().is_empty(), "no proof without a common predecessor");
}

#[test]
fn a_forked_member_cannot_author() {
    let mut a = replica(&tempfile::tempdir().expect("tempdir").keep(), 2);
    let e = {
        let mut other = replica(&tempfile::tempdir().expect("tempdir").keep(), 1);
        author(&mut other, 1, entry(1))
    };
    let (base, confirm, dispute) = forked_votes(&e);
    for rec in [&e, &base, &confirm, &dispute] {
        let _ = ingest(&mut a, rec);
    }
    assert!(matches!(a.author(&key(2), vec![entry(5)], 0), Err(AuthorError::Forked(2))));
}
