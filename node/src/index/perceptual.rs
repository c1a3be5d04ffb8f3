//! Perceptual fingerprints (pdq, dhash, phash) matched by Hamming distance.
//!
//! PDQ — the kind industry lists hold by the million — lives in a multi-index hash
//! ([`MihIndex`]) whose results equal a brute-force scan; the smaller image_hasher kinds are
//! scanned linearly.

use std::collections::HashMap;

use hashmesh_protocol::{Fingerprint, FingerprintKind, RecordId};

use super::mih::{Hash256, MihIndex};

/// Perceptual fingerprints of every entry, by kind.
#[derive(Default)]
pub struct PerceptualIndex {
    pdq: MihIndex,
    /// Entry of each PDQ position handed to the MIH index.
    pdq_entries: Vec<RecordId>,
    others: HashMap<FingerprintKind, Vec<(Vec<u8>, RecordId)>>,
}

impl PerceptualIndex {
    /// Adds an entry's perceptual fingerprint.
    pub fn insert(&mut self, fp: &Fingerprint, entry: RecordId) {
        if fp.kind() == FingerprintKind::Pdq
            && let Ok(hash) = Hash256::try_from(fp.value())
            && let Ok(position) = u32::try_from(self.pdq_entries.len())
        {
            self.pdq.insert(hash, position);
            self.pdq_entries.push(entry);
            return;
        }
        self.others.entry(fp.kind()).or_default().push((fp.value().to_vec(), entry));
    }

    /// Whether this exact fingerprint is held.
    pub fn contains(&self, fp: &Fingerprint) -> bool {
        if fp.kind() == FingerprintKind::Pdq
            && let Ok(hash) = Hash256::try_from(fp.value())
        {
            return self.pdq.contains(&hash);
        }
        self.others.get(&fp.kind()).is_some_and(|items| items.iter().any(|(value, _)| value == fp.value()))
    }

    /// Entries whose fingerprint of the same kind is within `max_distance` bits, with the
    /// distance.
    pub fn query(&self, fp: &Fingerprint, max_distance: u32) -> Vec<(RecordId, u32)> {
        if fp.kind() == FingerprintKind::Pdq
            && let Ok(hash) = Hash256::try_from(fp.value())
        {
            return self
                .pdq
                .query(&hash, max_distance)
                .into_iter()
                .filter_map(|(position, d)| Some((*self.pdq_entries.get(position as usize)?, d)))
                .collect();
        }
        let Some(items) = self.others.get(&fp.kind()) else { return Vec::new() };
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
