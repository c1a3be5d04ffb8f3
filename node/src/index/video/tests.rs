use hashmesh_protocol::RecordId;
use hashmesh_protocol::vpdq::{self, Frame};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, RngExt, SeedableRng};

use super::*;

fn id(n: u8) -> RecordId {
    RecordId([n; 32])
}

fn value(hashes: &[Hash256], quality: u8) -> Vec<u8> {
    let frames: Vec<Frame> = hashes
        .iter()
        .enumerate()
        .map(|(i, hash)| Frame { hash: *hash, quality, timestamp_ms: i as u32 * 1000 })
        .collect();
    vpdq::encode(&frames)
}

/// `hash` with `bits` distinct bits flipped.
fn near(rng: &mut StdRng, hash: &Hash256, bits: usize) -> Hash256 {
    let mut out = *hash;
    for bit in rand::seq::index::sample(rng, 256, bits) {
        out[bit / 8] ^= 1 << (bit % 8);
    }
    out
}

fn random_hash(rng: &mut StdRng) -> Hash256 {
    let mut h = [0u8; 32];
    rng.fill_bytes(&mut h);
    h
}

#[test]
fn low_quality_videos_are_not_kept_and_repeats_count_once() {
    let mut index = VideoIndex::default();
    assert!(index.insert(&value(&[[1; 32], [2; 32]], 49), id(1)));
    assert_eq!((index.videos(), index.frames()), (0, 0));
    // Three frames, one a repeat: two comparable frames.
    assert!(index.insert(&value(&[[1; 32], [2; 32], [1; 32]], 50), id(2)));
    assert_eq!((index.videos(), index.frames()), (1, 2));
    let hits = index.query(&[[1; 32]], 31);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].entry, id(2));
    assert_eq!((hits[0].score.query_percent, hits[0].score.candidate_percent), (100.0, 50.0));
    assert_eq!(hits[0].score.min_distance, 0);
    assert!(index.query(&[], 31).is_empty());
}

#[test]
fn contains_knows_each_value_held_even_one_never_matched() {
    let mut index = VideoIndex::default();
    let (flat, listed, other) =
        (value(&[[1; 32]], 10), value(&[[2; 32], [3; 32]], 90), value(&[[2; 32]], 90));
    assert!(index.insert(&flat, id(1)) && index.insert(&listed, id(2)));
    // A list import skips a row already held, matched or not.
    assert!(index.contains(&flat) && index.contains(&listed));
    assert!(!index.contains(&other), "a value sharing frames is not the same value");
}

#[test]
fn memory_counts_every_frame_and_video() {
    let mut index = VideoIndex::default();
    let empty = index.memory_bytes();
    let mut rng = StdRng::seed_from_u64(5);
    for v in 0..200u8 {
        let hashes: Vec<Hash256> = (0..30).map(|_| random_hash(&mut rng)).collect();
        assert!(index.insert(&value(&hashes, 90), id(v)));
    }
    let used = index.memory_bytes() - empty;
    // Each frame's hash sits in the multi-index with its tables, plus its video number; each
    // video its entry and frame count. Vectors may hold up to twice what they use.
    let frames = index.frames();
    assert_eq!((frames, index.videos()), (6_000, 200));
    let tables = index.frames.memory_bytes();
    assert!(tables >= frames * (32 + 4), "{tables} bytes of tables for {frames} frames");
    let own = frames * 4 + 200 * std::mem::size_of::<Video>();
    let beside = used - tables;
    assert!((own..=2 * own).contains(&beside), "{beside} bytes beside the tables, {own} needed");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The index scores every video exactly as the reference's brute-force matcher does, and
    /// finds every video the brute force scores above 0 %.
    #[test]
    fn scores_equal_the_brute_force_matcher(seed in any::<u64>(), videos in 1usize..12, max in 0u32..40) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut index = VideoIndex::default();
        let mut stored: Vec<(RecordId, Vec<Hash256>)> = Vec::new();
        let pool: Vec<Hash256> = (0..20).map(|_| random_hash(&mut rng)).collect();
        for v in 0..videos {
            let len = rng.random_range(1..15);
            let hashes: Vec<Hash256> = (0..len)
                .map(|_| {
                    let base = pool[rng.random_range(0..pool.len())];
                    let bits = rng.random_range(0..40);
                    near(&mut rng, &base, bits)
                })
                .collect();
            let quality = if rng.random_range(0..6) == 0 { 30 } else { 90 };
            let value = value(&hashes, quality);
            prop_assert!(index.insert(&value, id(v as u8)));
            stored.push((id(v as u8), vpdq::comparable(vpdq::frames(&value))));
        }
        let query: Vec<Hash256> = (0..rng.random_range(1..12))
            .map(|_| {
                let base = pool[rng.random_range(0..pool.len())];
                let bits = rng.random_range(0..40);
                near(&mut rng, &base, bits)
            })
            .collect();
        let hits = index.query(&query, max);
        let expected: Vec<VideoHit> = stored
            .iter()
            .filter_map(|(entry, frames)| {
                let score = vpdq::score(&query, frames, max)?;
                (score.query_percent > 0.0).then(|| VideoHit {
                    entry: *entry,
                    score: Score { min_distance: score.min_distance.min(max), ..score },
                })
            })
            .collect();
        prop_assert_eq!(hits.len(), expected.len());
        for (hit, want) in hits.iter().zip(&expected) {
            prop_assert_eq!(hit.entry, want.entry);
            prop_assert_eq!(hit.score.query_percent, want.score.query_percent);
            prop_assert_eq!(hit.score.candidate_percent, want.score.candidate_percent);
            prop_assert_eq!(hit.score.min_distance, want.score.min_distance);
        }
    }
}
