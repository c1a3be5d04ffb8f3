//! Matching fingerprints against the catalog: exact kinds by equality, perceptual kinds by
//! Hamming distance (PDQ with its dihedral variants), each hit with its status and action.

use std::collections::BTreeMap;

use hashmesh_protocol::{Action, Fingerprint, FingerprintKind, Manifest, RecordId, Status, vpdq};

use super::{NodeHandle, now_ms};
use crate::api::{Hit, MatchResult, Suppressed, VideoMatch};
use crate::hashers::Computed;

impl NodeHandle {
    /// Looks up fingerprints: exact kinds by equality, perceptual kinds by Hamming distance.
    pub fn match_fingerprints(&self, hashes: &[Fingerprint]) -> Vec<MatchResult> {
        let computed: Vec<Computed> = hashes.iter().cloned().map(Computed::plain).collect();
        self.match_computed(&computed)
    }

    /// Matches for the platform: like [`NodeHandle::match_computed`], and each hit is acted
    /// on — a webhook event, the entries remembered as matched by this member (so a later
    /// status change is reported), the day's counters — and the request is counted in
    /// `/metrics`. One call is one match request. Blocking (it writes the store).
    pub fn match_and_act(&self, queries: &[Computed]) -> Vec<MatchResult> {
        let results = self.match_computed(queries);
        self.shared.actioner.on_match(&results);
        self.shared.metrics.matching.record(&results);
        results
    }

    /// Looks up computed fingerprints, each with its variants (PDQ's dihedral forms); a
    /// fingerprint marked `skipped` (too low quality) is reported, not matched. CPU work:
    /// call it from a blocking thread. The view is held for a chunk of queries at a time, so
    /// the writer can publish between chunks of a large request.
    pub fn match_computed(&self, queries: &[Computed]) -> Vec<MatchResult> {
        const CHUNK: usize = 256;
        let now = now_ms();
        let mut results = Vec::with_capacity(queries.len());
        for chunk in queries.chunks(CHUNK) {
            let view = self.shared.replica.view();
            results.extend(self.match_chunk(&view, chunk, now));
        }
        results
    }

    fn match_chunk(&self, view: &crate::replica::View, queries: &[Computed], now: u64) -> Vec<MatchResult> {
        let (catalog, policy, manifest) = (view.catalog(), view.policy(), view.manifest());
        queries
            .iter()
            .map(|query| {
                let mut best: BTreeMap<RecordId, Found> = BTreeMap::new();
                if query.skipped.is_none() {
                    for fp in std::iter::once(&query.fingerprint).chain(&query.variants) {
                        for (id, found) in lookup(manifest, catalog, fp) {
                            let kept = best.entry(id).or_insert(found);
                            if found.closer_than(kept) {
                                *kept = found;
                            }
                        }
                    }
                }
                let hits: Vec<Hit> = best
                    .into_iter()
                    .filter_map(|(id, Found { distance, video })| {
                        let state = catalog.get(&id)?;
                        let status = state.votes.status(policy, now);
                        // A match on known-benign content asks for nothing.
                        let action =
                            if state.entry.category.is_benign() { Action::None } else { status.action() };
                        Some(Hit {
                            entry: id,
                            category: state.entry.category.clone(),
                            status,
                            kind: query.fingerprint.kind(),
                            distance,
                            action,
                            video,
                        })
                    })
                    .collect();
                let (mut hits, suppressed) = allow_list(catalog, hits);
                hits.sort_by_key(|h| (action_rank(h.action), h.distance, h.entry));
                MatchResult {
                    hash: query.fingerprint.clone(),
                    quality: query.quality,
                    skipped: query.skipped.clone(),
                    hits,
                    suppressed,
                }
            })
            .collect()
    }
}

/// Applies the allow-list: if the content matches a verified `benign` entry, perceptual hits on
/// other entries are near-duplicates of known-benign content (a meme, a logo whose hash
/// collides) and are set aside, each with the allow-list entry and its note. Exact hits stand:
/// the very bytes of listed content are no collision.
fn allow_list(catalog: &crate::replica::Catalog, hits: Vec<Hit>) -> (Vec<Hit>, Vec<Suppressed>) {
    let Some(allowed) = hits.iter().find(|h| h.category.is_benign() && h.status == Status::Verified) else {
        return (hits, Vec::new());
    };
    let (by, reason) = (allowed.entry, catalog.get(&allowed.entry).and_then(|s| s.entry.note.clone()));
    let (suppressed, kept): (Vec<Hit>, Vec<Hit>) =
        hits.into_iter().partition(|h| h.kind.is_perceptual() && !h.category.is_benign());
    (kept, suppressed.into_iter().map(|hit| Suppressed { hit, by, reason: reason.clone() }).collect())
}

/// How one form of the query matched one entry.
#[derive(Clone, Copy)]
struct Found {
    distance: u32,
    video: Option<VideoMatch>,
}

impl Found {
    fn exact() -> Self {
        Self { distance: 0, video: None }
    }

    fn at(distance: u32) -> Self {
        Self { distance, video: None }
    }

    /// Whether this is the better of two matches of the same entry by different forms of the
    /// query (PDQ's dihedral variants, a mirrored video): more of the video matched, or a
    /// smaller distance.
    fn closer_than(&self, other: &Self) -> bool {
        match (self.video, other.video) {
            (Some(a), Some(b)) => {
                (a.query_percent, a.candidate_percent, other.distance)
                    > (b.query_percent, b.candidate_percent, self.distance)
            }
            _ => self.distance < other.distance,
        }
    }
}

fn lookup(
    manifest: &Manifest,
    catalog: &crate::replica::Catalog,
    fp: &Fingerprint,
) -> Vec<(RecordId, Found)> {
    match max_distance(manifest, fp.kind()) {
        Some(max) if fp.kind() == FingerprintKind::Vpdq => {
            let frames = vpdq::comparable(vpdq::frames(fp.value()));
            catalog
                .perceptual()
                .query_video(&frames, max)
                .into_iter()
                .filter(|hit| manifest.videos_match(&hit.score))
                .map(|hit| {
                    let video = VideoMatch {
                        query_percent: hit.score.query_percent,
                        candidate_percent: hit.score.candidate_percent,
                    };
                    (hit.entry, Found { distance: hit.score.min_distance, video: Some(video) })
                })
                .collect()
        }
        Some(max) => {
            catalog.perceptual().query(fp, max).into_iter().map(|(id, d)| (id, Found::at(d))).collect()
        }
        None => catalog.exact(fp).iter().map(|id| (*id, Found::exact())).collect(),
    }
}

/// The match threshold of a perceptual kind; `None` for exact kinds.
pub fn max_distance(manifest: &Manifest, kind: FingerprintKind) -> Option<u32> {
    match kind {
        // Video frames are PDQ hashes and match at the same distance.
        FingerprintKind::Pdq | FingerprintKind::Vpdq => Some(manifest.pdq_max_distance()),
        // image_hasher kinds: about 10% of the bits, the usual near-duplicate threshold.
        FingerprintKind::Dhash => Some(14),
        FingerprintKind::Phash => Some(6),
        FingerprintKind::Blake3
        | FingerprintKind::Sha256
        | FingerprintKind::Sha1
        | FingerprintKind::Md5
        | FingerprintKind::Url => None,
    }
}

/// Strongest action first.
pub fn action_rank(action: Action) -> u8 {
    match action {
        Action::Remove => 0,
        Action::Review => 1,
        Action::None => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(query_percent: f64, candidate_percent: f64, distance: u32) -> Found {
        Found { distance, video: Some(VideoMatch { query_percent, candidate_percent }) }
    }

    /// Of two forms of a query matching one entry (a frame's dihedral variants), the one that
    /// matched more of the video wins, then more of the listed video, then the closer frames;
    /// for images, the smaller distance.
    #[test]
    fn the_better_form_of_a_query_is_kept() {
        assert!(video(90.0, 10.0, 30).closer_than(&video(85.0, 50.0, 0)));
        assert!(!video(85.0, 50.0, 0).closer_than(&video(90.0, 10.0, 30)));
        assert!(video(90.0, 60.0, 30).closer_than(&video(90.0, 50.0, 0)));
        assert!(video(90.0, 50.0, 3).closer_than(&video(90.0, 50.0, 4)));
        assert!(!video(90.0, 50.0, 4).closer_than(&video(90.0, 50.0, 4)), "a tie keeps the first");
        assert!(Found::at(3).closer_than(&Found::at(7)));
        assert!(!Found::at(7).closer_than(&Found::at(3)));
        assert!(!Found::exact().closer_than(&Found::exact()));
    }
}
