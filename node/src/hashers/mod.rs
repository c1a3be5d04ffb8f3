//! Hashers: pure functions from content to fingerprints. No I/O beyond reading the bytes the
//! caller hands in.

mod exact;

use hashmesh_protocol::Fingerprint;

pub use exact::ExactHasher;

/// A fingerprint computed from content, with its quality where the kind has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Computed {
    /// The fingerprint.
    pub fingerprint: Fingerprint,
    /// Quality 0–100 (pdq).
    pub quality: Option<u8>,
    /// Set when the fingerprint must not be used for matching, saying why.
    pub skipped: Option<String>,
}

impl Computed {
    fn plain(fingerprint: Fingerprint) -> Self {
        Self { fingerprint, quality: None, skipped: None }
    }
}

/// Every fingerprint that can be computed from `bytes`.
pub fn fingerprint_bytes(bytes: &[u8]) -> Vec<Computed> {
    let mut hasher = ExactHasher::default();
    hasher.update(bytes);
    hasher.finish().into_iter().map(Computed::plain).collect()
}

/// Every fingerprint of the file at `path`, streaming it for the exact kinds.
pub fn fingerprint_file(path: &std::path::Path) -> std::io::Result<Vec<Computed>> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = ExactHasher::default();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = std::io::Read::read(&mut file, &mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finish().into_iter().map(Computed::plain).collect())
}
