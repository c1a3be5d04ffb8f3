//! Matching benchmark, one core: the PDQ multi-index on random 256-bit hashes (build time,
//! memory, queries/s at distance ≤ 31 and recall against brute force), exact-hash lookups,
//! and PDQ hashing of a 1 MP JPEG with decoding.
//!
//! ```text
//! cargo bench -p hashmesh-tests --bench matching -- [--n 10000000] [--queries 20000]
//!     [--recall-sample 200] [--inserts 1000000] [--seed 1]
//! ```
//!
//! After the live inserts it measures queries/s at once (levels still merging in the
//! background), again once merging has settled, and on an index freshly built from the same
//! hashes. `--n 100000000` runs on a 24 GiB machine: the exact-lookup HashMap is skipped above
//! 20M hashes (it would need another 5 GB), and the fresh rebuild is made after the live index
//! is dropped.
//!
//! `bench/matching.sh` runs it beside python-threatexchange and pdqhash and prints ratios.
//! The machine-readable lines start with `rust_mih ` and `rust_pdq_hash `.

use std::collections::HashMap;
use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use hashmesh_node::hashers::{image as images, pdq};
use hashmesh_node::index::mih::{Hash256, MihIndex, hamming};
use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::{Rng, RngExt, SeedableRng};

struct Args {
    n: usize,
    queries: usize,
    recall_sample: usize,
    inserts: usize,
    seed: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { n: 10_000_000, queries: 20_000, recall_sample: 200, inserts: 1_000_000, seed: 1 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--bench" {
            // `cargo bench` passes this to every harness-less bench.
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let parsed: u64 = value.replace('_', "").parse().map_err(|e| format!("{flag} {value}: {e}"))?;
        let as_usize = usize::try_from(parsed).map_err(|e| e.to_string())?;
        match flag.as_str() {
            "--n" => args.n = as_usize,
            "--queries" => args.queries = as_usize,
            "--recall-sample" => args.recall_sample = as_usize,
            "--inserts" => args.inserts = as_usize,
            "--seed" => args.seed = parsed,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if args.n == 0 || args.n.saturating_add(args.inserts) >= u32::MAX as usize {
        return Err("--n plus --inserts must be in 1..u32::MAX".into());
    }
    Ok(args)
}

fn random_hash(rng: &mut StdRng) -> Hash256 {
    let mut h = [0u8; 32];
    rng.fill_bytes(&mut h);
    h
}

fn flip(rng: &mut StdRng, h: &Hash256, k: usize) -> Hash256 {
    let mut out = *h;
    for bit in sample(rng, 256, k) {
        out[bit / 8] ^= 1 << (bit % 8);
    }
    out
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let popcnt = cfg!(target_feature = "popcnt");
    let avx2 = cfg!(target_feature = "avx2");
    println!("n={} queries={} popcnt={popcnt} avx2={avx2}", args.n, args.queries);

    let mut rng = StdRng::seed_from_u64(args.seed);
    let t = Instant::now();
    let hashes: Vec<Hash256> = (0..args.n).map(|_| random_hash(&mut rng)).collect();
    println!("generated in {:.2}s", t.elapsed().as_secs_f64());

    // Build, on every core.
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let items: Vec<(Hash256, u32)> = (0u32..).zip(&hashes).map(|(id, h)| (*h, id)).collect();
    let t = Instant::now();
    let index = MihIndex::build(&items);
    drop(items);
    let build_s = t.elapsed().as_secs_f64();
    let bytes_per_hash = index.memory_bytes() as f64 / args.n as f64;
    println!("build: {build_s:.2}s on {threads} threads");
    println!("memory: {} bytes = {bytes_per_hash:.1} bytes/hash", index.memory_bytes());

    // Queries: half near-duplicates (0..=31 flipped bits), half random.
    let queries: Vec<Hash256> = (0..args.queries)
        .map(|i| {
            if i % 2 == 0 {
                let h = &hashes[rng.random_range(0..hashes.len())];
                let k = rng.random_range(0..=31);
                flip(&mut rng, h, k)
            } else {
                random_hash(&mut rng)
            }
        })
        .collect();
    let (qps, found) = queries_per_s(&index, &queries);
    println!("query d<=31: {qps:.0} queries/s ({found} results)");

    // Recall against brute force on a sample.
    let t = Instant::now();
    let sample_n = args.recall_sample.min(queries.len());
    let (mut expected_total, mut hit_total, mut extra) = (0usize, 0usize, 0usize);
    for q in &queries[..sample_n] {
        let mut expected: Vec<(u32, u32)> = (0u32..)
            .zip(&hashes)
            .filter_map(|(id, h)| {
                let d = hamming(h, q);
                (d <= 31).then_some((id, d))
            })
            .collect();
        expected.sort_unstable();
        let mut got = index.query(q, 31);
        got.sort_unstable();
        expected_total += expected.len();
        hit_total += got.iter().filter(|x| expected.binary_search(x).is_ok()).count();
        extra += got.len() - got.iter().filter(|x| expected.binary_search(x).is_ok()).count();
    }
    let recall = if expected_total == 0 { 1.0 } else { hit_total as f64 / expected_total as f64 };
    let brute_qps = sample_n as f64 / t.elapsed().as_secs_f64();
    println!(
        "recall vs brute force on {sample_n} queries: {recall:.4} ({hit_total}/{expected_total}, {extra} extra); brute force {brute_qps:.1} queries/s"
    );

    // Exact lookups in a HashMap.
    let lookups_per_s = if args.n <= 20_000_000 {
        let t = Instant::now();
        let map: HashMap<Hash256, u32> = (0u32..).zip(&hashes).map(|(id, h)| (*h, id)).collect();
        let map_build_s = t.elapsed().as_secs_f64();
        let lookups: Vec<Hash256> =
            (0..1_000_000)
                .map(|i| {
                    if i % 2 == 0 { hashes[rng.random_range(0..hashes.len())] } else { random_hash(&mut rng) }
                })
                .collect();
        let t = Instant::now();
        let mut hits = 0usize;
        for q in &lookups {
            hits += usize::from(black_box(map.get(q)).is_some());
        }
        let lookups_per_s = lookups.len() as f64 / t.elapsed().as_secs_f64();
        println!("exact HashMap: build {map_build_s:.2}s, {lookups_per_s:.0} lookups/s ({hits} hits)");
        lookups_per_s
    } else {
        println!("exact HashMap: skipped above 20M hashes (another ~50 bytes a hash)");
        0.0
    };

    // Live inserts on top of the built index. Merges run in the background, so no insert
    // waits for one: the slowest insert is how long a writer holds the catalog's lock.
    let mut index = index;
    let mut all = hashes;
    all.reserve_exact(args.inserts);
    let (mut slowest, t) = (0f64, Instant::now());
    for i in 0..args.inserts {
        let id = u32::try_from(args.n + i).unwrap_or(u32::MAX);
        let h = random_hash(&mut rng);
        let one = Instant::now();
        index.insert(h, id);
        slowest = slowest.max(one.elapsed().as_secs_f64());
        all.push(h);
    }
    let insert_s = t.elapsed().as_secs_f64();
    let inserts_per_s = if insert_s > 0.0 { args.inserts as f64 / insert_s } else { 0.0 };
    let (qps_merging, _) = queries_per_s(&index, &queries);
    let t = Instant::now();
    index.settle();
    let settle_s = t.elapsed().as_secs_f64();
    println!(
        "inserts: {} in {insert_s:.2}s = {inserts_per_s:.0}/s, slowest {:.2} ms; queries/s right after: {qps_merging:.0} (merging); settled {settle_s:.2}s later",
        args.inserts,
        slowest * 1e3
    );
    // The merged index against one freshly built from the same hashes. Up to 20M hashes both
    // are held and measured in alternate rounds, so that drifts of this VM's speed hit both
    // alike; above, the merged index is measured, then dropped to make room.
    let fresh_of = |all: &[Hash256]| {
        let items: Vec<(Hash256, u32)> = (0u32..).zip(all).map(|(id, h)| (*h, id)).collect();
        MihIndex::build(&items)
    };
    let ((qps_after, found_after), (qps_fresh, found_fresh)) = if all.len() <= 20_000_000 {
        let fresh = fresh_of(&all);
        let (mut merged_rounds, mut fresh_rounds) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            merged_rounds.push(queries_per_s(&index, &queries));
            fresh_rounds.push(queries_per_s(&fresh, &queries));
        }
        (median(merged_rounds), median(fresh_rounds))
    } else {
        let merged = queries_per_s(&index, &queries);
        drop(index);
        (merged, queries_per_s(&fresh_of(&all), &queries))
    };
    assert_eq!(found_after, found_fresh, "the merged index and a fresh one must find the same");
    let after_vs_fresh = qps_after / qps_fresh;
    println!(
        "after settling: {qps_after:.0} queries/s; a fresh build of the same {} hashes: {qps_fresh:.0}; merged/fresh = {after_vs_fresh:.3}",
        all.len()
    );

    println!(
        "rust_mih n={} build_s={build_s:.3} bytes_per_hash={bytes_per_hash:.1} qps={qps:.0} recall={recall:.4} exact_lookups_per_s={lookups_per_s:.0} inserts_per_s={inserts_per_s:.0} slowest_insert_ms={:.2} qps_merging={qps_merging:.0} settle_s={settle_s:.2} qps_after_inserts={qps_after:.0} qps_fresh={qps_fresh:.0} threads={threads} popcnt={popcnt}",
        args.n,
        slowest * 1e3
    );
    hash_jpeg(&mut rng);
    ExitCode::SUCCESS
}

/// Queries/s at distance ≤ 31 over `queries`, one after another on this thread (the median
/// of three rounds: single rounds on this VM vary by ±10 %), and the results found.
fn queries_per_s(index: &MihIndex, queries: &[Hash256]) -> (f64, usize) {
    let mut rounds = Vec::new();
    let mut found = 0usize;
    for _ in 0..3 {
        let t = Instant::now();
        found = 0;
        for q in queries {
            found += black_box(index.query(q, 31)).len();
        }
        rounds.push(queries.len() as f64 / t.elapsed().as_secs_f64());
    }
    rounds.sort_by(f64::total_cmp);
    (rounds[1], found)
}

/// The median by queries/s of several measurements.
fn median(mut rounds: Vec<(f64, usize)>) -> (f64, usize) {
    rounds.sort_by(|a, b| a.0.total_cmp(&b.0));
    rounds[rounds.len() / 2]
}

/// Decodes and PDQ-hashes a 1024×1024 JPEG of a smooth random scene, like a photo; writes it
/// to `target/bench-1mp.jpg` so the Python side hashes the very same file.
fn hash_jpeg(rng: &mut StdRng) {
    let (w, h) = (1024u32, 1024u32);
    let (a, b, c) =
        (rng.random_range(1.0..9.0f32), rng.random_range(1.0..9.0f32), rng.random_range(0.0..6.0f32));
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
        let v = |k: f32| ((fx * a + fy * b + k).sin() * 0.5 + 0.5) * 255.0;
        image::Rgb([v(c) as u8, v(c + 2.0) as u8, ((fx * fy * 255.0) as u8) ^ (x as u8 & 0x0f)])
    });
    let mut jpeg = std::io::Cursor::new(Vec::new());
    if let Err(e) = image::DynamicImage::ImageRgb8(img).write_to(&mut jpeg, image::ImageFormat::Jpeg) {
        eprintln!("cannot encode the test JPEG: {e}");
        return;
    }
    let jpeg = jpeg.into_inner();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/bench-1mp.jpg");
    if let Err(e) = std::fs::write(path, &jpeg) {
        eprintln!("cannot write {path}: {e}");
    }
    let runs = 50;
    let mut times = Vec::with_capacity(runs);
    let mut quality = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let Ok(decoded) = images::decode(&jpeg) else {
            eprintln!("cannot decode the test JPEG");
            return;
        };
        quality = black_box(pdq::hash_image(&decoded)).quality;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let median = times[runs / 2];
    println!(
        "pdq hash of a 1 MP JPEG, decode included: {median:.1} ms median over {runs} (quality {quality})"
    );
    println!("rust_pdq_hash ms={median:.2} path={path}");
}
