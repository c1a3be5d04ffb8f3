//! Fingerprints: a kind and its value, written `kind:hex`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The kinds of fingerprint the protocol knows, each with a fixed value length.
///
/// The numeric tags are part of the canonical encoding and must never be reused.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum FingerprintKind {
    /// BLAKE3 of the file bytes.
    Blake3,
    /// SHA-256 of the file bytes.
    Sha256,
    /// SHA-1 of the file bytes.
    Sha1,
    /// MD5 of the file bytes.
    Md5,
    /// Meta's PDQ perceptual hash, 256 bits.
    Pdq,
    /// BLAKE3 of a normalised URL.
    Url,
    /// image_hasher double-gradient hash, hash size 16×16 (a 9×9 grid), 144 bits.
    Dhash,
    /// image_hasher mean-of-DCT hash, 8×8, 64 bits.
    Phash,
    /// Meta's vPDQ video hash: a PDQ hash, quality and timestamp per sampled frame
    /// ([`crate::vpdq`]).
    Vpdq,
}

/// How long a value of a kind is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueLen {
    /// Exactly this many bytes.
    Fixed(usize),
    /// A whole number of frames of [`crate::vpdq::FRAME_LEN`] bytes, 1 to
    /// [`crate::vpdq::MAX_FRAMES`] of them.
    Frames,
}

impl FingerprintKind {
    /// Every kind, in tag order.
    pub const ALL: [Self; 9] = [
        Self::Blake3,
        Self::Sha256,
        Self::Sha1,
        Self::Md5,
        Self::Pdq,
        Self::Url,
        Self::Dhash,
        Self::Phash,
        Self::Vpdq,
    ];

    /// The name used in `kind:hex`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Blake3 => "blake3",
            Self::Sha256 => "sha256",
            Self::Sha1 => "sha1",
            Self::Md5 => "md5",
            Self::Pdq => "pdq",
            Self::Url => "url",
            Self::Dhash => "dhash",
            Self::Phash => "phash",
            Self::Vpdq => "vpdq",
        }
    }

    /// Length of a value of this kind.
    pub fn value_len(self) -> ValueLen {
        match self {
            Self::Blake3 | Self::Sha256 | Self::Pdq | Self::Url => ValueLen::Fixed(32),
            Self::Sha1 => ValueLen::Fixed(20),
            Self::Md5 => ValueLen::Fixed(16),
            Self::Dhash => ValueLen::Fixed(18),
            Self::Phash => ValueLen::Fixed(8),
            Self::Vpdq => ValueLen::Frames,
        }
    }

    /// Length of a value of this kind if all have one length (every kind but `vpdq`).
    pub fn fixed_len(self) -> Option<usize> {
        match self.value_len() {
            ValueLen::Fixed(n) => Some(n),
            ValueLen::Frames => None,
        }
    }

    /// Whether values match by Hamming distance rather than equality.
    pub fn is_perceptual(self) -> bool {
        matches!(self, Self::Pdq | Self::Dhash | Self::Phash | Self::Vpdq)
    }

    /// The tag byte in the canonical encoding.
    pub fn tag(self) -> u8 {
        match self {
            Self::Blake3 => 1,
            Self::Sha256 => 2,
            Self::Sha1 => 3,
            Self::Md5 => 4,
            Self::Pdq => 5,
            Self::Url => 6,
            Self::Dhash => 7,
            Self::Phash => 8,
            Self::Vpdq => 9,
        }
    }

    /// The kind with this tag byte.
    pub fn from_tag(tag: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.tag() == tag)
    }
}

impl fmt::Display for FingerprintKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl FromStr for FingerprintKind {
    type Err = ParseFingerprintError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| ParseFingerprintError::UnknownKind(s.to_owned()))
    }
}

/// A fingerprint: its kind and a value of exactly that kind's length.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Fingerprint {
    kind: FingerprintKind,
    value: Vec<u8>,
}

impl Fingerprint {
    /// A fingerprint, if `value` has the kind's length.
    pub fn new(kind: FingerprintKind, value: Vec<u8>) -> Result<Self, ParseFingerprintError> {
        match kind.value_len() {
            ValueLen::Fixed(expected) if value.len() != expected => {
                return Err(ParseFingerprintError::WrongLength { kind, expected, got: value.len() });
            }
            ValueLen::Fixed(_) => {}
            ValueLen::Frames => crate::vpdq::validate(&value).map_err(ParseFingerprintError::Vpdq)?,
        }
        Ok(Self { kind, value })
    }

    /// The kind.
    pub fn kind(&self) -> FingerprintKind {
        self.kind
    }

    /// The value bytes.
    pub fn value(&self) -> &[u8] {
        &self.value
    }

    /// The value in lowercase hex.
    pub fn value_hex(&self) -> String {
        hex::encode(&self.value)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, hex::encode(&self.value))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind.value_len() {
            ValueLen::Fixed(_) => fmt::Display::fmt(self, f),
            // A video's value runs to hundreds of kilobytes: name it, don't print it.
            ValueLen::Frames => write!(
                f,
                "vpdq:[{} frames, blake3 {}]",
                self.value.len() / crate::vpdq::FRAME_LEN,
                &blake3::hash(&self.value).to_hex()[..16]
            ),
        }
    }
}

/// Text is not a `kind:hex` fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseFingerprintError {
    /// No `:` separates kind and value.
    #[error("fingerprint {0:?} is not of the form kind:hex (for example sha256:9f86…)")]
    NoSeparator(String),
    /// The kind is not known.
    #[error(
        "unknown fingerprint kind {0:?}; known kinds: blake3, sha256, sha1, md5, pdq, url, dhash, phash, vpdq"
    )]
    UnknownKind(String),
    /// The value is not hex.
    #[error("the value of a {0} fingerprint must be hexadecimal")]
    NotHex(FingerprintKind),
    /// The value has the wrong length.
    #[error("a {kind} fingerprint is {expected} bytes ({} hex digits), got {got} bytes", expected * 2)]
    WrongLength {
        /// The kind.
        kind: FingerprintKind,
        /// Its length in bytes.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// A `vpdq` value is malformed.
    #[error(transparent)]
    Vpdq(crate::vpdq::VpdqError),
}

impl FromStr for Fingerprint {
    type Err = ParseFingerprintError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, value) =
            s.split_once(':').ok_or_else(|| ParseFingerprintError::NoSeparator(s.to_owned()))?;
        let kind: FingerprintKind = kind.trim().to_ascii_lowercase().parse()?;
        let value = value.trim();
        if value.len() % 2 != 0 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(match kind.value_len() {
                ValueLen::Fixed(expected) if value.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    ParseFingerprintError::WrongLength { kind, expected, got: value.len() / 2 }
                }
                ValueLen::Frames if value.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    ParseFingerprintError::Vpdq(crate::vpdq::VpdqError::PartialFrame(value.len() / 2))
                }
                _ => ParseFingerprintError::NotHex(kind),
            });
        }
        let bytes = hex::decode(value).map_err(|_| ParseFingerprintError::NotHex(kind))?;
        Self::new(kind, bytes)
    }
}

impl From<Fingerprint> for String {
    fn from(f: Fingerprint) -> Self {
        f.to_string()
    }
}

impl TryFrom<String> for Fingerprint {
    type Error = ParseFingerprintError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_kind_hex() {
        let text = format!("md5:{}", "ab".repeat(16));
        let fp: Fingerprint = text.parse().expect("valid md5");
        assert_eq!(fp.kind(), FingerprintKind::Md5);
        assert_eq!(fp.to_string(), text);
    }

    #[test]
    fn rejects_wrong_length_per_kind() {
        let short = format!("sha1:{}", "ab".repeat(19));
        assert!(matches!(
            short.parse::<Fingerprint>(),
            Err(ParseFingerprintError::WrongLength { expected: 20, got: 19, .. })
        ));
        assert!(matches!(
            "sha256:abc".parse::<Fingerprint>(),
            Err(ParseFingerprintError::WrongLength { .. })
        ));
        assert!(matches!("nope:00".parse::<Fingerprint>(), Err(ParseFingerprintError::UnknownKind(_))));
        assert!(matches!(
            format!("md5:{}", "zz".repeat(16)).parse::<Fingerprint>(),
            Err(ParseFingerprintError::NotHex(_))
        ));
    }

    #[test]
    fn tags_round_trip_and_are_unique() {
        for kind in FingerprintKind::ALL {
            assert_eq!(FingerprintKind::from_tag(kind.tag()), Some(kind));
        }
    }

    #[test]
    fn odd_hex_reports_the_whole_bytes_given() {
        assert_eq!(
            "md5:abcde".parse::<Fingerprint>(),
            Err(ParseFingerprintError::WrongLength { kind: FingerprintKind::Md5, expected: 16, got: 2 })
        );
        assert_eq!("md5".parse::<Fingerprint>(), Err(ParseFingerprintError::NoSeparator("md5".into())));
        let text = format!(" MD5 : {} ", "AB".repeat(16));
        assert_eq!(
            text.parse::<Fingerprint>().map(|f| f.to_string()),
            Ok(format!("md5:{}", "ab".repeat(16)))
        );
    }

    #[test]
    fn only_pdq_dhash_phash_and_vpdq_are_perceptual() {
        let perceptual: Vec<_> = FingerprintKind::ALL.into_iter().filter(|k| k.is_perceptual()).collect();
        assert_eq!(
            perceptual,
            [FingerprintKind::Pdq, FingerprintKind::Dhash, FingerprintKind::Phash, FingerprintKind::Vpdq]
        );
    }

    #[test]
    fn every_kind_but_vpdq_has_one_length() {
        for kind in FingerprintKind::ALL {
            match kind {
                FingerprintKind::Vpdq => assert_eq!(kind.fixed_len(), None),
                _ => assert_eq!(Some(kind.value_len()), kind.fixed_len().map(ValueLen::Fixed), "{kind}"),
            }
        }
        assert_eq!(FingerprintKind::Md5.fixed_len(), Some(16));
        assert_eq!(FingerprintKind::Vpdq.value_len(), ValueLen::Frames);
    }

    #[test]
    fn vpdq_values_are_whole_valid_frames() {
        let frame = format!("{}{}{}", "ab".repeat(32), "64", "000003e8");
        let fp: Fingerprint = format!("vpdq:{frame}{frame}").parse().expect("two frames");
        assert_eq!(fp.value().len(), 2 * crate::vpdq::FRAME_LEN);
        assert!(format!("{fp:?}").starts_with("vpdq:[2 frames, blake3 "), "{fp:?}");
        assert_eq!(
            format!("vpdq:{frame}ab").parse::<Fingerprint>(),
            Err(ParseFingerprintError::Vpdq(crate::vpdq::VpdqError::PartialFrame(38)))
        );
        assert_eq!(
            format!("vpdq:{frame}a").parse::<Fingerprint>(),
            Err(ParseFingerprintError::Vpdq(crate::vpdq::VpdqError::PartialFrame(37)))
        );
        assert_eq!(
            "vpdq:".parse::<Fingerprint>(),
            Err(ParseFingerprintError::Vpdq(crate::vpdq::VpdqError::Empty))
        );
        assert!(matches!("vpdq:zz".parse::<Fingerprint>(), Err(ParseFingerprintError::NotHex(_))));
    }

    #[test]
    fn text_forms_agree() {
        let fp =
            Fingerprint::new(FingerprintKind::Phash, vec![0x0f, 1, 2, 3, 4, 5, 6, 0xff]).expect("8 bytes");
        assert_eq!(fp.value_hex(), "0f010203040506ff");
        assert_eq!(format!("{fp:?}"), "phash:0f010203040506ff");
        assert_eq!(String::from(fp.clone()), "phash:0f010203040506ff");
        assert_eq!(Fingerprint::try_from("phash:0f010203040506ff".to_owned()), Ok(fp));
    }
}
