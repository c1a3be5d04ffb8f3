use proptest::prelude::*;

use super::*;

fn member(n: u8) -> MemberId {
    MemberId([n; 32])
}

fn policy(n: u8) -> Policy {
    let members: BTreeSet<MemberId> = (1..=n).map(member).collect();
    Policy {
        confirmations_required: 2.min(members.len() - 1),
        resolution_quorum: members.len() / 2 + 1,
        members,
        forked: BTreeSet::new(),
    }
}

#[test]
fn undisputed_entry_is_verified_after_enough_confirmations() {
    let p = policy(5);
    let mut e = EntryVotes::new(member(1), None);
    assert_eq!(e.status(&p, 0), Status::Pending);
    e.add_vote(member(2), 1, Verdict::Confirm);
    assert_eq!(e.status(&p, 0), Status::Pending);
    // The author's own vote never counts.
    e.add_vote(member(1), 2, Verdict::Confirm);
    assert_eq!(e.status(&p, 0), Status::Pending);
    e.add_vote(member(3), 1, Verdict::Confirm);
    assert_eq!(e.status(&p, 0), Status::Verified);
    assert_eq!(Status::Verified.action(), Action::Remove);
}

#[test]
fn dispute_is_resolved_by_quorum() {
    let p = policy(5); // quorum 3
    let mut e = EntryVotes::new(member(1), None);
    e.add_vote(member(2), 1, Verdict::Dispute);
    assert_eq!(e.status(&p, 0), Status::Disputed);
    assert_eq!(Status::Disputed.action(), Action::Review);
    e.add_vote(member(3), 1, Verdict::Confirm);
    assert_eq!(e.status(&p, 0), Status::Disputed);
    e.add_vote(member(4), 1, Verdict::Dispute);
    assert_eq!(e.status(&p, 0), Status::Rejected);
    // member 4 changes its mind: latest vote (highest seq) counts.
    e.add_vote(member(4), 7, Verdict::Confirm);
    assert_eq!(e.status(&p, 0), Status::Verified);
    // An older vote arriving late changes nothing.
    e.add_vote(member(4), 3, Verdict::Dispute);
    assert_eq!(e.status(&p, 0), Status::Verified);
}

#[test]
fn tie_is_rejected_and_non_members_do_not_count() {
    let p = policy(4); // quorum 3
    let mut e = EntryVotes::new(member(1), None);
    e.add_vote(member(2), 1, Verdict::Dispute);
    e.add_vote(member(3), 1, Verdict::Confirm);
    e.add_vote(member(9), 1, Verdict::Confirm);
    assert_eq!(e.status(&p, 0), Status::Disputed);
    e.add_vote(member(4), 1, Verdict::Dispute);
    assert_eq!(e.status(&p, 0), Status::Rejected);
}

#[test]
fn retraction_and_expiry_win() {
    let p = policy(3);
    let mut e = EntryVotes::new(member(1), Some(1_000));
    e.add_vote(member(2), 1, Verdict::Confirm);
    e.add_vote(member(3), 1, Verdict::Confirm);
    assert_eq!(e.status(&p, 999), Status::Verified);
    assert_eq!(e.status(&p, 1_000), Status::Expired);
    e.add_retraction(member(2));
    assert_eq!(e.status(&p, 0), Status::Verified, "only the author can retract");
    e.add_retraction(member(1));
    assert_eq!(e.status(&p, 0), Status::Retracted);
    assert_eq!(Status::Retracted.action(), Action::None);
}

#[test]
fn two_member_federation_can_verify_and_resolve() {
    let p = policy(2);
    let mut e = EntryVotes::new(member(1), None);
    e.add_vote(member(2), 1, Verdict::Confirm);
    assert_eq!(e.status(&p, 0), Status::Verified);
    e.add_vote(member(2), 2, Verdict::Dispute);
    assert_eq!(e.status(&p, 0), Status::Rejected);
}

proptest! {
    /// The status is the same whatever order the same votes arrive in.
    #[test]
    fn status_ignores_vote_order(
        votes in proptest::collection::vec((1u8..=7, 1u64..20, any::<bool>()), 0..30),
        retract in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let p = policy(6);
        let apply = |order: &[(u8, u64, bool)]| {
            let mut e = EntryVotes::new(member(1), None);
            for (m, seq, confirm) in order {
                let verdict = if *confirm { Verdict::Confirm } else { Verdict::Dispute };
                e.add_vote(member(*m), *seq, verdict);
            }
            if retract { e.add_retraction(member(1)); }
            e.status(&p, 0)
        };
        // Two votes by one member at one seq (an equivocating voter) are kept: the outcome
        // must not depend on which of them comes first either.
        let mut distinct = votes;
        distinct.sort_unstable();
        distinct.dedup();
        let mut shuffled = distinct.clone();
        let mut state = seed;
        for i in (1..shuffled.len()).rev() {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (state >> 33) as usize % (i + 1));
        }
        let mut reversed = distinct.clone();
        reversed.reverse();
        let expected = apply(&distinct);
        prop_assert_eq!(apply(&shuffled), expected);
        prop_assert_eq!(apply(&reversed), expected);
    }
}
