//! vPDQ against Meta's reference on the committed test videos (`tests/video/make-videos.sh`
//! made them with FFmpeg); the expected values in `node/tests/fixtures/vpdq/
//! reference.json` come from the PyPI `vpdq` package and python-threatexchange's brute-force
//! matcher (`tests/video/reference.sh` remakes them).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use hashmesh_protocol::vpdq;
use serde::Deserialize;

use super::*;

#[derive(Deserialize)]
struct Reference {
    thresholds: Thresholds,
    /// Per video: `[hash hex, quality, frame number, timestamp in s]`.
    videos: BTreeMap<String, Vec<(String, u8, u64, f64)>>,
    matches: Vec<Pair>,
}

#[derive(Deserialize)]
struct Thresholds {
    distance: u32,
    query_percent: f64,
    candidate_percent: f64,
}

#[derive(Deserialize)]
struct Pair {
    query: String,
    candidate: String,
    query_percent: f64,
    candidate_percent: f64,
    #[serde(rename = "match")]
    matched: bool,
}

fn reference() -> Reference {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vpdq/reference.json");
    let text = std::fs::read_to_string(&path).expect("reference.json");
    serde_json::from_str(&text).expect("reference.json parses")
}

/// The committed test videos (`tests/video/make-videos.sh` made them); `None` (with the reason
/// printed) when FFmpeg is not installed and `HASHMESH_REQUIRE_FFMPEG` is unset. `.ci/run`
/// installs FFmpeg and sets it, so CI never skips these.
fn videos() -> Option<&'static Path> {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    let installed = *INSTALLED.get_or_init(|| {
        let installed = Command::new("ffmpeg").arg("-version").output().is_ok_and(|o| o.status.success());
        if !installed {
            assert!(
                std::env::var_os("HASHMESH_REQUIRE_FFMPEG").is_none(),
                "HASHMESH_REQUIRE_FFMPEG is set but ffmpeg is not installed"
            );
            eprintln!("skipping: ffmpeg is not installed (apt-get install ffmpeg runs these tests)");
        }
        installed
    });
    installed.then(|| Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/vpdq/videos")))
}

fn video(name: &str) -> Option<PathBuf> {
    videos().map(|dir| dir.join(name))
}

fn parse_hash(hex_text: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_text, &mut out).expect("64 hex digits");
    out
}

#[test]
fn frames_agree_with_metas_vpdq() {
    let Some(dir) = videos() else { return };
    let reference = reference();
    assert_eq!(reference.videos.len(), 9, "every test video has reference values");
    let (mut frames, mut exact) = (0, 0);
    for (name, expected) in &reference.videos {
        let hashed = hash(&dir.join(name), &VideoConfig::default()).expect(name);
        assert_eq!(hashed.frames.len(), expected.len(), "{name}: frames sampled");
        for (i, (ours, (hash_hex, quality, _, seconds))) in hashed.frames.iter().zip(expected).enumerate() {
            let d = vpdq::distance(&ours.hash, &parse_hash(hash_hex));
            // The PDQ port's tolerance: a bit or two where FFmpeg builds round differently.
            assert!(d <= 2, "{name} frame {i}: distance {d} to the reference");
            assert!(
                ours.quality.abs_diff(*quality) <= 2,
                "{name} frame {i}: quality {} vs {quality}",
                ours.quality
            );
            assert_eq!(ours.timestamp_ms, (seconds * 1000.0).round() as u32, "{name} frame {i}: timestamp");
            frames += 1;
            exact += usize::from(d == 0 && ours.quality == *quality);
        }
    }
    eprintln!("{exact} of {frames} frames bit-exact with the reference");
}

#[test]
fn match_decisions_agree_with_the_reference_matcher() {
    let Some(dir) = videos() else { return };
    let reference = reference();
    let config = VideoConfig::default();
    let mut comparable: BTreeMap<&str, Vec<[u8; 32]>> = BTreeMap::new();
    for name in reference.videos.keys() {
        let hashed = hash(&dir.join(name), &config).expect(name);
        comparable.insert(name, vpdq::comparable(hashed.frames));
    }
    let t = &reference.thresholds;
    for pair in &reference.matches {
        let score =
            vpdq::score(&comparable[pair.query.as_str()], &comparable[pair.candidate.as_str()], t.distance)
                .expect("frames to compare");
        let matched =
            score.query_percent >= t.query_percent && score.candidate_percent >= t.candidate_percent;
        assert_eq!(matched, pair.matched, "{} against {}: {score:?}", pair.query, pair.candidate);
        // Bit-exact frames give the very percentages.
        assert_eq!(
            (score.query_percent, score.candidate_percent),
            (pair.query_percent, pair.candidate_percent),
            "{} against {}",
            pair.query,
            pair.candidate
        );
    }
    // What the copies should show: every copy but the mirrored one matches under the
    // reference's rules, and the unrelated video does not.
    let decided: BTreeMap<&str, bool> = reference
        .matches
        .iter()
        .filter(|p| p.candidate == "source.mp4")
        .map(|p| (p.query.as_str(), p.matched))
        .collect();
    assert!(!decided["unrelated.mp4"] && !decided["mirrored.mp4"]);
    assert_eq!(decided.values().filter(|&&m| m).count(), 7, "{decided:?}");
}

#[test]
fn a_mirrored_copy_matches_through_its_variants() {
    let (Some(source), Some(mirrored)) = (video("source.mp4"), video("mirrored.mp4")) else { return };
    let config = VideoConfig::default();
    let stored = vpdq::comparable(hash(&source, &config).expect("source").frames);
    let query = fingerprint(&hash(&mirrored, &config).expect("mirrored")).expect("a fingerprint");
    let as_is =
        vpdq::score(&vpdq::comparable(vpdq::frames(query.fingerprint.value())), &stored, 31).expect("frames");
    assert!(as_is.query_percent < 10.0, "the mirrored frames themselves do not match: {as_is:?}");
    let best = query
        .variants
        .iter()
        .filter_map(|v| vpdq::score(&vpdq::comparable(vpdq::frames(v.value())), &stored, 31))
        .map(|s| s.query_percent)
        .fold(0.0, f64::max);
    assert!(best >= 95.0, "flipped back, the frames match: {best}");
    assert_eq!(query.variants.len(), 7);
}

#[test]
fn the_fingerprint_keeps_each_frame_once() {
    let Some(source) = video("source.mp4") else { return };
    let hashed = hash(&source, &VideoConfig::default()).expect("source");
    // A still frame repeated: its later copies are dropped, the first timestamp kept.
    let mut doubled = Hashed { frames: hashed.frames.clone(), variants: hashed.variants.clone() };
    doubled.frames.push(Frame { timestamp_ms: 99_000, ..hashed.frames[0] });
    for (list, first) in doubled.variants.iter_mut().zip(hashed.variants.iter().map(|v| v[0])) {
        list.push(first);
    }
    let fp = fingerprint(&doubled).expect("fingerprint");
    let frames: Vec<Frame> = vpdq::frames(fp.fingerprint.value()).collect();
    assert_eq!(frames, vpdq::dedupe(hashed.frames.iter().copied()));
    assert!(fp.skipped.is_none());
    // A video of flat frames is fingerprinted but not matched.
    let flat = Hashed {
        frames: vec![Frame { hash: [0; 32], quality: 0, timestamp_ms: 0 }],
        variants: Default::default(),
    };
    let fp = fingerprint(&flat).expect("fingerprint");
    assert!(fp.skipped.is_some_and(|why| why.contains("quality 50")));
}

#[test]
fn videos_are_recognised_by_their_first_bytes() {
    let Some(dir) = videos() else { return };
    for entry in std::fs::read_dir(dir).expect("videos") {
        let path = entry.expect("entry").path();
        let head = std::fs::read(&path).expect("read");
        assert!(looks_like_video(&head[..head.len().min(512)]), "{}", path.display());
    }
    let png = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pdq/moon.png"))
        .expect("png");
    assert!(!looks_like_video(&png));
    let mut heic = vec![0, 0, 0, 24];
    heic.extend_from_slice(b"ftypheic");
    assert!(!looks_like_video(&heic));
    assert!(!looks_like_video(b""));
}

#[test]
fn bad_input_and_missing_tools_are_clear_errors() {
    let Some(source) = video("source.mp4") else { return };
    let missing = VideoConfig {
        ffprobe: "/nonexistent/ffprobe".into(),
        ffmpeg: "/nonexistent/ffmpeg".into(),
        ..VideoConfig::default()
    };
    let err = hash(&source, &missing).err().expect("no ffprobe");
    assert!(matches!(err, VideoError::Missing { .. }), "{err}");
    assert!(err.to_string().contains("apt-get install ffmpeg"), "{err}");

    // MP4 keeps its index at the end: half a file has none.
    let dir = tempfile::tempdir().expect("temp dir");
    let bytes = std::fs::read(&source).expect("read");
    let half = dir.path().join("half.mp4");
    std::fs::write(&half, &bytes[..bytes.len() / 2]).expect("write");
    let err = hash(&half, &VideoConfig::default()).err().expect("no index");
    assert!(matches!(err, VideoError::NotVideo(_)), "{err}");

    let text = dir.path().join("notes.mp4");
    std::fs::write(&text, "not a video at all").expect("write");
    assert!(matches!(hash(&text, &VideoConfig::default()), Err(VideoError::NotVideo(_))));

    // The deadline stops FFmpeg; a tiny address space stops it from starting.
    let hurried = VideoConfig { timeout: Duration::ZERO, ..VideoConfig::default() };
    assert!(matches!(hash(&source, &hurried), Err(VideoError::TimedOut(_))));
    if prlimit().is_some() {
        let starved = VideoConfig { max_memory_bytes: 1 << 20, ..VideoConfig::default() };
        assert!(hash(&source, &starved).is_err());
    }
}

#[test]
fn files_and_uploads_get_a_vpdq_fingerprint_beside_the_exact_ones() {
    let Some(source) = video("source.mp4") else { return };
    let config = VideoConfig::default();
    let from_file = crate::hashers::fingerprint_file(&source, &config).expect("read");
    let bytes = std::fs::read(&source).expect("read");
    let from_upload = crate::hashers::fingerprint_bytes(&bytes, &config);
    for hashed in [&from_file, &from_upload] {
        assert_eq!(hashed.video_error, None);
        let kinds: Vec<FingerprintKind> = hashed.computed.iter().map(|c| c.fingerprint.kind()).collect();
        assert!(kinds.contains(&FingerprintKind::Md5) && kinds.contains(&FingerprintKind::Vpdq), "{kinds:?}");
    }
    let vpdq_of = |h: &crate::hashers::Hashed| {
        h.computed
            .iter()
            .find(|c| c.fingerprint.kind() == FingerprintKind::Vpdq)
            .map(|c| c.fingerprint.clone())
    };
    assert_eq!(vpdq_of(&from_file), vpdq_of(&from_upload));

    // Without FFmpeg the exact kinds are still there, with the reason.
    let missing = VideoConfig { ffprobe: "/nonexistent/ffprobe".into(), ..VideoConfig::default() };
    let hashed = crate::hashers::fingerprint_bytes(&bytes, &missing);
    assert!(hashed.video_error.is_some_and(|e| e.contains("apt-get install ffmpeg")));
    assert!(hashed.computed.iter().any(|c| c.fingerprint.kind() == FingerprintKind::Sha256));
    assert!(hashed.computed.iter().all(|c| c.fingerprint.kind() != FingerprintKind::Vpdq));
}
