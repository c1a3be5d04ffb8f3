//! python-threatexchange's and HMA's names for what hashmesh holds: signal types (each backed
//! by one of our fingerprint kinds) and banks (our categories). Shared by the HMA endpoints
//! (`rpc::hma`) and the `te` and `hma` list formats (`lists`).

use hashmesh_protocol::{Category, Fingerprint, FingerprintKind};

use crate::hashers;

/// The HMA signal types this node answers for, each backed by one of our fingerprint kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SignalType {
    /// `pdq` — our `pdq`.
    Pdq,
    /// `video_md5` — our `md5` (of the file bytes, whatever the file is: HMA has no plain
    /// `md5` type).
    VideoMd5,
    /// `video_sha256` — our `sha256`.
    VideoSha256,
    /// `url` — our `url` (blake3 of the normalised URL), looked up from the URL text.
    Url,
}

impl utoipa::PartialSchema for SignalType {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(Self::ALL.iter().map(|t| t.name())))
            .into()
    }
}
impl utoipa::ToSchema for SignalType {}

impl SignalType {
    /// Every type, as `GET /c/signal_type` lists them.
    pub const ALL: [Self; 4] = [Self::Pdq, Self::VideoMd5, Self::VideoSha256, Self::Url];

    /// HMA's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pdq => "pdq",
            Self::VideoMd5 => "video_md5",
            Self::VideoSha256 => "video_sha256",
            Self::Url => "url",
        }
    }

    /// The type named `name`, or HMA's message for an unknown one (with what we do answer).
    pub fn parse(name: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|t| t.name() == name).ok_or_else(|| {
            let known: Vec<&str> = Self::ALL.iter().map(|t| t.name()).collect();
            format!("No such SignalType '{name}' (this node matches {})", known.join(", "))
        })
    }

    /// Our fingerprint kind behind the type.
    pub fn kind(self) -> FingerprintKind {
        match self {
            Self::Pdq => FingerprintKind::Pdq,
            Self::VideoMd5 => FingerprintKind::Md5,
            Self::VideoSha256 => FingerprintKind::Sha256,
            Self::Url => FingerprintKind::Url,
        }
    }

    /// The HMA type of one of our fingerprint kinds, if it has one.
    pub fn of_kind(kind: FingerprintKind) -> Option<Self> {
        match kind {
            FingerprintKind::Pdq => Some(Self::Pdq),
            FingerprintKind::Md5 => Some(Self::VideoMd5),
            FingerprintKind::Sha256 => Some(Self::VideoSha256),
            FingerprintKind::Url => Some(Self::Url),
            FingerprintKind::Blake3
            | FingerprintKind::Sha1
            | FingerprintKind::Dhash
            | FingerprintKind::Phash
            | FingerprintKind::Vpdq => None,
        }
    }

    /// Checks `signal` as python-threatexchange's `validate_signal_str` does and turns it
    /// into our fingerprint. `Ok(None)`: a valid `url` signal that is not an absolute URL,
    /// which HMA would accept and never match. `Err`: HMA's 400 message.
    pub fn fingerprint(self, signal: &str) -> Result<Option<Fingerprint>, String> {
        let hex_of = |kind: FingerprintKind, text: &str, why: String| {
            let ok = kind.fixed_len().is_some_and(|len| text.len() == 2 * len)
                && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
            let value =
                hex::decode(text).ok().filter(|_| ok).ok_or_else(|| format!("invalid signal: {why}"))?;
            Fingerprint::new(kind, value).map(Some).map_err(|e| format!("invalid signal: {e}"))
        };
        match self {
            // Lower case only, as PdqSignal's regex: upper case is refused, not normalised.
            Self::Pdq => hex_of(FingerprintKind::Pdq, signal, "invalid PDQ hash".into()),
            Self::VideoMd5 => {
                let text = signal.trim().to_ascii_lowercase();
                hex_of(FingerprintKind::Md5, &text, format!("{signal:?} is not a valid MD5 hash"))
            }
            Self::VideoSha256 => {
                let text = signal.trim().to_ascii_lowercase();
                hex_of(FingerprintKind::Sha256, &text, format!("{signal:?} is not a valid SHA256 hash"))
            }
            Self::Url => {
                if signal.is_empty() {
                    return Err("invalid signal: empty hash".into());
                }
                Ok(hashers::url::fingerprint(signal.trim()).ok())
            }
        }
    }

    /// HMA's `distance` string: the Hamming distance for PDQ, `-` for exact types.
    pub fn distance(self, distance: u32) -> String {
        match self {
            Self::Pdq => distance.to_string(),
            Self::VideoMd5 | Self::VideoSha256 | Self::Url => "-".to_owned(),
        }
    }
}

/// HMA's name for a category's bank: the category in upper case (`csam` → `CSAM`), as HMA
/// bank names are `[A-Z_][A-Z0-9_]*` (a leading digit gets a `_` before it).
pub fn bank_name(category: &Category) -> String {
    let name = category.as_str().to_ascii_uppercase();
    if name.starts_with(|c: char| c.is_ascii_digit()) { format!("_{name}") } else { name }
}

/// The category a bank name stands for (any case), if it makes a category name; `_9…` is
/// the bank of category `9…`.
pub fn bank_category(bank: &str) -> Option<Category> {
    let lower = bank.trim().to_ascii_lowercase();
    let name = match lower.strip_prefix('_') {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => rest,
        _ => &lower,
    };
    name.parse().ok()
}
