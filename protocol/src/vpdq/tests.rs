use proptest::prelude::*;

use super::*;

fn frame(byte: u8, quality: u8, timestamp_ms: u32) -> Frame {
    Frame { hash: [byte; 32], quality, timestamp_ms }
}

/// A hash `bits` bits away from `[0; 32]`.
fn hash_at(bits: u32) -> [u8; 32] {
    let mut h = [0u8; 32];
    for bit in 0..bits as usize {
        h[bit / 8] |= 1 << (bit % 8);
    }
    h
}

#[test]
fn packs_and_unpacks_frames() {
    let frames = [frame(1, 100, 0), frame(2, 49, 1_000), frame(3, 0, u32::MAX)];
    let value = encode(&frames);
    assert_eq!(value.len(), 3 * FRAME_LEN);
    assert_eq!(validate(&value), Ok(()));
    assert_eq!(super::frames(&value).collect::<Vec<_>>(), frames);
    // The timestamp is big-endian after hash and quality.
    assert_eq!(&value[FRAME_LEN + 32..2 * FRAME_LEN], &[49, 0, 0, 0x03, 0xe8]);
}

#[test]
fn the_documented_sizes_hold() {
    // Six hours at one frame a second, and what that takes.
    assert_eq!(MAX_FRAMES, 21_600);
    assert_eq!(FRAME_LEN, 37);
    assert_eq!(MAX_FRAMES * FRAME_LEN, 799_200);
}

#[test]
fn refuses_malformed_values() {
    assert_eq!(validate(&[]), Err(VpdqError::Empty));
    assert_eq!(validate(&[0; FRAME_LEN + 1]), Err(VpdqError::PartialFrame(FRAME_LEN + 1)));
    let bad = encode(&[frame(1, 100, 0), frame(2, 101, 0)]);
    assert_eq!(validate(&bad), Err(VpdqError::BadQuality { index: 1, quality: 101 }));
    let at_limit = encode(&vec![frame(0, 100, 0); MAX_FRAMES]);
    assert_eq!(validate(&at_limit), Ok(()));
    let over = encode(&vec![frame(0, 100, 0); MAX_FRAMES + 1]);
    assert_eq!(validate(&over), Err(VpdqError::TooManyFrames(MAX_FRAMES + 1)));
}

#[test]
fn dedupe_keeps_the_first_copy_and_filtering_follows_it() {
    // The reference filters quality after deduping: a repeat of a low-quality first copy is
    // gone even if the repeat scored higher.
    let frames = [frame(1, 10, 0), frame(2, 90, 1), frame(1, 90, 2), frame(2, 30, 3), frame(3, 50, 4)];
    assert_eq!(dedupe(frames), [frame(1, 10, 0), frame(2, 90, 1), frame(3, 50, 4)]);
    assert_eq!(comparable(frames), [[2; 32], [3; 32]]);
}

#[test]
fn scores_both_directions_at_the_distance_bound() {
    let query = [hash_at(0), hash_at(200)];
    let candidate = [hash_at(31), hash_at(32), hash_at(100), hash_at(150)];
    let s = score(&query, &candidate, 31).expect("both non-empty");
    // hash_at(0) is within 31 of hash_at(31) only; hash_at(200) is 50 from hash_at(150).
    assert_eq!(s.query_percent, 50.0);
    assert_eq!(s.candidate_percent, 25.0);
    assert_eq!(s.min_distance, 31);
    let s = score(&query, &candidate, 32).expect("both non-empty");
    assert_eq!((s.query_percent, s.candidate_percent), (50.0, 50.0));
    let s = score(&query, &candidate, 50).expect("both non-empty");
    assert_eq!((s.query_percent, s.candidate_percent), (100.0, 75.0));
    assert_eq!(score(&[], &candidate, 31), None);
    assert_eq!(score(&query, &[], 31), None);
}

#[test]
fn distance_counts_differing_bits() {
    assert_eq!(distance(&hash_at(0), &hash_at(256)), 256);
    assert_eq!(distance(&hash_at(7), &hash_at(9)), 2);
}

proptest! {
    #[test]
    fn any_frames_round_trip(raw in proptest::collection::vec((any::<[u8; 32]>(), 0u8..=100, any::<u32>()), 1..40)) {
        let frames: Vec<Frame> =
            raw.into_iter().map(|(hash, quality, timestamp_ms)| Frame { hash, quality, timestamp_ms }).collect();
        let value = encode(&frames);
        prop_assert_eq!(validate(&value), Ok(()));
        prop_assert_eq!(super::frames(&value).collect::<Vec<_>>(), frames);
    }

    #[test]
    fn score_matches_its_definition(
        query in proptest::collection::vec(any::<[u8; 32]>(), 1..12),
        candidate in proptest::collection::vec(any::<[u8; 32]>(), 1..12),
        max in 100u32..140,
    ) {
        let near = |a: &[u8; 32], b: &[u8; 32]| distance(a, b) <= max;
        let q = query.iter().filter(|a| candidate.iter().any(|b| near(a, b))).count();
        let c = candidate.iter().filter(|b| query.iter().any(|a| near(a, b))).count();
        let s = score(&query, &candidate, max).expect("non-empty");
        prop_assert_eq!(s.query_percent, q as f64 * 100.0 / query.len() as f64);
        prop_assert_eq!(s.candidate_percent, c as f64 * 100.0 / candidate.len() as f64);
        let min = query.iter().flat_map(|a| candidate.iter().map(move |b| distance(a, b))).min();
        prop_assert_eq!(Some(s.min_distance), min);
    }
}
