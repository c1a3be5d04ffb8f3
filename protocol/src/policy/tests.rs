use proptest::prelude::*;

use super::*;

fn member(n: u8) -> MemberId {
    MemberId([n; 32])
}

fn policy(n: u8) -> Policy {
    let members: BTreeSet<MemberId> = (1..=n).map(member).collect();
    Policy {
        confirmations_required: 2.min(members.len() - 1).max(1),
        resolution_quorum: members.len() / 2 + 1,
        members,
        forked: BTreeSet::new(),
        former: BTreeMap::new(),
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
fn tie_is_rejected() {
    let p = policy(5); // 4 may vote, quorum 3
    let mut e = EntryVotes::new(member(1), None);
    e.add_vote(member(2), 1, Verdict::Dispute);
    e.add_vote(member(3), 1, Verdict::Confirm);
    e.add_vote(member(4), 1, Verdict::Dispute);
    e.add_vote(member(5), 1, Verdict::Confirm);
    assert_eq!(e.status(&p, 0), Status::Rejected, "2 confirms against 2 disputes must not verify");
    assert_eq!(Status::Rejected.action(), Action::None);
}

#[test]
fn non_members_do_not_count() {
    let p = policy(4); // 3 may vote, quorum 3
    let mut e = EntryVotes::new(member(1), None);
    e.add_vote(member(2), 1, Verdict::Dispute);
    e.add_vote(member(3), 1, Verdict::Confirm);
    e.add_vote(member(9), 1, Verdict::Confirm);
    assert_eq!(e.status(&p, 0), Status::Disputed, "member 9 must not make the quorum");
    e.add_vote(member(4), 1, Verdict::Confirm);
    e.add_vote(member(8), 1, Verdict::Dispute);
    e.add_vote(member(7), 1, Verdict::Dispute);
    assert_eq!(e.status(&p, 0), Status::Verified, "members 7 and 8 must not outvote 2 confirms");
    // An undisputed entry is not verified by non-members' confirmations either.
    let mut e = EntryVotes::new(member(1), None);
    e.add_vote(member(2), 1, Verdict::Confirm);
    e.add_vote(member(9), 1, Verdict::Confirm);
    assert_eq!(e.status(&p, 0), Status::Pending);
}

/// Two different votes at one seq come from a voter that signed two histories. Whichever a
/// node saw first, the dispute wins, so every node derives the same status.
#[test]
fn equivocating_voter_counts_as_disputing_in_either_order() {
    let p = policy(3); // 2 may vote, quorum 2
    for first in [Verdict::Confirm, Verdict::Dispute] {
        let second = if first == Verdict::Confirm { Verdict::Dispute } else { Verdict::Confirm };
        let mut e = EntryVotes::new(member(1), None);
        e.add_vote(member(2), 4, first);
        e.add_vote(member(2), 4, second);
        assert_eq!(e.votes().collect::<Vec<_>>(), [(member(2), Verdict::Dispute)], "{first:?} first");
        assert_eq!(e.status(&p, 0), Status::Disputed, "{first:?} first");
        // A later vote by the same voter still replaces both.
        e.add_vote(member(2), 5, Verdict::Confirm);
        assert_eq!(e.votes().collect::<Vec<_>>(), [(member(2), Verdict::Confirm)], "{first:?} first");
    }
    // The same vote twice is just that vote.
    let mut e = EntryVotes::new(member(1), None);
    e.add_vote(member(2), 4, Verdict::Confirm);
    e.add_vote(member(2), 4, Verdict::Confirm);
    assert_eq!(e.votes().collect::<Vec<_>>(), [(member(2), Verdict::Confirm)]);
    // And an older vote never replaces a newer one, dispute or not.
    e.add_vote(member(2), 3, Verdict::Dispute);
    assert_eq!(e.votes().collect::<Vec<_>>(), [(member(2), Verdict::Confirm)]);
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

/// A forked author's entries are held for review whatever else is known of them.
#[test]
fn forked_author_is_disputed_whatever_the_votes() {
    let mut p = policy(3);
    let mut e = EntryVotes::new(member(1), Some(1_000));
    e.add_vote(member(2), 1, Verdict::Confirm);
    e.add_vote(member(3), 1, Verdict::Confirm);
    assert_eq!(e.status(&p, 0), Status::Verified);
    p.forked.insert(member(1));
    assert_eq!(e.status(&p, 0), Status::Disputed, "verified entry of a forked author");
    assert_eq!(e.status(&p, 1_000), Status::Disputed, "expired entry of a forked author");
    e.add_retraction(member(1));
    assert_eq!(e.status(&p, 0), Status::Disputed, "retracted entry of a forked author");
    let mut bare = EntryVotes::new(member(1), None);
    assert_eq!(bare.status(&p, 0), Status::Disputed, "entry of a forked author without votes");
    bare.add_vote(member(2), 1, Verdict::Dispute);
    bare.add_vote(member(3), 1, Verdict::Dispute);
    assert_eq!(bare.status(&p, 0), Status::Disputed, "rejected entry of a forked author");
    // Someone else forking changes nothing for this author.
    let mut other = policy(3);
    other.forked.insert(member(3));
    e = EntryVotes::new(member(1), None);
    e.add_retraction(member(1));
    assert_eq!(e.status(&other, 0), Status::Retracted);
}

#[test]
fn forked_voter_is_ignored() {
    let mut p = policy(4); // 3 may vote: 2 confirmations verify, quorum 3
    p.forked.insert(member(4));
    let mut e = EntryVotes::new(member(1), None);
    e.add_vote(member(2), 1, Verdict::Confirm);
    e.add_vote(member(4), 1, Verdict::Confirm);
    assert_eq!(e.status(&p, 0), Status::Pending, "a forked member's confirmation must not verify");
    e.add_vote(member(3), 1, Verdict::Confirm);
    assert_eq!(e.status(&p, 0), Status::Verified);
    let mut d = EntryVotes::new(member(1), None);
    d.add_vote(member(2), 1, Verdict::Confirm);
    d.add_vote(member(3), 1, Verdict::Confirm);
    d.add_vote(member(4), 1, Verdict::Dispute);
    assert_eq!(d.status(&p, 0), Status::Verified, "a forked member's dispute must not hold an entry");
}

/// Numbers larger than the federation are capped at the members who may vote (everyone but
/// the author), so a small federation can still verify entries and resolve disputes.
#[test]
fn quorum_and_confirmations_are_capped_at_the_voters() {
    let members: BTreeSet<MemberId> = (1..=3).map(member).collect();
    let p = Policy {
        members,
        confirmations_required: 9,
        resolution_quorum: 9,
        forked: BTreeSet::new(),
        former: BTreeMap::new(),
    };
    let mut e = EntryVotes::new(member(1), None);
    e.add_vote(member(2), 1, Verdict::Confirm);
    assert_eq!(e.status(&p, 0), Status::Pending);
    e.add_vote(member(3), 1, Verdict::Confirm);
    assert_eq!(e.status(&p, 0), Status::Verified, "2 of 2 possible confirmations");
    e.add_vote(member(3), 2, Verdict::Dispute);
    assert_eq!(e.status(&p, 0), Status::Rejected, "2 of 2 possible voters, tied");
    e.add_vote(member(2), 2, Verdict::Dispute);
    assert_eq!(e.status(&p, 0), Status::Rejected);

    // The author is not among the voters: with 3 members and quorum 3, two voters resolve.
    let members: BTreeSet<MemberId> = (1..=3).map(member).collect();
    let p = Policy {
        members,
        confirmations_required: 2,
        resolution_quorum: 3,
        forked: BTreeSet::new(),
        former: BTreeMap::new(),
    };
    let mut e = EntryVotes::new(member(1), None);
    e.add_vote(member(1), 1, Verdict::Confirm);
    e.add_vote(member(2), 1, Verdict::Dispute);
    assert_eq!(e.status(&p, 0), Status::Disputed);
    e.add_vote(member(3), 1, Verdict::Confirm);
    assert_eq!(e.status(&p, 0), Status::Rejected, "1 against 1 among the 2 voters, the author aside");

    // An author outside the membership (an entry from a removed member): all members vote.
    let mut e = EntryVotes::new(member(9), None);
    e.add_vote(member(1), 1, Verdict::Confirm);
    e.add_vote(member(2), 1, Verdict::Dispute);
    assert_eq!(e.status(&p, 0), Status::Disputed, "2 of a quorum of 3");
    e.add_vote(member(3), 1, Verdict::Confirm);
    assert_eq!(e.status(&p, 0), Status::Verified);
}

#[test]
fn status_names_and_actions() {
    let table = [
        (Status::Pending, "pending", Action::Review),
        (Status::Verified, "verified", Action::Remove),
        (Status::Disputed, "disputed", Action::Review),
        (Status::Rejected, "rejected", Action::None),
        (Status::Retracted, "retracted", Action::None),
        (Status::Expired, "expired", Action::None),
    ];
    assert_eq!(Status::ALL.to_vec(), table.iter().map(|(s, ..)| *s).collect::<Vec<_>>());
    for (status, name, action) in table {
        assert_eq!(status.name(), name);
        assert_eq!(name.parse::<Status>(), Ok(status));
        assert_eq!(status.action(), action, "{name}");
    }
    assert!("Verified".parse::<Status>().is_err());
}

#[test]
fn verdict_tags_are_1_and_2() {
    assert_eq!((Verdict::Confirm.tag(), Verdict::Dispute.tag()), (1, 2));
    assert_eq!(
        [0, 1, 2, 3].map(Verdict::from_tag),
        [None, Some(Verdict::Confirm), Some(Verdict::Dispute), None]
    );
}

#[test]
fn entry_votes_remember_author_and_expiry() {
    let e = EntryVotes::new(member(4), Some(77));
    assert_eq!((e.author(), e.expires_at()), (member(4), Some(77)));
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
