//! Exact catch-up: the `/hashmesh/sync/1` messages and the plan of what to fetch.
//!
//! Each side asks the other for its vector clock — every author's (contiguous seq, head id) —
//! and pulls what it lacks, author by author in seq order and in bounded batches, so a gap is
//! never created. Because each head hash-chains its whole log, equal clocks mean identical
//! replicas; a head that differs at a seq both hold is equivocation, and fetching the peer's
//! record at that seq hands the evidence to the store.

use std::collections::BTreeMap;

use hashmesh_protocol::{MemberId, RecordId};
use serde::{Deserialize, Serialize};

use crate::store::Head;

/// The request-response protocol name.
pub const PROTOCOL: &str = "/hashmesh/sync/1";
/// Most records asked for in one range request.
pub const BATCH: u32 = 2_000;
/// A range response stops adding records past this many bytes.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// A sync request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncRequest {
    /// "What do you hold?"
    Heads,
    /// "Send me `author`'s records from `from_seq`, at most `limit`."
    Range {
        /// Whose log.
        author: [u8; 32],
        /// First seq wanted.
        from_seq: u64,
        /// At most this many.
        limit: u32,
    },
}

/// One author's head on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireHead {
    /// The author.
    pub author: [u8; 32],
    /// Highest contiguous seq.
    pub seq: u64,
    /// Id of that record.
    pub id: [u8; 32],
}

/// A sync response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncResponse {
    /// The responder's vector clock.
    Heads(Vec<WireHead>),
    /// Canonical record bytes, in seq order.
    Records(Vec<serde_bytes::ByteBuf>),
    /// The request could not be served.
    Refused(String),
}

/// A range to fetch from a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fetch {
    /// Whose log.
    pub author: MemberId,
    /// First seq.
    pub from_seq: u64,
    /// At most this many.
    pub limit: u32,
}

/// Our heads as wire heads.
pub fn to_wire(heads: &[(MemberId, Head)]) -> Vec<WireHead> {
    heads.iter().map(|(a, h)| WireHead { author: a.0, seq: h.seq, id: h.id.0 }).collect()
}

/// Whether a peer's clock equals ours: then the replicas are identical.
pub fn same_clock(mine: &[(MemberId, Head)], theirs: &[WireHead]) -> bool {
    let mut theirs = theirs.to_vec();
    theirs.sort_by_key(|h| h.author);
    let mut ours = to_wire(mine);
    ours.sort_by_key(|h| h.author);
    ours == theirs
}

/// What to fetch from a peer whose clock is `theirs`. `my_id_at(author, seq)` gives the id of
/// the record we hold at that position, to spot a fork at a seq both sides hold.
pub fn plan(
    mine: &BTreeMap<MemberId, Head>,
    theirs: &[WireHead],
    my_id_at: impl Fn(&MemberId, u64) -> Option<RecordId>,
) -> Vec<Fetch> {
    let mut fetches = Vec::new();
    for head in theirs {
        let author = MemberId(head.author);
        let held = mine.get(&author).map_or(0, |h| h.seq);
        if head.seq > held {
            fetches.push(Fetch { author, from_seq: held + 1, limit: BATCH });
        } else if head.seq > 0 && my_id_at(&author, head.seq).is_some_and(|id| id.0 != head.id) {
            fetches.push(Fetch { author, from_seq: head.seq, limit: 1 });
        }
    }
    fetches
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(seq: u64, id: u8) -> Head {
        Head { seq, id: RecordId([id; 32]) }
    }

    #[test]
    fn fetches_what_is_missing_and_forks() {
        let (a, b, c) = (MemberId([1; 32]), MemberId([2; 32]), MemberId([3; 32]));
        let mine: BTreeMap<_, _> = [(a, head(5, 5)), (b, head(9, 9))].into_iter().collect();
        let theirs = vec![
            WireHead { author: a.0, seq: 8, id: [8; 32] },
            WireHead { author: b.0, seq: 3, id: [0xee; 32] },
            WireHead { author: c.0, seq: 2, id: [2; 32] },
        ];
        let plan = plan(&mine, &theirs, |_, seq| Some(RecordId([seq as u8; 32])));
        assert_eq!(
            plan,
            vec![
                Fetch { author: a, from_seq: 6, limit: BATCH },
                Fetch { author: b, from_seq: 3, limit: 1 },
                Fetch { author: c, from_seq: 1, limit: BATCH },
            ]
        );
    }

    #[test]
    fn equal_clocks_plan_nothing() {
        let a = MemberId([1; 32]);
        let mine = vec![(a, head(4, 4))];
        let theirs = to_wire(&mine);
        assert!(same_clock(&mine, &theirs));
        let map: BTreeMap<_, _> = mine.into_iter().collect();
        assert!(plan(&map, &theirs, |_, seq| Some(RecordId([seq as u8; 32]))).is_empty());
    }
}
