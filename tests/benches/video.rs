//! Video matching benchmark, one core: the vPDQ [`VideoIndex`] on generated videos (build time,
//! memory per frame, query videos per second and latency), and a check that its match decisions
//! are the reference brute-force matcher's ([`vpdq::score`] against every stored video).
//!
//! ```text
//! cargo bench -p hashmesh-tests --bench video -- [--videos 100000] [--frames 60]
//!     [--queries 200] [--check 40] [--seed 1] [--dump PATH]
//! ```
//!
//! # The data
//!
//! A video is one frame a second. It is cut into scenes of 2 to 8 seconds: a scene starts on a
//! new random hash and every further frame is the previous one with 0 to 6 bits flipped (0 is a
//! still frame, a repeated hash that dedupe drops). A scene has one quality: one in ten is flat
//! (below 50, left out of matching), the rest 50 to 100, with a little jitter per frame that
//! stays on its side of 50. One stored video in twenty is a re-upload: an altered copy of an
//! earlier one, so some queries match several entries and some stored hashes repeat.
//!
//! Half the queries are altered copies of stored videos: a sub-range of at least half the
//! video, up to 3 frames dropped, 0 to 20 bits flipped in each frame, and in one copy of three
//! a run of 10 to 30 % of the frames replaced by new content (an inserted clip), which puts the
//! query percentage near the 80 % threshold. The other half are unrelated videos.
//!
//! # Output
//!
//! The machine-readable line starts with `rust_vpdq `; the bench exits non-zero when the index's
//! decisions differ from the brute-force matcher's. `--dump PATH` (relative to `tests/`, where
//! cargo runs benches) writes the data set, the queries and the index's decisions for
//! `bench/vpdq_reference.py`, which runs python-threatexchange's `VPDQIndex` on the same data;
//! `bench/video.sh` runs both. The dump, all integers little-endian:
//!
//! ```text
//! "HMVPDQ01"  u32 videos  u32 queries  u32 max_distance
//! videos × (u32 length, vpdq value)           the value as vpdq::encode writes it
//! queries × (u32 length, vpdq value)
//! queries × (u32 matches, matches × (u32 video, f64 query %, f64 candidate %))
//! ```
//!
//! A video's entry is its position in the list. The decisions are the matches by policy
//! (query ≥ 80 %, candidate ≥ 0 %) at distance 31, in entry order.

use std::collections::BTreeSet;
use std::fs::File;
use std::hint::black_box;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use hashmesh_node::index::VideoIndex;
use hashmesh_protocol::RecordId;
use hashmesh_protocol::vpdq::{self, Frame, QUALITY_THRESHOLD, Score};
use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::{Rng, RngExt, SeedableRng};

/// The reference's `VPDQ_DISTANCE_THRESHOLD`.
const MAX_DISTANCE: u32 = 31;
/// The reference's `VPDQ_QUERY_MATCH_THRESHOLD_PERCENT`.
const QUERY_PERCENT: f64 = 80.0;
/// The reference's `VPDQ_INDEX_MATCH_THRESHOLD_PERCENT`.
const CANDIDATE_PERCENT: f64 = 0.0;
/// Share of stored videos that are altered copies of earlier ones.
const REUPLOAD_SHARE: f64 = 0.05;
const DUMP_MAGIC: &[u8; 8] = b"HMVPDQ01";

struct Args {
    videos: usize,
    frames: usize,
    queries: usize,
    check: usize,
    seed: u64,
    dump: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { videos: 100_000, frames: 60, queries: 200, check: 40, seed: 1, dump: None };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--bench" {
            // `cargo bench` passes this to every harness-less bench.
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        if flag == "--dump" {
            args.dump = Some(PathBuf::from(value));
            continue;
        }
        let parsed: u64 = value.replace('_', "").parse().map_err(|e| format!("{flag} {value}: {e}"))?;
        let as_usize = usize::try_from(parsed).map_err(|e| e.to_string())?;
        match flag.as_str() {
            "--videos" => args.videos = as_usize,
            "--frames" => args.frames = as_usize,
            "--queries" => args.queries = as_usize,
            "--check" => args.check = as_usize,
            "--seed" => args.seed = parsed,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if args.videos == 0 || args.videos > u32::MAX as usize {
        return Err("--videos must be in 1..=u32::MAX".into());
    }
    if args.frames == 0 || args.frames > vpdq::MAX_FRAMES {
        return Err(format!("--frames must be in 1..={}", vpdq::MAX_FRAMES));
    }
    if args.videos.saturating_mul(args.frames) >= u32::MAX as usize {
        return Err("--videos × --frames must stay below 2^32 frames".into());
    }
    Ok(args)
}

fn flip(rng: &mut StdRng, hash: &[u8; 32], bits: usize) -> [u8; 32] {
    let mut out = *hash;
    for bit in sample(rng, 256, bits) {
        out[bit / 8] ^= 1 << (bit % 8);
    }
    out
}

/// A quality for a new scene: flat one time in ten.
fn scene_quality(rng: &mut StdRng) -> u8 {
    if rng.random_bool(0.1) {
        rng.random_range(0..QUALITY_THRESHOLD)
    } else {
        rng.random_range(QUALITY_THRESHOLD..=100)
    }
}

/// The scene's quality moved by a few points, on the same side of the threshold, so a repeated
/// hash always has the same quality and the reference's two filter orders agree.
fn jitter(rng: &mut StdRng, quality: u8) -> u8 {
    let (low, high) =
        if quality >= QUALITY_THRESHOLD { (QUALITY_THRESHOLD, 100) } else { (0, QUALITY_THRESHOLD - 1) };
    quality.saturating_add_signed(rng.random_range(-3..=3)).clamp(low, high)
}

/// `frames` seconds of new content, timestamps from `start_ms`.
fn new_content(rng: &mut StdRng, frames: usize, start_ms: u32) -> Vec<Frame> {
    let mut out = Vec::with_capacity(frames);
    let (mut hash, mut scene_quality_now, mut quality, mut scene_left) = ([0u8; 32], 0, 0, 0);
    for i in 0..frames {
        if scene_left == 0 {
            scene_left = rng.random_range(2..=8);
            rng.fill_bytes(&mut hash);
            scene_quality_now = scene_quality(rng);
            quality = scene_quality_now;
        } else {
            let bits = rng.random_range(0..=6);
            if bits > 0 {
                hash = flip(rng, &hash, bits);
                quality = jitter(rng, scene_quality_now);
            }
        }
        scene_left -= 1;
        let timestamp_ms = start_ms.saturating_add(u32::try_from(i * 1000).unwrap_or(u32::MAX));
        out.push(Frame { hash, quality, timestamp_ms });
    }
    out
}

/// A re-encoded, trimmed copy of `source`; with `splice`, sometimes with a clip inserted.
fn altered_copy(rng: &mut StdRng, source: &[Frame], splice: bool) -> Vec<Frame> {
    let n = source.len();
    let len = rng.random_range(n.div_ceil(2)..=n);
    let start = rng.random_range(0..=n - len);
    let kept = &source[start..start + len];
    let drops = rng.random_range(0..=3).min(len - 1);
    let dropped: BTreeSet<usize> = sample(rng, len, drops).into_iter().collect();
    let base_ms = kept[0].timestamp_ms;
    let mut out: Vec<Frame> = kept
        .iter()
        .enumerate()
        .filter(|(i, _)| !dropped.contains(i))
        .map(|(_, f)| {
            let bits = rng.random_range(0..=20);
            Frame {
                hash: flip(rng, &f.hash, bits),
                quality: f.quality,
                timestamp_ms: f.timestamp_ms - base_ms,
            }
        })
        .collect();
    if splice && rng.random_ratio(1, 3) {
        let run = rng.random_range(out.len() / 10..=out.len() * 3 / 10);
        let at = rng.random_range(0..=out.len() - run);
        let clip = new_content(rng, run, out.get(at).map_or(0, |f| f.timestamp_ms));
        out.splice(at..at + run, clip);
    }
    out
}

fn entry_of(video: usize) -> RecordId {
    let mut id = [0u8; 32];
    id[..4].copy_from_slice(&u32::try_from(video).unwrap_or(u32::MAX).to_le_bytes());
    RecordId(id)
}

fn video_of(entry: &RecordId) -> u32 {
    u32::from_le_bytes([entry.0[0], entry.0[1], entry.0[2], entry.0[3]])
}

fn is_match(score: &Score) -> bool {
    score.query_percent >= QUERY_PERCENT && score.candidate_percent >= CANDIDATE_PERCENT
}

fn rss_bytes() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A match decision: the video and its two percentages.
type Decision = (u32, f64, f64);

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let popcnt = cfg!(target_feature = "popcnt");
    println!(
        "videos={} frames={} queries={} check={} seed={} popcnt={popcnt}",
        args.videos, args.frames, args.queries, args.check, args.seed
    );

    // Generate the stored videos as the values the index takes, and the queries.
    let t = Instant::now();
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut stored: Vec<Vec<u8>> = Vec::with_capacity(args.videos);
    for i in 0..args.videos {
        let frames = if i > 0 && rng.random_bool(REUPLOAD_SHARE) {
            let source: Vec<Frame> = vpdq::frames(&stored[rng.random_range(0..i)]).collect();
            altered_copy(&mut rng, &source, false)
        } else {
            new_content(&mut rng, args.frames, 0)
        };
        stored.push(vpdq::encode(&frames));
    }
    let queries: Vec<Vec<u8>> = (0..args.queries)
        .map(|i| {
            let frames = if i % 2 == 0 {
                let source: Vec<Frame> = vpdq::frames(&stored[rng.random_range(0..stored.len())]).collect();
                altered_copy(&mut rng, &source, true)
            } else {
                new_content(&mut rng, args.frames, 0)
            };
            vpdq::encode(&frames)
        })
        .collect();
    let input_frames: usize = stored.iter().map(|v| v.len() / vpdq::FRAME_LEN).sum();
    println!(
        "generated in {:.2}s: {input_frames} frames in {} videos",
        t.elapsed().as_secs_f64(),
        stored.len()
    );

    // Build, one video at a time, as the node indexes entries.
    let rss_before = rss_bytes();
    let t = Instant::now();
    let mut index = VideoIndex::default();
    for (i, value) in stored.iter().enumerate() {
        if !index.insert(value, entry_of(i)) {
            eprintln!("error: the index is full at video {i}");
            return ExitCode::FAILURE;
        }
    }
    let build_s = t.elapsed().as_secs_f64();
    let rss_delta = rss_bytes().zip(rss_before).map(|(after, before)| after.saturating_sub(before));
    let frames = index.frames();
    let bytes_per_frame = index.memory_bytes() as f64 / frames as f64;
    let rss_per_frame = rss_delta.map_or(f64::NAN, |d| d as f64 / frames as f64);
    println!(
        "build: {build_s:.2}s ({:.0} videos/s); {frames} comparable frames of {input_frames} in {} videos",
        stored.len() as f64 / build_s,
        index.videos()
    );
    println!(
        "memory: {} bytes = {bytes_per_frame:.1} bytes/frame (memory_bytes); RSS delta {} bytes = {rss_per_frame:.1} bytes/frame",
        index.memory_bytes(),
        rss_delta.map_or_else(|| "?".into(), |d| d.to_string())
    );

    // Queries, one video after another: decode, dedupe and filter, look up, apply policy.
    let mut times_ms = Vec::with_capacity(queries.len());
    let mut decisions: Vec<Vec<Decision>> = Vec::with_capacity(queries.len());
    let (mut shared, mut near_below, mut near_above) = (0usize, 0usize, 0usize);
    for query in &queries {
        let started = Instant::now();
        let hashes = vpdq::comparable(vpdq::frames(query));
        let hits = black_box(index.query(&hashes, MAX_DISTANCE));
        let matches: Vec<Decision> = hits
            .iter()
            .filter(|h| is_match(&h.score))
            .map(|h| (video_of(&h.entry), h.score.query_percent, h.score.candidate_percent))
            .collect();
        times_ms.push(started.elapsed().as_secs_f64() * 1e3);
        shared += hits.len();
        near_below += hits.iter().filter(|h| (60.0..QUERY_PERCENT).contains(&h.score.query_percent)).count();
        near_above += hits.iter().filter(|h| (QUERY_PERCENT..90.0).contains(&h.score.query_percent)).count();
        decisions.push(matches);
    }
    let (mean_ms, p99_ms) = mean_and_p99(&mut times_ms);
    let qps = if mean_ms > 0.0 { 1e3 / mean_ms } else { 0.0 };
    let matched_copies = decisions.iter().step_by(2).filter(|d| !d.is_empty()).count();
    let matched_unrelated = decisions.iter().skip(1).step_by(2).filter(|d| !d.is_empty()).count();
    let total_matches: usize = decisions.iter().map(Vec::len).sum();
    println!(
        "query d<={MAX_DISTANCE}: {qps:.1} query videos/s, mean {mean_ms:.3} ms, p99 {p99_ms:.3} ms; \
         {shared} videos sharing a frame, {total_matches} matches ({near_below} hits at 60-80 %, \
         {near_above} at 80-90 %); matched copies {matched_copies}/{}, matched unrelated {matched_unrelated}/{}",
        queries.len().div_ceil(2),
        queries.len() / 2
    );

    // The reference's brute-force matcher against every stored video, on a sample.
    let t = Instant::now();
    let stored_hashes: Vec<Vec<[u8; 32]>> =
        stored.iter().map(|v| vpdq::comparable(vpdq::frames(v))).collect();
    let sample_n = args.check.min(queries.len());
    let (mut expected_total, mut found, mut decision_mismatches, mut score_mismatches) = (0, 0, 0, 0);
    for query in &queries[..sample_n] {
        let hashes = vpdq::comparable(vpdq::frames(query));
        let brute: Vec<(u32, Score)> = (0u32..)
            .zip(&stored_hashes)
            .filter_map(|(video, candidate)| Some((video, vpdq::score(&hashes, candidate, MAX_DISTANCE)?)))
            .filter(|(_, s)| s.query_percent > 0.0)
            .collect();
        let got: Vec<(u32, Score)> =
            index.query(&hashes, MAX_DISTANCE).into_iter().map(|h| (video_of(&h.entry), h.score)).collect();
        let expected: BTreeSet<u32> = brute.iter().filter(|(_, s)| is_match(s)).map(|(v, _)| *v).collect();
        let decided: BTreeSet<u32> = got.iter().filter(|(_, s)| is_match(s)).map(|(v, _)| *v).collect();
        expected_total += expected.len();
        found += expected.intersection(&decided).count();
        decision_mismatches += expected.symmetric_difference(&decided).count();
        // Every video sharing a frame, with the same percentages and smallest distance.
        let mut got_sorted = got;
        got_sorted.sort_by_key(|(v, _)| *v);
        score_mismatches += usize::from(got_sorted != brute);
    }
    let recall = if expected_total == 0 { 1.0 } else { found as f64 / expected_total as f64 };
    let brute_s = t.elapsed().as_secs_f64();
    println!(
        "check vs brute force (vpdq::score over all {} videos) on {sample_n} queries: recall={recall:.4} \
         ({found}/{expected_total} matches), decision mismatches={decision_mismatches}, \
         queries with a score mismatch={score_mismatches}; brute force {:.3} s per query video",
        stored.len(),
        brute_s / sample_n.max(1) as f64
    );

    println!(
        "rust_vpdq videos={} input_frames={input_frames} frames={frames} queries={} build_s={build_s:.3} \
         bytes_per_frame={bytes_per_frame:.1} rss_bytes_per_frame={rss_per_frame:.1} qps={qps:.2} \
         mean_ms={mean_ms:.4} p99_ms={p99_ms:.4} matches={total_matches} recall={recall:.4} \
         mismatches={decision_mismatches} score_mismatches={score_mismatches} popcnt={popcnt}",
        stored.len(),
        queries.len()
    );

    if let Some(path) = &args.dump {
        let t = Instant::now();
        if let Err(e) = dump(path, &stored, &queries, &decisions) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!("dump: {} in {:.2}s", path.display(), t.elapsed().as_secs_f64());
    }
    if decision_mismatches > 0 || score_mismatches > 0 {
        eprintln!("error: the index disagrees with the brute-force matcher");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Mean and 99th percentile (nearest rank); sorts `times`.
fn mean_and_p99(times: &mut [f64]) -> (f64, f64) {
    if times.is_empty() {
        return (0.0, 0.0);
    }
    times.sort_by(f64::total_cmp);
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    let rank = (times.len() * 99).div_ceil(100);
    (mean, times[rank.clamp(1, times.len()) - 1])
}

/// Writes the data set, the queries and the decisions in the format of the module doc.
fn dump(
    path: &Path,
    stored: &[Vec<u8>],
    queries: &[Vec<u8>],
    decisions: &[Vec<Decision>],
) -> std::io::Result<()> {
    fn count(n: usize) -> std::io::Result<[u8; 4]> {
        u32::try_from(n).map(u32::to_le_bytes).map_err(std::io::Error::other)
    }
    let mut out = BufWriter::new(File::create(path)?);
    out.write_all(DUMP_MAGIC)?;
    out.write_all(&count(stored.len())?)?;
    out.write_all(&count(queries.len())?)?;
    out.write_all(&MAX_DISTANCE.to_le_bytes())?;
    for value in stored.iter().chain(queries) {
        out.write_all(&count(value.len())?)?;
        out.write_all(value)?;
    }
    for matches in decisions {
        out.write_all(&count(matches.len())?)?;
        for &(video, query_percent, candidate_percent) in matches {
            out.write_all(&video.to_le_bytes())?;
            out.write_all(&query_percent.to_le_bytes())?;
            out.write_all(&candidate_percent.to_le_bytes())?;
        }
    }
    out.flush()
}
