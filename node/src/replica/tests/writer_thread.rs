//! The writer thread through its handle: every job is answered after its round is stored.

use super::*;

fn spawn_writer(dir: &std::path::Path, me: u8) -> (ReplicaHandle, std::thread::JoinHandle<()>) {
    crate::replica::writer::spawn(replica(dir, me), key(me)).expect("writer thread")
}

#[tokio::test]
async fn own_records_are_stored_and_readable_through_the_handle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (handle, thread) = spawn_writer(dir.path(), 1);
    let written = handle.author(vec![entry(1), entry(2), entry(3)], 7).await.expect("author");
    assert_eq!(written.iter().map(Record::seq).collect::<Vec<_>>(), vec![1, 2, 3]);
    let me = written[0].author();
    assert_eq!(handle.view().records(), 3);
    assert_eq!(handle.clock()[&me].seq, 3);
    assert_eq!(handle.range(&me, 0, 10).expect("range"), written, "from seq 0 reads from 1");
    assert_eq!(handle.range(&me, 2, 1).expect("range"), written[1..2].to_vec());
    let bytes = |rs: &[Record]| rs.iter().map(|r| r.bytes().to_vec()).collect::<Vec<_>>();
    assert_eq!(handle.range_bytes(&me, 1, 10, usize::MAX).expect("range"), bytes(&written));
    assert_eq!(handle.range_bytes(&me, 3, 10, usize::MAX).expect("range"), bytes(&written[2..]));
    assert!(handle.range_bytes(&me, 4, 10, usize::MAX).expect("range").is_empty());
    let stranger = MemberId([9; 32]);
    assert!(handle.range_bytes(&stranger, 1, 10, usize::MAX).expect("range").is_empty());
    assert!(handle.range(&stranger, 1, 10).expect("range").is_empty());
    assert_eq!(handle.store().get_at(&me, 2).expect("read"), Some(written[1].clone()));
    handle.flush().await.expect("flush");
    handle.close().await.expect("close");
    thread.join().expect("writer ends after close");
    assert!(handle.flush().await.is_err(), "the writer is gone");
    assert!(handle.ingest(Vec::new()).await.is_err(), "the writer is gone");
    drop(handle); // the last clone of the store: sled's lock goes with it
    let reopened = replica(dir.path(), 1);
    assert_eq!(reopened.read_view().records(), 3, "closing stored everything");
}

#[tokio::test]
async fn records_and_proofs_from_outside_are_answered_with_what_became_of_them() {
    let mut source = replica(&tempfile::tempdir().expect("tempdir").keep(), 2);
    let log: Vec<Record> = (1..=3).map(|n| super::author(&mut source, 2, entry(n))).collect();
    let proof = EquivocationProof::new(log[2].clone(), signed(2, 3, log[1].id(), entry(30))).expect("fork");
    let dir = tempfile::tempdir().expect("tempdir");
    let (handle, thread) = spawn_writer(dir.path(), 1);
    let verified = log.iter().map(|r| Verified::check(r.clone()).expect("signed")).collect();
    let (outcome, proofs) = handle.ingest(verified).await.expect("writer");
    assert_eq!((outcome.stored, proofs.len()), (3, 0));
    let author2 = log[0].author();
    assert_eq!(handle.proof(&author2), None);
    assert!(handle.offer_proof(proof.clone()).await.expect("stored"));
    assert!(!handle.offer_proof(proof.clone()).await.expect("stored"), "already held");
    assert_eq!(handle.proof(&author2), Some(proof.encode()));
    assert_eq!(handle.view().records(), 2, "the log is cut before the fork");
    // A proof found while ingesting is reported with the outcome.
    let dir2 = tempfile::tempdir().expect("tempdir");
    let (other, other_thread) = spawn_writer(dir2.path(), 3);
    let first = log.iter().map(|r| Verified::check(r.clone()).expect("signed")).collect();
    other.ingest(first).await.expect("writer");
    let fork = Verified::check(signed(2, 3, log[1].id(), entry(30))).expect("signed");
    let (outcome, proofs) = other.ingest(vec![fork]).await.expect("writer");
    assert!(outcome.equivocation);
    assert_eq!(proofs.len(), 1);
    for (h, t) in [(handle, thread), (other, other_thread)] {
        h.close().await.expect("close");
        t.join().expect("writer ends");
    }
}

#[tokio::test]
async fn a_forked_member_is_told_why_it_cannot_write() {
    let mut a = replica(&tempfile::tempdir().expect("tempdir").keep(), 1);
    let e = super::author(&mut a, 1, entry(1));
    let (base, confirm, dispute) = forked_votes(&e);
    let dir = tempfile::tempdir().expect("tempdir");
    let (handle, thread) = spawn_writer(dir.path(), 2);
    let run = [&e, &base, &confirm, &dispute].map(|r| Verified::check(r.clone()).expect("signed"));
    handle.ingest(run.to_vec()).await.expect("writer");
    let refused = handle.author(vec![entry(9)], 0).await.expect_err("forked");
    assert!(matches!(refused, AuthorError::Forked(2)), "{refused}");
    assert!(refused.to_string().contains("equivocated at seq 2"), "{refused}");
    handle.close().await.expect("close");
    thread.join().expect("writer ends");
}

/// A writer whose key an epoch it learns of rotated from the data dir's key takes the data dir
/// over, and announces the new manifest; rounds without an epoch announce nothing.
#[tokio::test]
async fn a_store_passes_to_the_writers_key_when_the_epoch_rotating_to_it_arrives() {
    use hashmesh_protocol::{Changes, Membership, Rotation};
    let dir = tempfile::tempdir().expect("tempdir");
    let (old, new) =
        (MemberId::from_key(&key(3).verifying_key()), MemberId::from_key(&key(4).verifying_key()));
    // The data dir is member 3's; the writer runs with member 3's new key, 4.
    let store = Store::open(dir.path(), "fed", old).expect("store");
    let replica = Replica::open(store, manifest(&[1, 2, 3])).expect("load");
    let (handle, thread) = crate::replica::writer::spawn(replica, key(4)).expect("writer thread");
    let mut news = handle.manifest();
    let mut one = super::replica(&tempfile::tempdir().expect("tempdir").keep(), 1);
    let mut two = super::replica(&tempfile::tempdir().expect("tempdir").keep(), 2);
    let unrelated = super::author(&mut one, 1, entry(1));
    handle.ingest(vec![Verified::check(unrelated).expect("signed")]).await.expect("writer");
    assert!(!news.has_changed().expect("open"), "no epoch, no news");
    let rotation = Changes {
        rotate: vec![Rotation {
            member: old,
            key: Some(new),
            last_seq: Some(0),
            peers: None,
            addresses: None,
        }],
        ..Changes::default()
    };
    let body = || Body::Membership(Membership { epoch: 2, changes: rotation.to_toml() });
    let approvals = [super::author(&mut one, 1, body()), super::author(&mut two, 2, body())];
    let verified = approvals.iter().map(|r| Verified::check(r.clone()).expect("signed")).collect();
    handle.ingest(verified).await.expect("writer");
    let (epoch, records) = (handle.view().manifest().epoch, handle.view().records());
    assert!(
        news.has_changed().expect("open"),
        "the new epoch is announced: epoch {epoch}, {records} records"
    );
    assert_eq!(news.borrow_and_update().epoch, 2);
    assert_eq!(handle.store().member().expect("read"), Some(new), "the data dir is the new key's");
    handle.close().await.expect("close");
    thread.join().expect("writer ends");
}
