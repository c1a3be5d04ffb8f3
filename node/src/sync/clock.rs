//! Vector clocks: what a replica holds of every author's log, in a form two replicas can
//! compare to learn what each lacks — and whether they are identical.

use std::collections::BTreeMap;

use hashmesh_protocol::{EquivocationProof, MemberId, RecordId};
use serde::{Deserialize, Serialize};

/// Where a replica stands on one author's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogClock {
    /// Highest contiguous seq held (0 for none).
    pub seq: u64,
    /// Id of the record at `seq` (zero for none). It hash-chains the whole log behind it.
    pub id: RecordId,
    /// The proof of equivocation held against the author, if any. The log then counts only
    /// up to `fork.seq - 1`, on every node.
    pub fork: Option<ForkMark>,
}

/// Which proof of equivocation a replica holds: its rank, enough to tell which of two proofs
/// every node will end up keeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ForkMark {
    /// The seq both records of the proof claim.
    pub seq: u64,
    /// The lower record id.
    pub a: RecordId,
    /// The higher record id.
    pub b: RecordId,
}

impl ForkMark {
    /// The mark of `proof`.
    pub fn of(proof: &EquivocationProof) -> Self {
        let (seq, a, b) = proof.rank();
        Self { seq, a, b }
    }
}

/// Every author's [`LogClock`].
pub type Clock = BTreeMap<MemberId, LogClock>;

/// blake3 over the whole clock: equal digests mean identical replicas, because each head
/// hash-chains the log behind it and the fork marks name the proofs held.
pub fn digest(clock: &Clock) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    for (author, log) in clock {
        hasher.update(&author.0);
        hasher.update(&log.seq.to_be_bytes());
        hasher.update(&log.id.0);
        match &log.fork {
            Some(f) => {
                hasher.update(&[1]);
                hasher.update(&f.seq.to_be_bytes());
                hasher.update(&f.a.0);
                hasher.update(&f.b.0);
            }
            None => {
                hasher.update(&[0]);
            }
        }
    }
    *hasher.finalize().as_bytes()
}
