//! Membership epochs in the replica: taking effect at commit, surviving a restart, cutting a
//! retired key's log, and refusing what does not count.

use hashmesh_protocol::{Changes, Membership, Removal};

use super::*;

fn id_of(n: u8) -> MemberId {
    MemberId::from_key(&key(n).verifying_key())
}

fn propose(changes: &Changes) -> Body {
    Body::Membership(Membership { epoch: 2, changes: changes.to_toml() })
}

/// The replica at `dir` with the records of members 1..=3 it needs: each member signs in its
/// own replica and the records are carried over, as sync would.
fn carry(to: &mut Replica, records: &[Record]) {
    for r in records {
        assert!(matches!(ingest(to, r).expect("ingest"), Ingested::Stored { .. }), "{r:?}");
    }
}

#[test]
fn an_epoch_takes_effect_at_commit_cuts_a_removed_key_and_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir").keep();
    let mut r = replica(&dir, 1);
    // Member 3 writes three entries elsewhere; this replica holds them all.
    let mut three = replica(&tempfile::tempdir().expect("tempdir").keep(), 3);
    let by_three: Vec<Record> = (1..=3).map(|n| author(&mut three, 3, entry(n))).collect();
    carry(&mut r, &by_three);
    let removal = Changes {
        remove: vec![Removal { key: id_of(3), last_seq: 1, votes_count: false }],
        ..Changes::default()
    };
    author(&mut r, 1, propose(&removal));
    assert_eq!(r.governance().current().epoch, 1, "1 of 3");
    assert_eq!(r.read_view().manifest().epoch, 1);
    assert_eq!(r.read_view().governance().pending().len(), 1, "the view shows the proposal");
    let mut two = replica(&tempfile::tempdir().expect("tempdir").keep(), 2);
    let approval = author(&mut two, 2, propose(&removal));
    let records_before = r.read_view().records();
    carry(&mut r, &[approval]);
    // In effect: the removed key's log is cut at seq 1, in the store and the view.
    assert_eq!(r.governance().current().epoch, 2);
    assert_eq!(r.read_view().manifest().epoch, 2);
    assert_eq!(r.read_view().clock().get(&id_of(3)).map(|c| c.seq), Some(1));
    assert_eq!(r.store().get_at(&id_of(3), 2).expect("read"), None);
    assert_eq!(r.read_view().records(), records_before + 1 - 2);
    assert!(r.read_view().catalog().get(&by_three[0].id()).is_some());
    assert!(r.read_view().catalog().get(&by_three[1].id()).is_none());
    // Its later records no longer count, whoever brings them.
    assert_eq!(ingest(&mut r, &by_three[1]).expect("ingest"), Ingested::PastFork);
    let stale = r.author(&key(3), vec![entry(9)], 5);
    assert!(
        matches!(stale, Err(AuthorError::Invalid(ValidationError::Retired { last_seq: 1, .. }))),
        "{stale:?}"
    );
    // A restart derives the same epoch from the stored records.
    drop(r);
    let again = replica(&dir, 1);
    assert_eq!(again.governance().current().epoch, 2);
    assert_eq!(again.read_view().clock().get(&id_of(3)).map(|c| c.seq), Some(1));
    assert_eq!(again.read_view().records(), records_before - 1);
}

#[test]
fn a_retired_keys_records_stored_past_its_end_are_cut_at_start() {
    // A crash between taking an epoch in and cutting the log leaves records past the end:
    // the store here holds them because the epoch's records were stored by an older node.
    let dir = tempfile::tempdir().expect("tempdir").keep();
    let removal = Changes {
        remove: vec![Removal { key: id_of(3), last_seq: 1, votes_count: true }],
        ..Changes::default()
    };
    let mut one = replica(&tempfile::tempdir().expect("tempdir").keep(), 1);
    let mut two = replica(&tempfile::tempdir().expect("tempdir").keep(), 2);
    let mut three = replica(&tempfile::tempdir().expect("tempdir").keep(), 3);
    let records = [
        author(&mut three, 3, entry(1)),
        author(&mut three, 3, entry(2)),
        author(&mut one, 1, propose(&removal)),
        author(&mut two, 2, propose(&removal)),
    ];
    {
        let member = MemberId::from_key(&key(1).verifying_key());
        let store = Store::open(&dir, "fed", member).expect("store");
        store.append(records.iter()).expect("append");
        store.flush().expect("flush");
    }
    let r = replica(&dir, 1);
    assert_eq!(r.governance().current().epoch, 2);
    assert_eq!(r.store().get_at(&id_of(3), 2).expect("read"), None, "cut where the epoch ends the log");
    assert_eq!(r.read_view().records(), 3);
    assert_eq!(
        r.read_view().policy().former.get(&id_of(3)).map(|f| f.member),
        Some(id_of(3)),
        "its votes keep counting, as the removal said"
    );
}

#[test]
fn membership_text_that_is_not_changes_is_refused_where_it_is_signed() {
    let mut r = replica(&tempfile::tempdir().expect("tempdir").keep(), 1);
    let bad = Body::Membership(Membership { epoch: 2, changes: "add = 7".into() });
    let refused = r.author(&key(1), vec![bad], 5);
    assert!(matches!(refused, Err(AuthorError::Invalid(ValidationError::BadChanges(_)))), "{refused:?}");
}

#[test]
fn a_forked_member_is_cleared_by_rotating_its_key() {
    let dir = tempfile::tempdir().expect("tempdir").keep();
    let mut r = replica(&dir, 1);
    // Member 3 signs two different first records: a proof.
    let mut a = replica(&tempfile::tempdir().expect("tempdir").keep(), 3);
    let mut b = replica(&tempfile::tempdir().expect("tempdir").keep(), 3);
    let (x, y) = (author(&mut a, 3, entry(1)), author(&mut b, 3, entry(2)));
    carry(&mut r, &[x]);
    assert_eq!(ingest(&mut r, &y).expect("ingest"), Ingested::Equivocation);
    assert!(r.read_view().policy().forked.contains(&id_of(3)));
    let rotation = Changes {
        rotate: vec![hashmesh_protocol::Rotation {
            member: id_of(3),
            key: Some(id_of(4)),
            last_seq: Some(0),
            peers: None,
            addresses: None,
        }],
        ..Changes::default()
    };
    author(&mut r, 1, propose(&rotation));
    let mut two = replica(&tempfile::tempdir().expect("tempdir").keep(), 2);
    carry(&mut r, &[author(&mut two, 2, propose(&rotation))]);
    let view = r.read_view();
    assert_eq!(view.manifest().epoch, 2);
    assert!(view.policy().forked.is_empty(), "the member signs with a clean key now");
    assert!(view.proofs().contains_key(&id_of(3)), "the proof stays as evidence");
}

#[test]
fn a_buffered_record_past_a_retired_keys_end_is_not_stored_when_the_gap_fills() {
    let mut r = replica(&tempfile::tempdir().expect("tempdir").keep(), 1);
    let mut three = replica(&tempfile::tempdir().expect("tempdir").keep(), 3);
    let by_three: Vec<Record> = (1..=3).map(|n| author(&mut three, 3, entry(n))).collect();
    carry(&mut r, &by_three[..1]);
    // Seq 3 waits for seq 2.
    assert_eq!(ingest(&mut r, &by_three[2]).expect("ingest"), Ingested::Buffered { next: 2 });
    let removal = Changes {
        remove: vec![Removal { key: id_of(3), last_seq: 2, votes_count: false }],
        ..Changes::default()
    };
    author(&mut r, 1, propose(&removal));
    let mut two = replica(&tempfile::tempdir().expect("tempdir").keep(), 2);
    carry(&mut r, &[author(&mut two, 2, propose(&removal))]);
    assert_eq!(r.governance().current().epoch, 2);
    // Seq 2 is within the log and is stored; seq 3, waiting past the end, is not.
    assert_eq!(ingest(&mut r, &by_three[1]).expect("ingest"), Ingested::Stored { also: 0 });
    assert_eq!(r.read_view().clock().get(&id_of(3)).map(|c| c.seq), Some(2));
    assert_eq!(r.store().get_at(&id_of(3), 3).expect("read"), None);
}
