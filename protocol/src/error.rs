//! Why a record could not be decoded or accepted.

use crate::{MemberId, RecordId};

/// A byte string is not a well-formed record. Every variant names the limit or field at fault,
/// so a peer's bad message can be logged and counted with a reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended before the record did.
    #[error("record is truncated: needed {needed} more bytes while reading {field}")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// How many bytes were missing.
        needed: usize,
    },
    /// The record is larger than the protocol allows.
    #[error("record is {size} bytes, the limit is {limit}")]
    TooLarge {
        /// Size of the input.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The encoding version is not one this node understands.
    #[error("unknown encoding version {0}; this node speaks version {v}", v = crate::codec::VERSION)]
    UnknownVersion(u8),
    /// A tag byte has no meaning at this position.
    #[error("unknown {field} tag {tag}")]
    UnknownTag {
        /// The field being read.
        field: &'static str,
        /// The tag found.
        tag: u8,
    },
    /// A list or string is longer than allowed.
    #[error("{field} has {len} items/bytes, the limit is {limit}")]
    LimitExceeded {
        /// The field at fault.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// A string is not UTF-8.
    #[error("{0} is not valid UTF-8")]
    InvalidUtf8(&'static str),
    /// Bytes remain after the record ended.
    #[error("{0} unexpected bytes after the end of the record")]
    TrailingBytes(usize),
    /// A field holds a value that is not allowed.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field at fault.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// A well-formed record that must not be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// The bytes are not a record.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The signature does not verify under the author's key.
    #[error("signature of record {0} does not verify under its author's key")]
    BadSignature(RecordId),
    /// The author key is not a valid ed25519 point.
    #[error("author {0} is not a valid ed25519 public key")]
    BadAuthorKey(MemberId),
    /// The author is not a member of the federation.
    #[error("author {0} is not a member of this federation")]
    NotMember(MemberId),
    /// The author's key was retired (removed or rotated) and its log ended before this record.
    #[error("author {author} was retired in epoch {epoch}: its log ends at seq {last_seq}")]
    Retired {
        /// The retired key.
        author: MemberId,
        /// The epoch that retired it.
        epoch: u64,
        /// The last seq that counts.
        last_seq: u64,
    },
    /// A membership record's changes do not parse.
    #[error("membership changes are not valid: {0}")]
    BadChanges(String),
    /// `seq` 0 is never used.
    #[error("sequence numbers start at 1")]
    ZeroSeq,
    /// The first record must have a zero `prev`.
    #[error("record seq 1 must have a zero prev")]
    FirstPrevNotZero,
    /// `prev` does not name the author's previous record.
    #[error("prev of seq {seq} is {got}, but the author's record {prev_seq} is {expected}", prev_seq = seq - 1)]
    BrokenChain {
        /// Sequence number of the record.
        seq: u64,
        /// The `prev` it carries.
        got: RecordId,
        /// The id of the record it should chain to.
        expected: RecordId,
    },
    /// The entry's category is not one the federation allows.
    #[error("category {0:?} is not allowed by the federation manifest")]
    UnknownCategory(String),
}
