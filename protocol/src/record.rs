//! Records: everything a member says, signed, in its own append-only log.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::{Category, DecodeError, Fingerprint, MemberId, ValidationError, Verdict, codec};

/// `blake3` of a signed record's canonical bytes: the record's name everywhere.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct RecordId(pub [u8; 32]);

impl RecordId {
    /// The all-zero id, used as `prev` of an author's first record.
    pub const ZERO: Self = Self([0; 32]);

    /// The id of a record's canonical bytes.
    pub fn of_bytes(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecordId({})", hex::encode(&self.0[..4]))
    }
}

/// Text is not a 64-hex-digit record id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a record id is 64 hex digits, got {0:?}")]
pub struct ParseRecordIdError(pub String);

impl FromStr for RecordId {
    type Err = ParseRecordIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| ParseRecordIdError(s.to_owned()))?;
        Ok(Self(out))
    }
}

impl From<RecordId> for String {
    fn from(id: RecordId) -> Self {
        id.to_string()
    }
}

impl TryFrom<String> for RecordId {
    type Error = ParseRecordIdError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// A fingerprint entry: content a member removed, and what it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Fingerprints of the content (1 to 64).
    pub fingerprints: Vec<Fingerprint>,
    /// What kind of content it is.
    pub category: Category,
    /// Links where it was seen (up to 32, each up to 2 KiB).
    pub links: Vec<String>,
    /// Free text for reviewers (up to 4 KiB).
    pub note: Option<String>,
    /// Unix ms after which the entry no longer applies.
    pub expires_at: Option<u64>,
}

/// A member's verdict on another member's entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// The entry voted on.
    pub entry: RecordId,
    /// Confirm or dispute.
    pub verdict: Verdict,
    /// Why.
    pub reason: Option<String>,
    /// The member-internal name of the admin who voted, for the member's own audit trail.
    pub reviewer: Option<String>,
}

/// The author withdraws one of its own entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retract {
    /// The entry withdrawn.
    pub entry: RecordId,
    /// Why.
    pub reason: Option<String>,
}

/// A member proposes, or approves, changes to the federation for a new epoch. The first such
/// record names a proposal; a record with the same epoch and the same text approves it. The
/// changes take effect once a majority of the previous epoch's members have approved them
/// (see [`governance`](crate::governance)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// The epoch the changes make.
    pub epoch: u64,
    /// The changes, as TOML text ([`Changes`](crate::Changes)).
    pub changes: String,
}

/// A member's counters of one day (UTC): how often its platform matched content of each
/// category, and how often the match removed it. A member signs them during the day and
/// after; its record with the highest seq for a day is the one that counts. Summed across
/// members, they are the figures members today report publicly by hand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Stats {
    /// Days since 1970-01-01 (UTC).
    pub day: u32,
    /// One per category with any count, in category order, each category once.
    pub counts: Vec<DailyCount>,
}

/// One category's counters in a [`Stats`] record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DailyCount {
    /// The category.
    pub category: Category,
    /// Content matched to entries of this category.
    pub matches: u64,
    /// Of those, content removed (the match's action was `remove`).
    pub removals: u64,
}

/// What a record says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Body {
    /// A new fingerprint entry.
    Entry(Entry),
    /// A vote on an entry.
    Vote(Vote),
    /// A retraction of the author's own entry.
    Retract(Retract),
    /// A proposal or approval of changes to the federation.
    Membership(Membership),
    /// A member's daily counters.
    Stats(Stats),
}

impl Body {
    /// The entry this body refers to, for votes and retractions.
    pub fn target(&self) -> Option<RecordId> {
        match self {
            Body::Vote(v) => Some(v.entry),
            Body::Retract(r) => Some(r.entry),
            Body::Entry(_) | Body::Membership(_) | Body::Stats(_) => None,
        }
    }
}

/// A record before it is signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsignedRecord {
    /// The author.
    pub author: MemberId,
    /// Position in the author's log, from 1.
    pub seq: u64,
    /// Id of the author's record `seq - 1`, zero for `seq` 1.
    pub prev: RecordId,
    /// Unix ms when it was written; informative only, never used for ordering.
    pub timestamp: u64,
    /// What it says.
    pub body: Body,
}

impl UnsignedRecord {
    /// Signs the record with the author's key.
    ///
    /// Fails only if the body breaks an encoding limit (too many fingerprints, a note too
    /// long, …), so the caller learns about it before anything is stored or sent.
    pub fn sign(self, key: &SigningKey) -> Result<Record, DecodeError> {
        debug_assert_eq!(self.author, MemberId::from_key(&key.verifying_key()));
        let mut bytes = codec::encode_unsigned(&self)?;
        let signature = key.sign(&bytes).to_bytes();
        bytes.extend_from_slice(&signature);
        let id = RecordId::of_bytes(&bytes);
        Ok(Record { unsigned: self, signature, id, bytes })
    }
}

/// A signed record, with its canonical bytes and id kept alongside so they are computed once.
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    unsigned: UnsignedRecord,
    signature: [u8; 64],
    id: RecordId,
    bytes: Vec<u8>,
}

impl Record {
    /// Decodes canonical bytes, enforcing every size limit. Does not check the signature.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let (unsigned, signature) = codec::decode(bytes)?;
        Ok(Self { unsigned, signature, id: RecordId::of_bytes(bytes), bytes: bytes.to_vec() })
    }

    /// Decodes and checks the signature: what to do with anything that came from outside.
    pub fn decode_verified(bytes: &[u8]) -> Result<Self, ValidationError> {
        let record = Self::decode(bytes)?;
        record.verify_signature()?;
        Ok(record)
    }

    /// Checks the signature with `verify_strict`, which rejects malleable signatures and
    /// small-order keys, so a record has exactly one valid encoding and id.
    pub fn verify_signature(&self) -> Result<(), ValidationError> {
        let key = self
            .unsigned
            .author
            .verifying_key()
            .ok_or(ValidationError::BadAuthorKey(self.unsigned.author))?;
        self.verify_signature_with(&key)
    }

    /// Like [`Record::verify_signature`] with the author's key already decompressed, which
    /// saves a point decompression per record when checking many records of one author.
    /// A key that is not the author's fails.
    pub fn verify_signature_with(&self, key: &VerifyingKey) -> Result<(), ValidationError> {
        if key.to_bytes() != self.unsigned.author.0 {
            return Err(ValidationError::BadSignature(self.id));
        }
        let signature = Signature::from_bytes(&self.signature);
        key.verify_strict(self.signed_bytes(), &signature).map_err(|_| ValidationError::BadSignature(self.id))
    }

    /// The bytes covered by the signature.
    pub fn signed_bytes(&self) -> &[u8] {
        &self.bytes[..self.bytes.len() - 64]
    }

    /// The full canonical bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The record id.
    pub fn id(&self) -> RecordId {
        self.id
    }

    /// The author.
    pub fn author(&self) -> MemberId {
        self.unsigned.author
    }

    /// The sequence number.
    pub fn seq(&self) -> u64 {
        self.unsigned.seq
    }

    /// The previous record's id.
    pub fn prev(&self) -> RecordId {
        self.unsigned.prev
    }

    /// The author's timestamp (unix ms).
    pub fn timestamp(&self) -> u64 {
        self.unsigned.timestamp
    }

    /// The body.
    pub fn body(&self) -> &Body {
        &self.unsigned.body
    }

    /// The signature bytes.
    pub fn signature(&self) -> &[u8; 64] {
        &self.signature
    }

    /// Checks that this record follows `prev_head` (the id of the author's record `seq - 1`,
    /// or `None` if this should be the first).
    pub fn check_follows(&self, prev_head: Option<RecordId>) -> Result<(), ValidationError> {
        match (self.seq(), prev_head) {
            (0, _) => Err(ValidationError::ZeroSeq),
            (1, _) if self.prev() != RecordId::ZERO => Err(ValidationError::FirstPrevNotZero),
            (1, _) => Ok(()),
            (seq, Some(expected)) if self.prev() != expected => {
                Err(ValidationError::BrokenChain { seq, got: self.prev(), expected })
            }
            _ => Ok(()),
        }
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("id", &self.id)
            .field("author", &self.unsigned.author)
            .field("seq", &self.unsigned.seq)
            .field("body", &self.unsigned.body)
            .finish()
    }
}

#[cfg(test)]
mod tests;
