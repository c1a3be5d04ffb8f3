//! The `/hashmesh/sync/3` messages, and the checks every answer passes before anything in it
//! is used. No I/O: the network layer moves these, the engine decides what to send.

use hashmesh_protocol::{DecodeError, MemberId, Record};
use serde::{Deserialize, Serialize};

use super::clock::Clock;

/// The request-response protocol name.
pub const PROTOCOL: &str = "/hashmesh/sync/3";
/// Most records asked for in one range request.
pub const BATCH: u32 = 4_000;
/// A range response stops adding records past this many bytes.
pub const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;
/// Largest request on the wire.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// Largest response on the wire: a full range plus framing.
pub const MAX_WIRE_RESPONSE_BYTES: usize = MAX_RESPONSE_BYTES + 2 * hashmesh_protocol::codec::MAX_RECORD_SIZE;

/// A sync request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncRequest {
    /// "What do you hold?"
    Heads,
    /// "Send me `author`'s records from `from_seq`, at most `limit`."
    Range {
        /// Whose log.
        author: MemberId,
        /// First seq wanted.
        from_seq: u64,
        /// At most this many.
        limit: u32,
    },
    /// "Send me your proof that `author` equivocated."
    Proof {
        /// Whose proof.
        author: MemberId,
    },
}

/// A sync response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncResponse {
    /// The responder's vector clock, and the membership epoch it has in force.
    Heads {
        /// Its clock.
        clock: Clock,
        /// Its epoch.
        epoch: u64,
        /// blake3 of its manifest: peers on one epoch with different digests disagree on the
        /// membership, which the records alone cannot cause.
        manifest: [u8; 32],
    },
    /// Canonical record bytes, in seq order.
    Records(Vec<serde_bytes::ByteBuf>),
    /// An encoded proof of equivocation.
    Proof(serde_bytes::ByteBuf),
    /// The request could not be served.
    Refused(String),
}

/// Why a range answer cannot be used. Each is the answering peer's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// A record does not decode.
    #[error("record {index} of the answer does not decode: {error}")]
    Decode {
        /// Its place in the answer.
        index: usize,
        /// Why.
        error: DecodeError,
    },
    /// More records than asked for.
    #[error("asked for at most {asked} records, got {got}")]
    TooMany {
        /// The limit asked.
        asked: u32,
        /// Records received.
        got: usize,
    },
    /// A record of someone else's log.
    #[error("asked for {asked}'s log, got a record by {got}")]
    WrongAuthor {
        /// The author asked for.
        asked: MemberId,
        /// The author received.
        got: MemberId,
    },
    /// Records not consecutive from the seq asked for.
    #[error("expected seq {expected} at place {index} of the answer, got {got}")]
    WrongSeq {
        /// Its place in the answer.
        index: usize,
        /// The seq it should have had.
        expected: u64,
        /// The seq it had.
        got: u64,
    },
}

/// Decodes a range answer and checks it is what was asked: `author`'s records, consecutive
/// from `from_seq`, at most `limit`. Signatures are checked later, by the replica's verifier.
pub fn decode_range(
    author: MemberId,
    from_seq: u64,
    limit: u32,
    records: &[serde_bytes::ByteBuf],
) -> Result<Vec<Record>, RangeError> {
    if records.len() > limit as usize {
        return Err(RangeError::TooMany { asked: limit, got: records.len() });
    }
    records
        .iter()
        .enumerate()
        .map(|(index, bytes)| {
            let record = Record::decode(bytes).map_err(|error| RangeError::Decode { index, error })?;
            if record.author() != author {
                return Err(RangeError::WrongAuthor { asked: author, got: record.author() });
            }
            let expected = from_seq + index as u64;
            if record.seq() != expected {
                return Err(RangeError::WrongSeq { index, expected, got: record.seq() });
            }
            Ok(record)
        })
        .collect()
}
