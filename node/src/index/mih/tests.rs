//! Tests for the MIH index: every query is checked against a brute-force scan.

use super::*;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::{Rng, RngExt, SeedableRng};

fn random_hash(rng: &mut StdRng) -> Hash256 {
    let mut h = [0u8; 32];
    rng.fill_bytes(&mut h);
    h
}

/// `h` with `k` distinct random bits flipped.
fn flip(rng: &mut StdRng, h: &Hash256, k: usize) -> Hash256 {
    let mut out = *h;
    for bit in sample(rng, 256, k) {
        out[bit / 8] ^= 1 << (bit % 8);
    }
    out
}

fn brute(items: &[(Hash256, u32)], q: &Hash256, max_distance: u32) -> Vec<(u32, u32)> {
    let mut v: Vec<(u32, u32)> = items
        .iter()
        .filter_map(|(h, id)| {
            let d = hamming(h, q);
            (d <= max_distance).then_some((*id, d))
        })
        .collect();
    v.sort_unstable();
    v
}

fn sorted(mut v: Vec<(u32, u32)>) -> Vec<(u32, u32)> {
    v.sort_unstable();
    v
}

/// Items clustered around a few centres (flips of 0..=40 bits) plus exact
/// duplicates under new ids; ids are dense.
fn clustered(rng: &mut StdRng, centres: &[Hash256], n: usize, dups: usize) -> Vec<(Hash256, u32)> {
    let mut items: Vec<(Hash256, u32)> = Vec::with_capacity(n + dups);
    for id in 0..n {
        let c = &centres[rng.random_range(0..centres.len())];
        let k = rng.random_range(0..=40);
        items.push((flip(rng, c, k), id as u32));
    }
    for _ in 0..dups {
        if items.is_empty() {
            break;
        }
        let h = items[rng.random_range(0..items.len())].0;
        let id = items.len() as u32;
        items.push((h, id));
    }
    items
}

const DISTANCES: [u32; 14] = [0, 1, 2, 5, 15, 16, 29, 30, 31, 32, 33, 40, 64, 256];

fn check_queries(
    rng: &mut StdRng,
    index: &MihIndex,
    items: &[(Hash256, u32)],
    centres: &[Hash256],
    nq: usize,
) -> Result<(), TestCaseError> {
    for qi in 0..nq {
        let q = match qi % 3 {
            0 => random_hash(rng),
            1 => {
                let c = &centres[rng.random_range(0..centres.len())];
                let k = rng.random_range(0..=40);
                flip(rng, c, k)
            }
            _ if !items.is_empty() => items[rng.random_range(0..items.len())].0,
            _ => random_hash(rng),
        };
        let d = DISTANCES[rng.random_range(0..DISTANCES.len())];
        prop_assert_eq!(sorted(index.query(&q, d)), brute(items, &q, d), "d={}", d);
        prop_assert_eq!(index.contains(&q), items.iter().any(|(h, _)| *h == q));
        // Always also check the boundary distances of the MIH scheme.
        for d in [31, 32] {
            prop_assert_eq!(sorted(index.query(&q, d)), brute(items, &q, d), "d={}", d);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Build then insert, with every bucket width and tiny delta buffers so
    /// that levels are created and merged.
    #[test]
    fn query_equals_brute_force(
        seed in any::<u64>(),
        ncentres in 1usize..6,
        n in 0usize..400,
        dups in 0usize..40,
        built_fraction in 0.0f64..=1.0,
        bits in 1u32..=16,
        delta_max in 1usize..40,
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let centres: Vec<Hash256> = (0..ncentres).map(|_| random_hash(&mut rng)).collect();
        let items = clustered(&mut rng, &centres, n, dups);
        let split = ((items.len() as f64) * built_fraction) as usize;
        let mut index = MihIndex::build_with(items[..split].to_vec(), bits, delta_max);
        check_queries(&mut rng, &index, &items[..split], &centres, 4)?;
        for (h, id) in &items[split..] {
            index.insert(*h, *id);
        }
        prop_assert_eq!(index.len(), items.len());
        prop_assert_eq!(index.is_empty(), items.is_empty());
        check_queries(&mut rng, &index, &items, &centres, 12)?;
    }

    /// The pigeonhole claim behind the scheme: any pair within 31 bits is
    /// reported by some table.
    #[test]
    fn pigeonhole_holds(seed in any::<u64>(), k in 0usize..=31) {
        let mut rng = StdRng::seed_from_u64(seed);
        let x = random_hash(&mut rng);
        let q = flip(&mut rng, &x, k);
        prop_assert!(first_reporting_part(&parts(&q), &x).is_some());
    }
}

#[test]
fn empty_index() {
    let index = MihIndex::new();
    assert!(index.is_empty());
    assert_eq!(index.len(), 0);
    assert!(index.query(&[0; 32], 31).is_empty());
    assert!(index.query(&[0; 32], 256).is_empty());
    assert!(MihIndex::build(Vec::new()).is_empty());
    assert!(MihIndex::default().is_empty());
}

#[test]
fn hamming_basics() {
    let a = [0u8; 32];
    let mut b = [0u8; 32];
    assert_eq!(hamming(&a, &b), 0);
    b[0] = 1;
    b[31] = 0x80;
    b[9] = 0xff;
    assert_eq!(hamming(&a, &b), 10);
    assert_eq!(hamming(&a, &[0xff; 32]), 256);
}

#[test]
fn positions_round_trip() {
    for pos in [0u32, 1, 0x00ab_cdef, (1 << 24) - 1] {
        let e: Pos<3> = make_pos(pos);
        assert_eq!(get_pos(&e), pos as usize);
    }
    for pos in [0u32, 0x00ab_cdef, 1 << 24, u32::MAX] {
        let e: Pos<4> = make_pos(pos);
        assert_eq!(get_pos(&e), pos as usize);
    }
}

/// The 32-bit-position layout, forced on a small level.
#[test]
fn wide_entries_layout() {
    let mut rng = StdRng::seed_from_u64(3);
    let centres: Vec<Hash256> = (0..3).map(|_| random_hash(&mut rng)).collect();
    let items = clustered(&mut rng, &centres, 2_000, 100);
    let mut index = MihIndex::build_with(items.clone(), 8, 64);
    for level in &mut index.levels {
        let hashes = level.hashes.clone();
        let shift = 16 - level.bits;
        for (t, table) in (1..PARTS).zip(&mut level.tables) {
            let (partners, positions) = scatter(&hashes, t, shift, &table.offsets);
            table.partners = partners;
            table.positions = Positions::P4(positions);
        }
    }
    check_queries(&mut rng, &index, &items, &centres, 40).expect("matches brute force");
}

/// A level large enough for full 16-bit buckets with default settings, plus
/// live inserts on top of it.
#[test]
fn large_default_build_and_inserts() {
    let mut rng = StdRng::seed_from_u64(7);
    let centres: Vec<Hash256> = (0..40).map(|_| random_hash(&mut rng)).collect();
    let mut items: Vec<(Hash256, u32)> = (0..530_000u32).map(|id| (random_hash(&mut rng), id)).collect();
    let extra = clustered(&mut rng, &centres, 3_000, 200);
    let base = items.len() as u32;
    items.extend(extra.iter().map(|(h, id)| (*h, id + base)));
    let mut index = MihIndex::build(items.clone());
    assert_eq!(index.levels[0].bits, 16);
    assert_eq!(index.len(), items.len());
    // Honest accounting: at least the hashes, ids and tables.
    let per_hash = index.memory_bytes() as f64 / items.len() as f64;
    assert!((111.0..130.0).contains(&per_hash), "{per_hash}");

    let mut inserted = items.clone();
    for i in 0..5_000u32 {
        let c = &centres[rng.random_range(0..centres.len())];
        let k = rng.random_range(0..=40);
        let h = flip(&mut rng, c, k);
        let id = inserted.len() as u32 + i % 2; // also repeats ids on new hashes
        index.insert(h, id);
        inserted.push((h, id));
    }
    assert_eq!(index.len(), inserted.len());
    assert!(index.level_count() >= 2);
    check_queries(&mut rng, &index, &inserted, &centres, 30).expect("matches brute force");
}

/// Many inserts into an empty index keep few levels.
#[test]
fn inserts_only_keep_levels_logarithmic() {
    let mut rng = StdRng::seed_from_u64(11);
    let centres: Vec<Hash256> = (0..5).map(|_| random_hash(&mut rng)).collect();
    let items = clustered(&mut rng, &centres, 20_000, 500);
    let mut index = MihIndex::new();
    for (h, id) in &items {
        index.insert(*h, *id);
    }
    assert_eq!(index.len(), items.len());
    assert!(index.level_count() <= 6, "{}", index.level_count());
    check_queries(&mut rng, &index, &items, &centres, 30).expect("matches brute force");
}
