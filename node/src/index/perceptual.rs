//! Perceptual fingerprints (pdq, dhash, phash, vpdq) matched by Hamming distance.
//!
//! PDQ — the kind industry lists hold by the million — lives in a multi-index hash
//! ([`MihIndex`]) whose results equal a brute-force scan; videos in a [`VideoIndex`] over their
//! frames; the smaller image_hasher kinds are scanned linearly.

use std::collections::HashMap;

use hashmesh_protocol::{Fingerprint, FingerprintKind, RecordId};

use super::mih::{Hash256, MihIndex};
use super::video::{VideoHit, VideoIndex};

/// Perceptual fingerprints of every entry, by kind.
#[derive(Default)]
pub struct PerceptualIndex {
    pdq: MihIndex,
    /// Entry of each PDQ position handed to the MIH index.
    pdq_entries: Vec<RecordId>,
    videos: VideoIndex,
    others: HashMap<FingerprintKind, Vec<(Vec<u8>, RecordId)>>,
}

impl PerceptualIndex {
    /// An empty index for loading every entry at start-up: its multi-indexes are built once,
    /// on every core, by [`Self::loaded`] ([`MihIndex::loading`]).
    pub fn loading() -> Self {
        PerceptualIndex { pdq: MihIndex::loading(), videos: VideoIndex::loading(), ..Self::default() }
    }

    /// Builds what was inserted since [`Self::loading`].
    pub fn loaded(&mut self) {
        self.pdq.loaded();
        self.videos.loaded();
    }

    /// Adds an entry's perceptual fingerprint.
    pub fn insert(&mut self, fp: &Fingerprint, entry: RecordId) {
        if fp.kind() == FingerprintKind::Vpdq {
            if !self.videos.insert(fp.value(), entry) {
                tracing::warn!(%entry, "the video index is full (2^32 frames); this video will not be matched");
            }
            return;
        }
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
        if fp.kind() == FingerprintKind::Vpdq {
            return self.videos.contains(fp.value());
        }
        if fp.kind() == FingerprintKind::Pdq
            && let Ok(hash) = Hash256::try_from(fp.value())
        {
            return self.pdq.contains(&hash);
        }
        self.others.get(&fp.kind()).is_some_and(|items| items.iter().any(|(value, _)| value == fp.value()))
    }

    /// Videos sharing frames within `max_distance` with a query video's comparable frames
    /// ([`hashmesh_protocol::vpdq::comparable`]), each with its percentages.
    pub fn query_video(&self, frames: &[Hash256], max_distance: u32) -> Vec<VideoHit> {
        self.videos.query(frames, max_distance)
    }

    /// The video index (sizes for metrics and benchmarks).
    pub fn videos(&self) -> &VideoIndex {
        &self.videos
    }

    /// Entries whose fingerprint of the same kind is within `max_distance` bits, with the
    /// distance. Videos are scored, not measured by one distance: see [`Self::query_video`].
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
