//! Member identities: an ed25519 verifying key.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

/// A member of the federation, named by its ed25519 verifying key (32 bytes, hex in text).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct MemberId(pub [u8; 32]);

impl MemberId {
    /// The member id of a verifying key.
    pub fn from_key(key: &VerifyingKey) -> Self {
        Self(key.to_bytes())
    }

    /// The verifying key, if the bytes are a valid point.
    pub fn verifying_key(&self) -> Option<VerifyingKey> {
        VerifyingKey::from_bytes(&self.0).ok()
    }

    /// The first 8 hex digits, for logs.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }
}

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MemberId({})", self.short())
    }
}

/// A member id given as text is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a member id is 64 hex digits (an ed25519 public key), got {0:?}")]
pub struct ParseMemberIdError(String);

impl FromStr for MemberId {
    type Err = ParseMemberIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| ParseMemberIdError(s.to_owned()))?;
        Ok(Self(out))
    }
}

impl From<MemberId> for String {
    fn from(id: MemberId) -> Self {
        id.to_string()
    }
}

impl TryFrom<String> for MemberId {
    type Error = ParseMemberIdError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_agree() {
        let mut bytes = [0x11; 32];
        bytes[..4].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        let id = MemberId(bytes);
        let hex = format!("deadbeef{}", "11".repeat(28));
        assert_eq!(id.short(), "deadbeef");
        assert_eq!(format!("{id:?}"), "MemberId(deadbeef)");
        assert_eq!(id.to_string(), hex);
        assert_eq!(String::from(id), hex);
        assert_eq!(MemberId::try_from(hex), Ok(id));
        assert_eq!("dead".parse::<MemberId>(), Err(ParseMemberIdError("dead".into())));
    }

    #[test]
    fn a_key_round_trips_and_a_non_point_has_none() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]).verifying_key();
        assert_eq!(MemberId::from_key(&key).verifying_key(), Some(key));
        // y = 2 is not the y of any curve point.
        let mut not_a_point = [0; 32];
        not_a_point[0] = 2;
        assert_eq!(MemberId(not_a_point).verifying_key(), None);
    }
}
