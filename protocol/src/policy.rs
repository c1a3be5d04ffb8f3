//! The verification policy: an entry's status as a pure function of what is known about it.
//!
//! The status depends only on the entry, the membership and the set of votes and retractions
//! held — never on arrival order or local clocks (expiry compares against a `now` the caller
//! passes in). So two nodes holding the same records always agree.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::MemberId;

/// A vote's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The entry is what it says it is.
    Confirm,
    /// The entry is wrong (not illegal content, wrong category, a false positive …).
    Dispute,
}

impl Verdict {
    /// The lowercase word: `confirm` or `dispute`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Confirm => "confirm",
            Self::Dispute => "dispute",
        }
    }

    pub(crate) fn tag(self) -> u8 {
        match self {
            Self::Confirm => 1,
            Self::Dispute => 2,
        }
    }

    pub(crate) fn from_tag(tag: u8) -> Option<Self> {
        match tag {
            1 => Some(Self::Confirm),
            2 => Some(Self::Dispute),
            _ => None,
        }
    }
}

/// Where an entry stands.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Not yet confirmed by enough other members.
    Pending,
    /// Confirmed by enough members, or a dispute was resolved in its favour.
    Verified,
    /// Disputed, and not enough members have voted to resolve it.
    Disputed,
    /// A resolved dispute went against it.
    Rejected,
    /// Its author withdrew it.
    Retracted,
    /// Past its `expires_at`.
    Expired,
}

impl Status {
    /// Every status.
    pub const ALL: [Self; 6] =
        [Self::Pending, Self::Verified, Self::Disputed, Self::Rejected, Self::Retracted, Self::Expired];

    /// What a platform should do with content that matches an entry in this status.
    pub fn action(self) -> Action {
        match self {
            Self::Verified => Action::Remove,
            Self::Pending | Self::Disputed => Action::Review,
            Self::Rejected | Self::Retracted | Self::Expired => Action::None,
        }
    }

    /// The lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Verified => "verified",
            Self::Disputed => "disputed",
            Self::Rejected => "rejected",
            Self::Retracted => "retracted",
            Self::Expired => "expired",
        }
    }
}

impl std::str::FromStr for Status {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|st| st.name() == s).ok_or_else(|| {
            format!("unknown status {s:?}; one of pending, verified, disputed, rejected, retracted, expired")
        })
    }
}

/// The recommended action for matching content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Remove automatically.
    Remove,
    /// Queue for human review.
    Review,
    /// Do nothing.
    None,
}

impl Action {
    /// The lowercase word: `remove`, `review` or `none`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Remove => "remove",
            Self::Review => "review",
            Self::None => "none",
        }
    }
}

/// The numbers the policy applies, taken from the federation manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Current members' keys.
    pub members: BTreeSet<MemberId>,
    /// Retired keys whose votes still count, each for the member it belongs to now.
    pub former: BTreeMap<MemberId, Former>,
    /// Confirmations from members other than the author that make an undisputed entry verified.
    pub confirmations_required: usize,
    /// Members that must have voted before a dispute is resolved.
    pub resolution_quorum: usize,
    /// Members proven to have equivocated (signed two records at one position of their log).
    /// Their votes stop counting and their entries are held as disputed, on every node that
    /// holds the proof, until a membership epoch removes or clears them.
    pub forked: BTreeSet<MemberId>,
}

/// A retired key whose votes still count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Former {
    /// Whom its votes count for: the member's current key after a rotation, or the key itself
    /// for a removed member.
    pub member: MemberId,
    /// The epoch that retired it: of one member's votes, one by a later key wins.
    pub retired_at: u64,
}

impl Policy {
    /// Whom a vote signed by `key` counts for, and its rank among that member's keys (the
    /// current key ranks above every retired one); `None` if its votes do not count.
    fn voter(&self, key: &MemberId) -> Option<(MemberId, u64)> {
        if self.members.contains(key) {
            return Some((*key, u64::MAX));
        }
        self.former.get(key).map(|f| (f.member, f.retired_at))
    }

    /// The member a key stands for: itself, or the member a retired key belonged to.
    pub fn identity(&self, key: &MemberId) -> MemberId {
        self.former.get(key).map_or(*key, |f| f.member)
    }
}

/// What is known about one entry: its author, expiry, retraction and each member's latest vote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryVotes {
    author: MemberId,
    expires_at: Option<u64>,
    retracted: bool,
    votes: BTreeMap<MemberId, (u64, Verdict)>,
}

impl EntryVotes {
    /// An entry by `author` with no votes yet.
    pub fn new(author: MemberId, expires_at: Option<u64>) -> Self {
        Self { author, expires_at, retracted: false, votes: BTreeMap::new() }
    }

    /// The entry's author.
    pub fn author(&self) -> MemberId {
        self.author
    }

    /// When the entry expires (unix ms), if ever.
    pub fn expires_at(&self) -> Option<u64> {
        self.expires_at
    }

    /// Records a vote. Only the voter's latest vote counts: the one with the highest `seq` in
    /// its own log, whichever arrived first. Two different votes at the same seq can only come
    /// from an equivocating voter; then `Dispute` wins, so the outcome does not depend on
    /// which of the two a node saw first.
    pub fn add_vote(&mut self, voter: MemberId, seq: u64, verdict: Verdict) {
        let slot = self.votes.entry(voter).or_insert((seq, verdict));
        if seq > slot.0 || (seq == slot.0 && verdict == Verdict::Dispute) {
            *slot = (seq, verdict);
        }
    }

    /// Records a retraction. Only the author can retract; anyone else's is ignored.
    pub fn add_retraction(&mut self, by: MemberId) {
        if by == self.author {
            self.retracted = true;
        }
    }

    /// Whether its author retracted it.
    pub fn is_retracted(&self) -> bool {
        self.retracted
    }

    /// Each voter's latest verdict.
    pub fn votes(&self) -> impl Iterator<Item = (MemberId, Verdict)> + '_ {
        self.votes.iter().map(|(m, (_, v))| (*m, *v))
    }

    /// Each voter's latest vote: its key, the seq of the vote in its log, and the verdict.
    pub fn latest(&self) -> impl Iterator<Item = (MemberId, u64, Verdict)> + '_ {
        self.votes.iter().map(|(m, (seq, v))| (*m, *seq, *v))
    }

    /// The status under `policy` at time `now_ms`.
    ///
    /// Votes count per member, not per key: a member's votes under a retired key count for it
    /// (when the manifest says so), and of one member's votes the one by its latest key wins.
    /// Votes from the author, from non-members and from forked members do not count. The
    /// quorum is capped at the number of members who may vote (everyone but the author), so a
    /// dispute in a small federation can always be resolved; no entry is verified without at
    /// least one confirmation. A forked author's entries are `Disputed` whatever else is known
    /// of them: a key that signs two histories cannot be trusted on either, so its entries go
    /// to human review until the federation decides.
    pub fn status(&self, policy: &Policy, now_ms: u64) -> Status {
        let author = policy.identity(&self.author);
        if policy.forked.contains(&author) {
            return Status::Disputed;
        }
        if self.retracted {
            return Status::Retracted;
        }
        if self.expires_at.is_some_and(|t| now_ms >= t) {
            return Status::Expired;
        }
        let counted = self.votes.iter().filter_map(|(key, (seq, verdict))| {
            let (member, rank) = policy.voter(key)?;
            (member != author && !policy.forked.contains(&member)).then_some((member, (rank, *seq), *verdict))
        });
        let (confirms, disputes) = if policy.former.is_empty() {
            // Every key is its own member: one vote each, no map needed on the matching path.
            tally(counted.map(|(_, _, verdict)| verdict))
        } else {
            // Of one member's votes under several keys, its latest key's (then latest seq's).
            let mut latest: BTreeMap<MemberId, ((u64, u64), Verdict)> = BTreeMap::new();
            for (member, order, verdict) in counted {
                let slot = latest.entry(member).or_insert((order, verdict));
                if order > slot.0 {
                    *slot = (order, verdict);
                }
            }
            tally(latest.into_values().map(|(_, verdict)| verdict))
        };
        let eligible = policy.members.iter().filter(|m| **m != author).count();
        if disputes == 0 {
            let needed = policy.confirmations_required.min(eligible).max(1);
            return if confirms >= needed { Status::Verified } else { Status::Pending };
        }
        let quorum = policy.resolution_quorum.min(eligible).max(1);
        if confirms + disputes < quorum {
            Status::Disputed
        } else if confirms > disputes {
            Status::Verified
        } else {
            Status::Rejected
        }
    }
}

/// Confirms and disputes among `verdicts`.
fn tally(verdicts: impl Iterator<Item = Verdict>) -> (usize, usize) {
    verdicts.fold((0, 0), |(c, d), v| match v {
        Verdict::Confirm => (c + 1, d),
        Verdict::Dispute => (c, d + 1),
    })
}

#[cfg(test)]
mod tests;
