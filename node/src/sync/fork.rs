//! Finding where a peer's copy of a log forks from ours.
//!
//! A search asks the peer for a window of the author's log that ends where the two copies are
//! known to differ, and compares it with ours record by record. The first position where
//! they differ, right after one where they agree (or at seq 1), holds two records extending
//! the same predecessor: a minimal proof of equivocation. If they differ already at the
//! window's start, the fork is further back and the next window ends just below it.

use hashmesh_protocol::{EquivocationProof, Record};

/// What a search window showed.
#[derive(Debug)]
pub enum Search {
    /// The two copies fork here.
    Found(Box<EquivocationProof>),
    /// They differ from the window's first record on: look below `below`.
    Lower {
        /// The window's first seq.
        below: u64,
    },
    /// They agree on the whole window (the peer's clock was stale).
    Agree,
    /// The peer's window is not a valid piece of a log.
    Bad(String),
}

/// Compares `theirs` (a range answer that passed the range check: one author's records,
/// consecutive seqs) with ours, given by `ours(seq)`.
pub fn search(theirs: &[Record], mut ours: impl FnMut(u64) -> Option<Record>) -> Search {
    let mut agreed: Option<&Record> = None;
    for record in theirs {
        let Some(mine) = ours(record.seq()) else {
            // We hold no more of this log: nothing further to compare.
            return Search::Agree;
        };
        if mine.id() == record.id() {
            agreed = Some(record);
            continue;
        }
        let base = match agreed {
            Some(prev) => prev.id(),
            None if record.seq() == 1 => hashmesh_protocol::RecordId::ZERO,
            None => return Search::Lower { below: record.seq() - 1 },
        };
        if record.prev() != base {
            return Search::Bad(format!("the peer's copy of the log does not chain at seq {}", record.seq()));
        }
        return match EquivocationProof::new(mine, record.clone()) {
            Ok(proof) => Search::Found(Box::new(proof)),
            Err(e) => Search::Bad(e.to_string()),
        };
    }
    Search::Agree
}
