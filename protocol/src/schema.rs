//! How the protocol's types look in the node's OpenAPI document: the types written as text
//! (`kind:hex` fingerprints, hex ids, category names) are strings with the exact pattern their
//! parser accepts, built from the same constants, so the document cannot drift from the code.
//! The plain structs and enums derive their schemas where they are defined.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::category::MAX_CATEGORY_LEN;
use crate::{Category, Fingerprint, FingerprintKind, MemberId, ProposalId, RecordId};

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
        .map(|kind| format!("{}:[0-9a-fA-F]{{{}}}", kind.name(), kind.value_len() * 2))
        .collect();
    format!("^(?:{})$", alternatives.join("|"))
}

/// The pattern of a category name.
pub fn category_pattern() -> String {
    format!("^[a-z0-9_]{{1,{MAX_CATEGORY_LEN}}}$")
}

impl PartialSchema for Fingerprint {
    fn schema() -> RefOr<Schema> {
        text(
            "A fingerprint, `kind:hex`: blake3, sha256, pdq and url 64 hex digits, sha1 40, md5 32, dhash 36, phash 16.",
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
            let digits = kind.value_len() * 2;
            assert!(pattern.contains(&format!("{}:[0-9a-fA-F]{{{digits}}}", kind.name())), "{kind}");
            let valid = format!("{}:{}", kind.name(), "a".repeat(digits));
            assert!(valid.parse::<Fingerprint>().is_ok(), "{valid}");
            let short = format!("{}:{}", kind.name(), "a".repeat(digits - 2));
            assert!(short.parse::<Fingerprint>().is_err(), "{short}");
        }
        assert_eq!(category_pattern(), "^[a-z0-9_]{1,32}$");
    }
}
