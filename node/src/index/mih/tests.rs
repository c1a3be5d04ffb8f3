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
        max_level in 1usize..200,
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let centres: Vec<Hash256> = (0..ncentres).map(|_| random_hash(&mut rng)).collect();
        let items = clustered(&mut rng, &centres, n, dups);
        let split = ((items.len() as f64) * built_fraction) as usize;
        let mut index = MihIndex::build_with(&items[..split], bits, delta_max, max_level);
        check_queries(&mut rng, &index, &items[..split], &centres, 4)?;
        for (h, id) in &items[split..] {
            index.insert(*h, *id);
        }
        prop_assert_eq!(index.len(), items.len());
        prop_assert_eq!(index.is_empty(), items.is_empty());
        check_queries(&mut rng, &index, &items, &centres, 12)?;
        index.settle();
        prop_assert_eq!(index.len(), items.len());
        check_queries(&mut rng, &index, &items, &centres, 4)?;
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
    assert!(MihIndex::build(&[]).is_empty());
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

/// Items that share whole pairs (so an odd table's entries name several items) and exact
/// duplicates, in levels with full 16-bit keys, where odd tables locate items through their
/// pair: every item is reported once.
#[test]
fn pair_lookups_report_each_item_once() {
    let mut rng = StdRng::seed_from_u64(9);
    let centre = random_hash(&mut rng);
    let mut items: Vec<(Hash256, u32)> = Vec::new();
    for id in 0..600u32 {
        let mut h = centre;
        // Flip a few bits outside one pair (bytes 4p..4p + 4), keeping that pair whole.
        let p = rng.random_range(0..8usize);
        for _ in 0..rng.random_range(0..12) {
            let byte = (4 * p + 4 + rng.random_range(0..28usize)) % 32;
            h[byte] ^= 1 << rng.random_range(0..8);
        }
        items.push((h, id));
        if id % 7 == 0 {
            items.push((h, 10_000 + id));
        }
    }
    let index = MihIndex::build_with(&items, 16, 64, usize::MAX);
    for level in index.levels.snapshot().iter() {
        assert!(level.odd_tables_unpositioned(), "16-bit keys drop the odd tables' positions");
    }
    let near: Vec<Hash256> = (0..20).map(|k| flip(&mut rng, &centre, k)).collect();
    for q in near.iter().chain(items.iter().map(|(h, _)| h).take(40)) {
        for d in [0, 3, 12, 31] {
            assert_eq!(sorted(index.query(q, d)), brute(&items, q, d), "d={d}");
        }
    }
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
    let mut index = MihIndex::build(&items);
    assert_eq!(index.levels.snapshot()[0].bits, 16);
    assert_eq!(index.len(), items.len());
    // Honest accounting: 89 bytes of hashes, ids and tables (odd tables keep no positions at
    // 16-bit keys), plus 4 MiB of offsets, 8 bytes a hash at this size.
    let per_hash = index.memory_bytes() as f64 / items.len() as f64;
    assert!((96.0..98.0).contains(&per_hash), "{per_hash}");

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
    check_queries(&mut rng, &index, &inserted, &centres, 30).expect("matches brute force");
    index.settle();
    assert_eq!(index.level_count(), 1, "the inserts are compacted into the built level");
    check_queries(&mut rng, &index, &inserted, &centres, 30).expect("matches brute force");
}

/// Many inserts into an empty index: queries stay exact while levels merge in the
/// background, and once merging settles the inserts are one level.
#[test]
fn inserts_merge_into_one_level() {
    let mut rng = StdRng::seed_from_u64(11);
    let centres: Vec<Hash256> = (0..5).map(|_| random_hash(&mut rng)).collect();
    let items = clustered(&mut rng, &centres, 20_000, 500);
    let mut index = MihIndex::new();
    for (i, (h, id)) in items.iter().enumerate() {
        index.insert(*h, *id);
        if i % 5_000 == 0 {
            check_queries(&mut rng, &index, &items[..=i], &centres, 3).expect("exact while merging");
        }
    }
    assert_eq!(index.len(), items.len());
    index.settle();
    assert_eq!(index.level_count(), 1);
    assert_eq!(index.len(), items.len());
    check_queries(&mut rng, &index, &items, &centres, 30).expect("matches brute force");
}

/// Merges stop at the level size: a full level is never rebuilt, and what follows it
/// compacts into the next.
#[test]
fn levels_never_exceed_their_size() {
    let mut rng = StdRng::seed_from_u64(5);
    let centres: Vec<Hash256> = (0..4).map(|_| random_hash(&mut rng)).collect();
    let items = clustered(&mut rng, &centres, 2_500, 50);
    let mut index = MihIndex::build_with(&items[..1_000], 6, 16, 600);
    assert_eq!(index.level_count(), 2, "1,000 hashes are built as levels of 600 and 400");
    for (h, id) in &items[1_000..] {
        index.insert(*h, *id);
    }
    index.settle();
    let sizes: Vec<usize> = index.levels.snapshot().iter().map(|l| l.len()).collect();
    assert!(sizes.iter().all(|&n| n <= 600), "{sizes:?}");
    assert_eq!(sizes.iter().sum::<usize>() + index.delta.len(), items.len());
    // Neighbours that could have merged have: the index stays as few levels as it can.
    assert!(sizes.windows(2).all(|w| w[0] + w[1] > 600), "{sizes:?}");
    check_queries(&mut rng, &index, &items, &centres, 30).expect("matches brute force");
}

/// Loading holds inserts unindexed (and still found) until `loaded` builds them as one level.
#[test]
fn loading_builds_once() {
    let mut rng = StdRng::seed_from_u64(13);
    let centres: Vec<Hash256> = (0..3).map(|_| random_hash(&mut rng)).collect();
    let items = clustered(&mut rng, &centres, 3_000, 100);
    let mut index = MihIndex::loading();
    for (h, id) in &items {
        index.insert(*h, *id);
    }
    assert_eq!(index.level_count(), 0, "nothing is indexed while loading");
    check_queries(&mut rng, &index, &items, &centres, 5).expect("found while loading");
    index.loaded();
    assert_eq!(index.level_count(), 1);
    assert!(index.delta.is_empty());
    let (h, id) = (random_hash(&mut rng), 1_000_000);
    for _ in 0..DEFAULT_DELTA_MAX {
        index.insert(h, id);
    }
    assert!(index.delta.is_empty(), "inserts after loading are indexed as usual");
    let mut all = items.clone();
    all.extend(std::iter::repeat_n((h, id), DEFAULT_DELTA_MAX));
    check_queries(&mut rng, &index, &all, &centres, 20).expect("matches brute force");
}
