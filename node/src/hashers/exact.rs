//! The exact kinds: cryptographic hashes of the file bytes, computed in one streaming pass.

use hashmesh_protocol::{Fingerprint, FingerprintKind};
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// blake3, sha256, sha1 and md5 over the same stream of bytes.
#[derive(Default)]
pub struct ExactHasher {
    blake3: blake3::Hasher,
    sha256: Sha256,
    sha1: Sha1,
    md5: Md5,
}

impl ExactHasher {
    /// Feeds more bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.blake3.update(bytes);
        self.sha256.update(bytes);
        self.sha1.update(bytes);
        self.md5.update(bytes);
    }

    /// The four fingerprints.
    pub fn finish(self) -> Vec<Fingerprint> {
        [
            (FingerprintKind::Blake3, self.blake3.finalize().as_bytes().to_vec()),
            (FingerprintKind::Sha256, self.sha256.finalize().to_vec()),
            (FingerprintKind::Sha1, self.sha1.finalize().to_vec()),
            (FingerprintKind::Md5, self.md5.finalize().to_vec()),
        ]
        .into_iter()
        .filter_map(|(kind, value)| Fingerprint::new(kind, value).ok())
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests_of_abc() {
        let mut h = ExactHasher::default();
        h.update(b"a");
        h.update(b"bc");
        let mut text: Vec<String> = h.finish().iter().map(ToString::to_string).collect();
        text.sort();
        // The published test vectors for "abc" (BLAKE3's from its reference implementation).
        assert_eq!(
            text,
            vec![
                "blake3:6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85",
                "md5:900150983cd24fb0d6963f7d28e17f72",
                "sha1:a9993e364706816aba3e25717850c26c9cd0d89d",
                "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ]
        );
    }

    #[test]
    fn empty_input_has_the_digests_of_nothing() {
        let mut text: Vec<String> = ExactHasher::default().finish().iter().map(ToString::to_string).collect();
        text.sort();
        assert_eq!(
            text,
            vec![
                "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
                "md5:d41d8cd98f00b204e9800998ecf8427e",
                "sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709",
                "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ]
        );
    }
}
