//! Videos through the CLI: `hash` prints a vPDQ fingerprint, `submit --file` lists it, and
//! `match` finds a re-encoded, resized copy and names the share of each video that matched.

use std::process::Command;

use super::{BIN, cli, run};

/// Runs ffmpeg; `false` (with the reason printed) when it is not installed and
/// `HASHMESH_REQUIRE_FFMPEG` is unset.
fn ffmpeg(args: &[&str]) -> bool {
    match Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .status()
    {
        Ok(status) => {
            assert!(status.success(), "ffmpeg {args:?} failed");
            true
        }
        Err(e) => {
            assert!(std::env::var_os("HASHMESH_REQUIRE_FFMPEG").is_none(), "ffmpeg cannot run: {e}");
            eprintln!("skipping: ffmpeg is not installed (bash tests/video/install-ffmpeg.sh)");
            false
        }
    }
}

#[test]
fn a_listed_video_is_found_from_a_reencoded_copy() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (video, copy, other) =
        (tmp.path().join("removed.mp4"), tmp.path().join("copy.webm"), tmp.path().join("other.mp4"));
    let path = |p: &std::path::Path| p.to_str().expect("utf8 path").to_owned();
    // FFmpeg's moving test pattern, 8 s; a smaller, re-encoded copy; a different pattern.
    if !ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=25:duration=8",
        "-pix_fmt",
        "yuv420p",
        &path(&video),
    ]) {
        return;
    }
    ffmpeg(&["-i", &path(&video), "-vf", "scale=160:120", "-c:v", "libvpx", "-b:v", "200k", &path(&copy)]);
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "mandelbrot=size=320x240:rate=25",
        "-t",
        "8",
        "-pix_fmt",
        "yuv420p",
        &path(&other),
    ]);

    let hashed = Command::new(BIN).arg("hash").arg(&video).output().expect("hash runs");
    let printed = String::from_utf8_lossy(&hashed.stdout).into_owned();
    let line = printed.lines().find(|l| l.starts_with("vpdq:")).expect("a vpdq line");
    assert!(line.ends_with("frames=8"), "one frame a second: {}", &line[line.len() - 20..]);

    let dir = tmp.path().join("node");
    let out = Command::new(BIN).args(["init", "--json", "--data-dir"]).arg(&dir).output().expect("init runs");
    let init: serde_json::Value = serde_json::from_slice(&out.stdout).expect("init --json prints JSON");
    let admin = init["tokens"]["admin"].as_str().expect("admin token").to_owned();
    let node = run(&dir);
    let written = cli(
        &node.rpc,
        &admin,
        &["submit", "--json", "--file", &path(&video), "--category", "harmful_behavior"],
    );
    let id = serde_json::from_str::<serde_json::Value>(&written).expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let shown = cli(&node.rpc, &admin, &["show", &id]);
    assert!(shown.contains("vpdq:[8 frames, blake3 "), "the entry holds the video's fingerprint: {shown}");

    let matched = cli(&node.rpc, &admin, &["match", &path(&copy)]);
    let hit =
        matched.lines().find(|l| l.contains(&id)).unwrap_or_else(|| panic!("the copy matches: {matched}"));
    assert!(hit.contains("vpdq") && hit.contains("% of the video"), "{hit}");
    let unrelated = cli(&node.rpc, &admin, &["match", &path(&other)]);
    assert!(!unrelated.contains(&id), "{unrelated}");
}
