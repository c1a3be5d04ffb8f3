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
        retired: Vec::new(),
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
    let member = MemberId::from_key(&key(me).verifying_key());
    let store = Store::open(dir, "fed", member).expect("store opens");
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
    outsider.governance = hashmesh_protocol::Governance::new(manifest(&[9]));
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

/// A record of member `me` at any position, chained or not.
fn signed(me: u8, seq: u64, prev: RecordId, body: Body) -> Record {
    let author = MemberId::from_key(&key(me).verifying_key());
    UnsignedRecord { author, seq, prev, timestamp: 9, body }.sign(&key(me)).expect("within limits")
}

fn retract(entry: RecordId) -> Body {
    Body::Retract(hashmesh_protocol::Retract { entry, reason: None })
}

#[test]
fn ingest_itself_refuses_what_the_rules_refuse() {
    let mut a = replica(&tempfile::tempdir().expect("tempdir").keep(), 1);
    let unknown = Body::Entry(Entry {
        fingerprints: vec![Fingerprint::new(FingerprintKind::Sha1, vec![1; 20]).expect("valid")],
        category: "weapons".parse().expect("valid"),
        links: vec![],
        note: None,
        expires_at: None,
    });
    let record = signed(1, 1, RecordId::ZERO, unknown);
    assert!(matches!(
        ingest(&mut a, &record),
        Err(IngestError::Invalid(ValidationError::UnknownCategory(c))) if c == "weapons"
    ));
    let zero = signed(1, 0, RecordId::ZERO, entry(1));
    assert!(matches!(ingest(&mut a, &zero), Err(IngestError::Invalid(ValidationError::ZeroSeq))));
    assert_eq!(a.read_view().records(), 0);
}

#[test]
fn record_at_reads_staged_records_past_the_committed_head() {
    let mut r = replica(&tempfile::tempdir().expect("tempdir").keep(), 1);
    let committed = r.author(&key(1), vec![entry(1), entry(2)], 0).expect("author");
    r.commit(true).expect("commit");
    let staged = r.author(&key(1), vec![entry(3), entry(4)], 0).expect("author");
    let me = committed[0].author();
    for (seq, want) in [(1, &committed[0]), (2, &committed[1]), (3, &staged[0]), (4, &staged[1])] {
        assert_eq!(r.record_at(&me, seq).expect("read").as_ref(), Some(want), "seq {seq}");
    }
    assert_eq!(r.record_at(&me, 5).expect("read"), None);
    assert_eq!(r.head(&me), Some(Head { seq: 4, id: staged[1].id() }));
    assert_eq!(staged[0].prev(), committed[1].id(), "own records chain across commits");
}

#[test]
fn a_record_that_does_not_follow_the_head_is_a_conflict_one_below_it() {
    let mut source = replica(&tempfile::tempdir().expect("tempdir").keep(), 2);
    let first = author(&mut source, 2, entry(1));
    let off_chain = signed(2, 2, RecordId([3; 32]), entry(2));
    let mut r = replica(&tempfile::tempdir().expect("tempdir").keep(), 3);
    ingest(&mut r, &first).expect("ingest");
    assert_eq!(ingest(&mut r, &off_chain).expect("ingest"), Ingested::Conflict { seq: 1 });
    assert_eq!(r.read_view().records(), 1);
}

#[test]
fn ingest_run_counts_what_became_of_each_record() {
    let mut source = replica(&tempfile::tempdir().expect("tempdir").keep(), 2);
    let records: Vec<Record> = (1..=4).map(|n| author(&mut source, 2, entry(n))).collect();
    let mut r = replica(&tempfile::tempdir().expect("tempdir").keep(), 3);
    ingest(&mut r, &records[0]).expect("ingest");
    let run = [&records[0], &records[3], &records[2], &records[1]]
        .into_iter()
        .map(|rec| Verified::check(rec.clone()).expect("signed"))
        .collect();
    let outcome = r.ingest_run(run);
    assert_eq!((outcome.stored, outcome.duplicates, outcome.buffered), (3, 1, 2));
    assert!(outcome.error.is_none() && outcome.conflict.is_none() && !outcome.equivocation);
    r.commit(false).expect("commit");
    assert_eq!(r.read_view().records(), 4);
    // A run stops at the first refused record.
    let outsider = signed(9, 1, RecordId::ZERO, entry(1));
    let run = vec![
        Verified::check(outsider).expect("signed"),
        Verified::check(records[0].clone()).expect("signed"),
    ];
    let outcome = r.ingest_run(run);
    assert!(matches!(outcome.error, Some(IngestError::Invalid(ValidationError::NotMember(_)))));
    assert_eq!(outcome.duplicates, 0, "nothing after the refused record was looked at");
}

#[test]
fn a_buffered_record_off_the_chain_is_dropped_not_stored() {
    let mut source = replica(&tempfile::tempdir().expect("tempdir").keep(), 2);
    let first = author(&mut source, 2, entry(1));
    let off_chain = signed(2, 2, RecordId([3; 32]), entry(2));
    let mut r = replica(&tempfile::tempdir().expect("tempdir").keep(), 3);
    assert_eq!(ingest(&mut r, &off_chain).expect("ingest"), Ingested::Buffered { next: 1 });
    assert_eq!(ingest(&mut r, &first).expect("ingest"), Ingested::Stored { also: 0 });
    assert_eq!((r.read_view().records(), r.read_view().buffered()), (1, 0));
}

#[test]
fn a_buffered_record_at_or_past_a_proven_fork_is_never_stored() {
    // Member 2 writes seqs 1..=3; a copy of its data dir signs another seq 3.
    let mut honest = replica(&tempfile::tempdir().expect("tempdir").keep(), 2);
    let log: Vec<Record> = (1..=3).map(|n| author(&mut honest, 2, entry(n))).collect();
    let other = signed(2, 3, log[1].id(), entry(30));
    let proof = EquivocationProof::new(log[2].clone(), other).expect("a fork at seq 3");
    let mut r = replica(&tempfile::tempdir().expect("tempdir").keep(), 3);
    ingest(&mut r, &log[0]).expect("ingest");
    assert_eq!(ingest(&mut r, &log[2]).expect("ingest"), Ingested::Buffered { next: 2 });
    assert!(r.offer_proof(proof.clone()));
    assert!(!r.offer_proof(proof.clone()), "the same proof again changes nothing");
    r.commit(false).expect("commit");
    assert_eq!(r.proof(&log[0].author()), Some(&proof));
    assert_eq!(ingest(&mut r, &log[1]).expect("ingest"), Ingested::Stored { also: 0 });
    assert_eq!(r.read_view().records(), 2, "seq 3 is past the fork");
    assert_eq!(r.read_view().clock()[&log[0].author()].seq, 2);
}

#[test]
fn staged_records_past_a_new_proof_are_dropped_and_a_better_proof_replaces_a_held_one() {
    let mut honest = replica(&tempfile::tempdir().expect("tempdir").keep(), 2);
    let log: Vec<Record> = (1..=4).map(|n| author(&mut honest, 2, entry(n))).collect();
    let at3 = EquivocationProof::new(log[2].clone(), signed(2, 3, log[1].id(), entry(30))).expect("fork");
    let at2 = EquivocationProof::new(log[1].clone(), signed(2, 2, log[0].id(), entry(20))).expect("fork");
    let mut r = replica(&tempfile::tempdir().expect("tempdir").keep(), 3);
    for rec in &log {
        assert!(matches!(
            r.ingest(Verified::check(rec.clone()).expect("signed")),
            Ok(Ingested::Stored { .. })
        ));
    }
    assert!(r.offer_proof(at3.clone()));
    assert_eq!(r.head(&log[0].author()).map(|h| h.seq), Some(2), "staged seqs 3 and 4 dropped");
    let committed = r.commit(false).expect("commit");
    assert_eq!(committed.proofs, vec![at3.clone()]);
    assert_eq!(r.read_view().records(), 2);
    assert!(!r.offer_proof(at3), "no better than the one held");
    assert!(r.offer_proof(at2.clone()), "a lower fork point ranks first");
    let committed = r.commit(false).expect("commit");
    assert_eq!(committed.proofs, vec![at2.clone()]);
    assert_eq!(r.proof(&log[0].author()), Some(&at2));
    assert_eq!(r.read_view().records(), 1);
    assert_eq!(r.read_view().clock()[&log[0].author()].fork.map(|f| f.seq), Some(2));
}

#[test]
fn a_retraction_before_its_entry_still_retracts_and_only_its_author_can() {
    let mut a = replica(&tempfile::tempdir().expect("tempdir").keep(), 1);
    let e = author(&mut a, 1, entry(4));
    let own = author(&mut a, 1, retract(e.id()));
    let mut b = replica(&tempfile::tempdir().expect("tempdir").keep(), 2);
    let e2 = {
        let mut c = replica(&tempfile::tempdir().expect("tempdir").keep(), 3);
        author(&mut c, 3, entry(5))
    };
    let foreign = author(&mut b, 2, retract(e2.id()));
    let mut late = replica(&tempfile::tempdir().expect("tempdir").keep(), 3);
    // Member 1's retraction (seq 2) arrives first and waits for seq 1, then the entry; member
    // 2's retraction of member 3's entry arrives before that entry.
    assert_eq!(ingest(&mut late, &own).expect("ingest"), Ingested::Buffered { next: 1 });
    ingest(&mut late, &foreign).expect("ingest");
    ingest(&mut late, &e).expect("ingest");
    ingest(&mut late, &e2).expect("ingest");
    assert_eq!(status(&late, &e.id()), Status::Retracted);
    assert_eq!(status(&late, &e2.id()), Status::Pending, "only an entry's author may retract it");
    let view = late.read_view();
    assert_eq!(view.catalog().get(&e.id()).map(|s| s.votes.is_retracted()), Some(true));
}

#[test]
fn an_entry_past_its_expiry_is_expired() {
    let mut a = replica(&tempfile::tempdir().expect("tempdir").keep(), 1);
    let expiring = Body::Entry(Entry {
        fingerprints: vec![Fingerprint::new(FingerprintKind::Sha1, vec![8; 20]).expect("valid")],
        category: "drugs".parse().expect("valid"),
        links: vec![],
        note: None,
        expires_at: Some(1_000),
    });
    let e = author(&mut a, 1, expiring);
    let view = a.read_view();
    let votes = &view.catalog().get(&e.id()).expect("entry").votes;
    assert_eq!(votes.status(view.policy(), 999), Status::Pending);
    assert_eq!(votes.status(view.policy(), 1_000), Status::Expired);
    assert_eq!(Status::Expired.action(), hashmesh_protocol::Action::None);
}

#[test]
fn the_catalog_lists_entries_in_id_order_after_a_cursor() {
    let mut a = replica(&tempfile::tempdir().expect("tempdir").keep(), 1);
    let mut ids: Vec<RecordId> = (1..=4).map(|n| author(&mut a, 1, entry(n)).id()).collect();
    author(&mut a, 1, vote(ids[0], Verdict::Confirm));
    ids.sort();
    let view = a.read_view();
    let catalog = view.catalog();
    assert_eq!((catalog.len(), catalog.is_empty()), (4, false));
    assert_eq!(catalog.after(None).map(|s| s.id).collect::<Vec<_>>(), ids);
    assert_eq!(catalog.after(Some(ids[1])).map(|s| s.id).collect::<Vec<_>>(), ids[2..].to_vec());
    assert!(Catalog::default().is_empty());
    assert_eq!(view.records(), 5);
}

#[test]
fn a_reopened_replica_counts_every_stored_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let mut r = replica(dir.path(), 1);
        let e = author(&mut r, 1, entry(1));
        author(&mut r, 1, vote(e.id(), Verdict::Confirm));
        author(&mut r, 1, entry(2));
    }
    let r = replica(dir.path(), 1);
    assert_eq!(r.read_view().records(), 3);
    assert_eq!(r.read_view().catalog().len(), 2);
}

#[test]
fn perceptual_fingerprints_go_to_the_perceptual_index_exact_ones_do_not() {
    let mut a = replica(&tempfile::tempdir().expect("tempdir").keep(), 1);
    let pdq = Fingerprint::new(FingerprintKind::Pdq, vec![0x5a; 32]).expect("valid");
    let sha1 = Fingerprint::new(FingerprintKind::Sha1, vec![2; 20]).expect("valid");
    let body = Body::Entry(Entry {
        fingerprints: vec![pdq.clone(), sha1.clone()],
        category: "drugs".parse().expect("valid"),
        links: vec![],
        note: None,
        expires_at: None,
    });
    let e = author(&mut a, 1, body);
    let view = a.read_view();
    assert_eq!(view.catalog().perceptual().query(&pdq, 0), vec![(e.id(), 0)]);
    assert_eq!(view.catalog().exact(&sha1), &[e.id()]);
    assert!(view.catalog().exact(&pdq).is_empty());
}

mod epochs;
mod writer_thread;
