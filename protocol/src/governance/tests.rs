use ed25519_dalek::SigningKey;
use proptest::prelude::*;

use super::*;
use crate::{EntryVotes, Membership, Status, UnsignedRecord, ValidationError, Verdict};

fn signer(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn key(n: u8) -> MemberId {
    MemberId::from_key(&signer(n).verifying_key())
}

fn info(n: u8) -> MemberInfo {
    MemberInfo { name: format!("m{n}"), key: key(n), peers: vec![format!("peer-{n}")], addresses: Vec::new() }
}

/// A federation of members 1..=n at epoch 1.
fn genesis(n: u8) -> Manifest {
    Manifest {
        name: "fed".into(),
        epoch: 1,
        policy: PolicyParams::default(),
        members: (1..=n).map(info).collect(),
        retired: Vec::new(),
    }
}

fn add(n: u8) -> Changes {
    Changes { add: vec![info(n)], ..Changes::default() }
}

fn remove(n: u8, last_seq: u64, votes_count: bool) -> Changes {
    Changes { remove: vec![Removal { key: key(n), last_seq, votes_count }], ..Changes::default() }
}

/// Member `n`'s membership record at `seq` for `epoch`.
fn record(n: u8, seq: u64, epoch: u64, changes: &Changes) -> Record {
    UnsignedRecord {
        author: key(n),
        seq,
        prev: RecordId([seq as u8; 32]),
        timestamp: 0,
        body: Body::Membership(Membership { epoch, changes: changes.to_toml() }),
    }
    .sign(&signer(n))
    .expect("valid record")
}

fn epochs(g: &Governance) -> Vec<u64> {
    g.epochs().iter().map(|e| e.manifest.epoch).collect()
}

#[test]
fn a_proposal_takes_effect_at_a_strict_majority_of_the_current_members() {
    let mut g = Governance::new(genesis(5));
    let six = add(6);
    assert!(g.add(&record(1, 1, 2, &six)).is_empty(), "the proposer alone is 1 of 5");
    assert!(g.add(&record(2, 1, 2, &six)).is_empty(), "2 of 5 is not a majority");
    let id = ProposalId::of(2, &six.to_toml());
    assert_eq!(g.pending().len(), 1);
    assert_eq!(g.pending()[0].0.id, id);
    assert_eq!(g.pending()[0].1.iter().map(|a| a.member).collect::<Vec<_>>(), {
        let mut m = vec![key(1), key(2)];
        m.sort();
        m
    });
    let effect = g.add(&record(3, 4, 2, &six));
    assert_eq!(effect.len(), 1, "3 of 5 is");
    assert_eq!(g.current().epoch, 2);
    assert!(g.current().is_member(&key(6)));
    assert!(g.pending().is_empty());
    assert_eq!(g.epochs()[1].proposal, Some(id));
    assert_eq!(g.approvals(1).len(), 3);
    assert_eq!(g.approvals(1).iter().find(|a| a.member == key(3)).map(|a| a.seq), Some(4));
    assert!(g.approvals(0).is_empty(), "genesis needs none");
    // A late approval changes nothing but the approvals held.
    assert!(g.add(&record(4, 1, 2, &six)).is_empty());
    assert_eq!(epochs(&g), [1, 2]);
    assert_eq!(g.approvals(1).len(), 4);
}

#[test]
fn with_an_even_count_half_is_not_a_majority() {
    let mut g = Governance::new(genesis(4));
    let five = add(5);
    g.add(&record(1, 1, 2, &five));
    g.add(&record(2, 1, 2, &five));
    assert_eq!(g.current().epoch, 1, "2 of 4");
    g.add(&record(3, 1, 2, &five));
    assert_eq!(g.current().epoch, 2, "3 of 4");
}

#[test]
fn only_the_current_members_approvals_count() {
    let mut g = Governance::new(genesis(3));
    let four = add(4);
    g.add(&record(1, 1, 2, &four));
    g.add(&record(9, 1, 2, &four));
    g.add(&record(4, 1, 2, &four));
    assert_eq!(g.current().epoch, 1, "an outsider and the candidate itself do not approve");
    g.add(&record(2, 1, 2, &four));
    assert_eq!(g.current().epoch, 2);
}

#[test]
fn a_members_first_record_for_an_epoch_is_its_choice() {
    let mut g = Governance::new(genesis(5));
    let (six, seven) = (add(6), add(7));
    g.add(&record(1, 1, 2, &six));
    g.add(&record(2, 1, 2, &six));
    g.add(&record(3, 1, 2, &seven));
    g.add(&record(4, 1, 2, &seven));
    // Member 1 changes its mind: its first record stands.
    g.add(&record(1, 2, 2, &seven));
    assert_eq!(g.current().epoch, 1);
    g.add(&record(5, 1, 2, &six));
    assert_eq!(g.current().epoch, 2);
    assert!(g.current().is_member(&key(6)));
    assert!(!g.current().is_member(&key(7)));
}

#[test]
fn a_proposal_that_does_not_apply_is_no_choice_and_a_later_one_can_be() {
    let mut g = Governance::new(genesis(3));
    let bogus = remove(9, 1, false);
    let four = add(4);
    for n in 1..=2 {
        g.add(&record(n, 1, 2, &bogus));
    }
    assert_eq!(g.current().epoch, 1, "removing a non-member never takes effect");
    g.add(&record(1, 2, 2, &four));
    assert_eq!(g.current().epoch, 1);
    g.add(&record(2, 2, 2, &four));
    assert_eq!(g.current().epoch, 2);
    assert!(g.current().is_member(&key(4)));
}

#[test]
fn records_for_a_decided_or_far_epoch_wait_or_change_nothing() {
    let mut g = Governance::new(genesis(3));
    let four = add(4);
    let five = add(5);
    // Epoch 3's proposal arrives before epoch 2 is decided: it waits.
    for n in 1..=2 {
        g.add(&record(n, 2, 3, &five));
    }
    assert_eq!(g.current().epoch, 1);
    g.add(&record(3, 1, 2, &add(6)));
    assert_eq!(g.pending().iter().map(|(p, _)| p.epoch).collect::<Vec<_>>(), [2, 3], "oldest epoch first");
    g.add(&record(1, 1, 2, &four));
    let effect = g.add(&record(2, 1, 2, &four));
    assert_eq!(effect.iter().map(|m| m.epoch).collect::<Vec<_>>(), [2], "epoch 3 needs 3 of 4 now");
    g.add(&record(3, 1, 3, &five));
    assert_eq!(epochs(&g), [1, 2, 3]);
    // A stale record for epoch 2 or 1 does nothing.
    g.add(&record(3, 2, 2, &add(7)));
    g.add(&record(3, 3, 1, &add(8)));
    assert_eq!(epochs(&g), [1, 2, 3]);
}

#[test]
fn records_that_are_not_membership_or_do_not_parse_are_ignored() {
    let mut g = Governance::new(genesis(1));
    let mut r = UnsignedRecord {
        author: key(1),
        seq: 1,
        prev: RecordId::ZERO,
        timestamp: 0,
        body: Body::Membership(Membership { epoch: 2, changes: "add = 3".into() }),
    };
    assert!(g.add(&r.clone().sign(&signer(1)).expect("valid")).is_empty());
    r.body = Body::Retract(crate::Retract { entry: RecordId([1; 32]), reason: None });
    assert!(g.add(&r.sign(&signer(1)).expect("valid")).is_empty());
    assert!(g.pending().is_empty());
}

#[test]
fn removal_retires_the_key_at_the_named_seq() {
    let next = genesis(3).apply(&remove(3, 42, false)).expect("applies");
    assert_eq!(next.epoch, 2);
    assert!(!next.is_member(&key(3)));
    let retired = next.retired_key(&key(3)).expect("retired");
    assert_eq!(
        (retired.last_seq, retired.epoch, retired.successor, retired.votes_count),
        (42, 2, None, false)
    );
    assert_eq!(next.accepts(&key(3), 42), Ok(()));
    assert_eq!(
        next.accepts(&key(3), 43),
        Err(ValidationError::Retired { author: key(3), epoch: 2, last_seq: 42 })
    );
    assert_eq!(next.accepts(&key(1), 1_000_000), Ok(()));
    assert_eq!(next.accepts(&key(9), 1), Err(ValidationError::NotMember(key(9))));
    assert!(next.policy().former.is_empty(), "its votes stop counting");
    let kept = genesis(3).apply(&remove(3, 42, true)).expect("applies");
    assert_eq!(kept.policy().former.get(&key(3)).map(|f| f.member), Some(key(3)));
}

#[test]
fn rotation_keeps_the_member_and_chains_its_old_keys_to_the_new_one() {
    let rotate = |from: u8, to: u8, last_seq: u64| Changes {
        rotate: vec![Rotation {
            member: key(from),
            key: Some(key(to)),
            last_seq: Some(last_seq),
            peers: Some(vec!["new-peer".into()]),
            addresses: None,
        }],
        ..Changes::default()
    };
    let two = genesis(3).apply(&rotate(3, 7, 10)).expect("applies");
    let three = two.apply(&rotate(7, 8, 5)).expect("applies");
    let member = three.member(&key(8)).expect("member under its newest key");
    assert_eq!((member.name.as_str(), member.peers.as_slice()), ("m3", ["new-peer".to_string()].as_slice()));
    let policy = three.policy();
    assert_eq!(policy.identity(&key(3)), key(8));
    assert_eq!(policy.identity(&key(7)), key(8));
    assert_eq!(three.accepts(&key(3), 10), Ok(()));
    assert!(three.accepts(&key(3), 11).is_err());
    assert!(three.accepts(&key(7), 6).is_err());
    // A rotated-away key cannot come back, and a rotation needs the old log's end.
    assert!(three.apply(&add(3)).is_err());
    let mut twice = rotate(8, 9, 5);
    twice.rotate.push(rotate(9, 10, 0).rotate.remove(0));
    assert!(matches!(three.apply(&twice), Err(ManifestError::Rule(m)) if m.contains("rotated twice")));
    let mut no_seq = rotate(8, 9, 0);
    no_seq.rotate[0].last_seq = None;
    assert!(three.apply(&no_seq).is_err());
    // Removing the member later stops its old keys' votes too, as the removal says.
    let four = three.apply(&remove(8, 3, false)).expect("applies");
    assert!(four.policy().former.is_empty());
}

#[test]
fn a_member_counts_once_whatever_keys_it_voted_with() {
    let rotate = Changes {
        rotate: vec![Rotation {
            member: key(3),
            key: Some(key(7)),
            last_seq: Some(10),
            peers: None,
            addresses: None,
        }],
        ..Changes::default()
    };
    let policy = genesis(5).apply(&rotate).expect("applies").policy();
    let mut e = EntryVotes::new(key(1), None);
    e.add_vote(key(3), 9, Verdict::Confirm);
    e.add_vote(key(7), 1, Verdict::Confirm);
    assert_eq!(e.status(&policy, 0), Status::Pending, "one member, two keys: one confirmation of two");
    e.add_vote(key(7), 2, Verdict::Dispute);
    e.add_vote(key(2), 1, Verdict::Confirm);
    e.add_vote(key(4), 1, Verdict::Confirm);
    // The new key's dispute outranks the old key's confirm (seq 9 > 2 notwithstanding).
    assert_eq!(e.status(&policy, 0), Status::Verified, "2 confirms to 1 dispute, quorum 3");
    let mut e = EntryVotes::new(key(1), None);
    e.add_vote(key(3), 9, Verdict::Dispute);
    e.add_vote(key(2), 1, Verdict::Confirm);
    e.add_vote(key(7), 1, Verdict::Confirm);
    assert_eq!(e.status(&policy, 0), Status::Verified, "the new key's confirm replaces the old dispute");
    // An entry by the old key belongs to the member: its new key's vote is its own.
    let mut e = EntryVotes::new(key(3), None);
    e.add_vote(key(7), 1, Verdict::Confirm);
    e.add_vote(key(2), 1, Verdict::Confirm);
    assert_eq!(e.status(&policy, 0), Status::Pending);
}

#[test]
fn bad_changes_are_refused_with_the_rule_they_break() {
    let g = genesis(3);
    let refused = |c: Changes| match g.apply(&c) {
        Err(ManifestError::Rule(m)) => m,
        other => panic!("{c:?} should be refused, got {other:?}"),
    };
    assert!(refused(Changes::default()).contains("must add, remove or rotate"));
    assert!(refused(add(1)).contains("appears twice"));
    assert!(refused(remove(9, 0, true)).contains("not a member"));
    let out_of_range = Changes {
        policy: Some(PolicyParams { resolution_quorum: Some(4), ..PolicyParams::default() }),
        ..Changes::default()
    };
    assert!(refused(out_of_range).contains("resolution_quorum 4"));
    let everyone = Changes {
        remove: (1..=3).map(|n| Removal { key: key(n), last_seq: 0, votes_count: false }).collect(),
        ..Changes::default()
    };
    assert!(refused(everyone).contains("at least one member"));
    assert_eq!(Changes::from_toml(&add(4).to_toml()), Ok(add(4)));
    assert!(matches!(Changes::from_toml("[[add]]\nname = 1"), Err(ManifestError::Syntax(_))));
}

#[test]
fn a_lone_member_does_not_verify_its_own_entries() {
    let policy = genesis(1).policy();
    assert_eq!(policy.confirmations_required, 1);
    let e = EntryVotes::new(key(1), None);
    assert_eq!(e.status(&policy, 0), Status::Pending);
}

#[test]
fn proposal_ids_are_hex_and_name_epoch_and_text() {
    let id = ProposalId::of(2, "x");
    assert_ne!(id, ProposalId::of(3, "x"));
    assert_ne!(id, ProposalId::of(2, "y"));
    assert_eq!(id.to_string().parse::<ProposalId>(), Ok(id));
    assert!("zz".parse::<ProposalId>().is_err());
    assert_eq!(String::from(id), id.to_string());
    assert_eq!(format!("{id:?}"), format!("ProposalId({})", &id.to_string()[..8]));
    assert_eq!(ProposalId::try_from(id.to_string()), Ok(id));
}

#[test]
fn proposals_and_the_records_taken_in_can_be_looked_up() {
    let mut g = Governance::new(genesis(3));
    let four = add(4);
    g.add(&record(1, 3, 2, &four));
    g.add(&record(2, 5, 2, &add(5)));
    let id = ProposalId::of(2, &four.to_toml());
    let p = g.proposal(&id).expect("known");
    assert_eq!((p.epoch, p.text.as_str(), &p.changes), (2, four.to_toml().as_str(), &four));
    assert!(g.proposal(&ProposalId::of(3, &four.to_toml())).is_none());
    let mut taken: Vec<(MemberId, u64)> = g.records().collect();
    taken.sort();
    let mut want = vec![(key(1), 3), (key(2), 5)];
    want.sort();
    assert_eq!(taken, want);
}

proptest! {
    /// Whatever order the membership records arrive in (each author's in its log's order, as
    /// the replica delivers them), every node derives the same chain.
    #[test]
    fn any_arrival_order_gives_the_same_chain(
        choices in proptest::collection::vec((1u8..=5, 0usize..3, 2u64..=3), 1..25),
        seed in any::<u64>(),
    ) {
        let proposals = [add(6), add(7), remove(5, 3, true)];
        let records: Vec<Record> = choices
            .iter()
            .enumerate()
            .map(|(seq, (member, p, epoch))| record(*member, seq as u64 + 1, *epoch, &proposals[*p]))
            .collect();
        let chain = |order: &[Record]| {
            let mut g = Governance::new(genesis(5));
            for r in order {
                g.add(r);
            }
            let approvals: Vec<Vec<Approval>> = (0..g.epochs().len()).map(|i| g.approvals(i)).collect();
            (g.epochs().to_vec(), approvals)
        };
        let expected = chain(&records);
        let mut shuffled = records;
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        // Each author's records keep their log order among the slots they landed in.
        for author in 1..=5u8 {
            let slots: Vec<usize> = (0..shuffled.len()).filter(|i| shuffled[*i].author() == key(author)).collect();
            let mut own: Vec<Record> = slots.iter().map(|i| shuffled[*i].clone()).collect();
            own.sort_by_key(Record::seq);
            for (slot, r) in slots.into_iter().zip(own) {
                shuffled[slot] = r;
            }
        }
        prop_assert_eq!(chain(&shuffled), expected);
    }
}

/// Whichever of a member's keys sorts first, its newest key's vote is the one that counts.
#[test]
fn the_newest_keys_vote_wins_whichever_key_sorts_first() {
    for (old, new) in [(3u8, 7u8), (7, 3)] {
        let mut members = genesis(2).members;
        members.push(info(old));
        let start = Manifest { members, ..genesis(2) };
        let rotate = Changes {
            rotate: vec![Rotation {
                member: key(old),
                key: Some(key(new)),
                last_seq: Some(5),
                peers: None,
                addresses: None,
            }],
            ..Changes::default()
        };
        let policy = start.apply(&rotate).expect("applies").policy();
        let mut e = EntryVotes::new(key(1), None);
        e.add_vote(key(old), 5, Verdict::Confirm);
        e.add_vote(key(new), 1, Verdict::Dispute);
        e.add_vote(key(2), 1, Verdict::Confirm);
        // Quorum 2 of the 2 voters: 1 confirm against 1 dispute, not 2 confirms.
        assert_eq!(e.status(&policy, 0), Status::Rejected, "old {old}, new {new}");
    }
}

#[test]
fn a_retired_key_cannot_be_listed_twice_or_as_a_member() {
    let two = genesis(2).apply(&remove(2, 4, false)).expect("applies");
    assert_eq!(two.log_keys(), [key(1), key(2)].into_iter().collect());
    let mut twice = two.clone();
    twice.retired.push(twice.retired[0].clone());
    assert!(matches!(twice.check(), Err(ManifestError::Rule(m)) if m.contains("retired")));
    let mut back = two.clone();
    back.members.push(info(2));
    assert!(matches!(back.check(), Err(ManifestError::Rule(m)) if m.contains("retired")));
    assert_eq!(two.check(), Ok(()));
}

#[test]
fn verdicts_and_actions_have_lowercase_names_and_votes_show_their_seq() {
    assert_eq!((Verdict::Confirm.name(), Verdict::Dispute.name()), ("confirm", "dispute"));
    assert_eq!(
        (crate::Action::Remove.name(), crate::Action::Review.name(), crate::Action::None.name()),
        ("remove", "review", "none")
    );
    let mut e = EntryVotes::new(key(1), None);
    assert!(!e.is_retracted());
    e.add_vote(key(2), 4, Verdict::Confirm);
    e.add_vote(key(2), 6, Verdict::Dispute);
    assert_eq!(e.latest().collect::<Vec<_>>(), [(key(2), 6, Verdict::Dispute)]);
    e.add_retraction(key(2));
    assert!(!e.is_retracted(), "only the author retracts");
    e.add_retraction(key(1));
    assert!(e.is_retracted());
}
