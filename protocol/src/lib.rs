//! The hashmesh protocol: what members say to each other, and how every node judges it.
//!
//! This crate does no I/O. It holds the signed [`Record`] and its canonical encoding, the
//! [`Fingerprint`] kinds, the federation [`Manifest`], and the verification [`policy`] — a
//! pure function from an entry, its votes and the membership to a [`Status`]. Keeping it free
//! of tokio, sled and libp2p means it can be property-tested and fuzzed on its own, and every
//! node that links it derives exactly the same state from the same records.

pub mod category;
pub mod codec;
pub mod error;
pub mod fingerprint;
pub mod governance;
pub mod manifest;
pub mod member;
pub mod policy;
pub mod proof;
pub mod record;
pub mod schema;
pub mod vpdq;

pub use category::Category;
pub use error::{DecodeError, ValidationError};
pub use fingerprint::{Fingerprint, FingerprintKind, ValueLen};
pub use governance::{Approval, Changes, Epoch, Governance, Proposal, ProposalId, Removal, Rotation};
pub use manifest::{Manifest, ManifestError, MemberInfo, PolicyParams, RetiredKey};
pub use member::MemberId;
pub use policy::{Action, EntryVotes, Former, Policy, Status, Verdict};
pub use proof::{EquivocationProof, ProofError};
pub use record::{
    Body, DailyCount, Entry, Membership, Record, RecordId, Retract, Stats, UnsignedRecord, Vote,
};
