//! How the protocol's types look in the node's OpenAPI document: the types written as text
//! (`kind:hex` fingerprints, hex ids, category names) are strings with the exact pattern their
//! parser accepts, built from the same constants, so the document cannot drift from the code.
//! The plain structs and enums derive their schemas where they are defined.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::category::MAX_CATEGORY_LEN;
use crate::{Category, Fingerprint, FingerprintKind, MemberId, ProposalId, RecordId, ValueLen};

/// A string schema with a pattern.
fn text(description: &str, pattern: String) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .pattern(Some(pattern))
        .into()
}

/// 32 bytes in hex, either case.
fn hex32(description: &str) -> RefOr<Schema> {
    text(description, "^[0-9a-fA-F]{64}$".to_owned())
}

/// The pattern of `kind:hex`: each kind with exactly its value's length in hex digits.
pub fn fingerprint_pattern() -> String {
    let alternatives: Vec<String> = FingerprintKind::ALL
        .iter()
        .map(|kind| match kind.value_len() {
            ValueLen::Fixed(len) => format!("{}:[0-9a-fA-F]{{{}}}", kind.name(), len * 2),
            // A frame: hash, quality 0x00–0x64, timestamp. The frame limit is left to the
            // parser: a bounded repeat of 21,600 is more than regex engines like to compile.
            ValueLen::Frames => format!("{}:{VPDQ_FRAME_PATTERN}+", kind.name()),
        })
        .collect();
    format!("^(?:{})$", alternatives.join("|"))
}

/// One frame of a `vpdq` value in hex: 32 hash bytes, a quality of at most 100, a timestamp.
const VPDQ_FRAME_PATTERN: &str = "(?:[0-9a-fA-F]{64}(?:[0-5][0-9a-fA-F]|6[0-4])[0-9a-fA-F]{8})";

/// The pattern of a category name.
pub fn category_pattern() -> String {
    format!("^[a-z0-9_]{{1,{MAX_CATEGORY_LEN}}}$")
}

impl PartialSchema for Fingerprint {
    fn schema() -> RefOr<Schema> {
        text(
            "A fingerprint, `kind:hex`: blake3, sha256, pdq and url 64 hex digits, sha1 40, md5 32, dhash 36, phash 16; vpdq 74 a frame (hash, quality, timestamp in ms), 1 to 21,600 frames.",
            fingerprint_pattern(),
        )
    }
}
impl ToSchema for Fingerprint {}

impl PartialSchema for MemberId {
    fn schema() -> RefOr<Schema> {
        hex32("A member: its ed25519 public key, 64 hex digits.")
    }
}
impl ToSchema for MemberId {}

impl PartialSchema for RecordId {
    fn schema() -> RefOr<Schema> {
        hex32("A record's id (an entry's id for an entry): blake3 of its signed bytes, 64 hex digits.")
    }
}
impl ToSchema for RecordId {}

impl PartialSchema for ProposalId {
    fn schema() -> RefOr<Schema> {
        hex32("A membership proposal's id, 64 hex digits.")
    }
}
impl ToSchema for ProposalId {}

impl PartialSchema for Category {
    fn schema() -> RefOr<Schema> {
        text(
            "A category name: csam, drugs, harmful_behavior, benign, or one the federation's manifest adds.",
            category_pattern(),
        )
    }
}
impl ToSchema for Category {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind's pattern accepts what the parser accepts in its canonical form, and the
    /// pattern refuses a digit too many or too few.
    #[test]
    fn fingerprint_pattern_names_each_kind_with_its_length() {
        let pattern = fingerprint_pattern();
        for kind in FingerprintKind::ALL {
            let Some(len) = kind.fixed_len() else { continue };
            let digits = len * 2;
            assert!(pattern.contains(&format!("{}:[0-9a-fA-F]{{{digits}}}", kind.name())), "{kind}");
            let valid = format!("{}:{}", kind.name(), "a".repeat(digits));
            assert!(valid.parse::<Fingerprint>().is_ok(), "{valid}");
            let short = format!("{}:{}", kind.name(), "a".repeat(digits - 2));
            assert!(short.parse::<Fingerprint>().is_err(), "{short}");
        }
        assert_eq!(category_pattern(), "^[a-z0-9_]{1,32}$");
    }

    /// The vpdq alternative accepts a frame of quality 100 and refuses 101.
    #[test]
    fn vpdq_pattern_bounds_the_quality() {
        let re = regex::Regex::new(&fingerprint_pattern()).expect("pattern compiles");
        let frame = |quality: &str| format!("{}{quality}{}", "ab".repeat(32), "00".repeat(4));
        let good = format!("vpdq:{}{}", frame("64"), frame("00"));
        assert!(re.is_match(&good) && good.parse::<Fingerprint>().is_ok());
        let bad = format!("vpdq:{}", frame("65"));
        assert!(!re.is_match(&bad) && bad.parse::<Fingerprint>().is_err());
        assert!(!re.is_match("vpdq:"));
    }
}
