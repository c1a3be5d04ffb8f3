//! Perceptual fingerprints (pdq, dhash, phash) matched by Hamming distance.

use std::collections::HashMap;

use hashmesh_protocol::{Fingerprint, FingerprintKind, RecordId};

/// Perceptual fingerprints of every entry, by kind.
#[derive(Default)]
pub struct PerceptualIndex {
    by_kind: HashMap<FingerprintKind, Vec<(Vec<u8>, RecordId)>>,
}

impl PerceptualIndex {
    /// Adds an entry's perceptual fingerprint.
    pub fn insert(&mut self, fp: &Fingerprint, entry: RecordId) {
        self.by_kind.entry(fp.kind()).or_default().push((fp.value().to_vec(), entry));
    }

    /// Entries whose fingerprint of the same kind is within `max_distance` bits, with the
    /// distance.
    pub fn query(&self, fp: &Fingerprint, max_distance: u32) -> Vec<(RecordId, u32)> {
        let Some(items) = self.by_kind.get(&fp.kind()) else { return Vec::new() };
        items
            .iter()
            .filter_map(|(value, id)| {
                let d = hamming(value, fp.value());
                (d <= max_distance).then_some((*id, d))
            })
            .collect()
    }
}

/// Bits that differ between two equal-length byte strings.
pub(crate) fn hamming(a: &[u8], b: &[u8]) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}
