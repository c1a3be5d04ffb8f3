//! `hashmesh match --dir` as a platform runs it over a folder: the real binary against a real
//! node, the report's rows and the exit status a script branches on.

use std::path::Path;

use serde_json::Value;

use super::{Running, hashmesh, init_node, run};

/// A fresh node: its admin token and the running process.
fn node(dir: &Path) -> (String, Running) {
    let admin = init_node(dir)["tokens"]["admin"].as_str().expect("admin token").to_owned();
    (admin, run(dir))
}

/// A photo-like test image: smooth gradients and edges, different for each `seed`, and not
/// symmetric, so its mirror image has a different PDQ.
fn picture(seed: u32) -> image::RgbImage {
    image::RgbImage::from_fn(320, 240, |x, y| {
        let (fx, fy) = (x as f32 / 320.0, y as f32 / 240.0);
        let wave = ((fx * (3.0 + seed as f32) + fy * fy * 5.0).sin() * 0.5 + 0.5) * 255.0;
        let disc =
            if (x as i32 - 90 - 20 * seed as i32).pow(2) + (y as i32 - 80).pow(2) < 2500 { 200 } else { 30 };
        let ramp = ((x * (2 + seed) + y) % 256) as u8;
        image::Rgb([wave as u8, disc, ramp])
    })
}

fn parse_rows(jsonl: &str) -> Vec<Value> {
    jsonl.lines().map(|l| serde_json::from_str(l).expect("each line is a JSON object")).collect()
}

fn row<'a>(rows: &'a [Value], name: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["path"].as_str().is_some_and(|p| p.ends_with(name)))
        .unwrap_or_else(|| panic!("a row for {name}: {rows:?}"))
}

#[test]
fn scanning_a_folder_reports_every_file_and_exits_1_on_a_match() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (admin, node) = node(&tmp.path().join("node"));
    let folder = tmp.path().join("seized");
    std::fs::create_dir_all(folder.join("nested/deeper")).expect("mkdir");
    let listed = picture(1);
    listed.save(folder.join("listed.png")).expect("save");
    image::imageops::flip_horizontal(&listed).save(folder.join("nested/deeper/mirrored.png")).expect("save");
    picture(4).save(folder.join("nested/holiday.png")).expect("save");
    std::fs::write(folder.join("notes, draft.txt"), b"just text").expect("write");
    std::fs::write(folder.join("broken.png"), b"\x89PNG\r\n\x1a\nnot the rest of a png").expect("write");

    // The platform that removed the picture listed only its PDQ.
    let hashed = hashmesh(&node.rpc, &admin, &["hash", folder.join("listed.png").to_str().expect("utf8")]);
    let stdout = String::from_utf8_lossy(&hashed.stdout);
    let pdq = stdout.lines().find_map(|l| l.split_whitespace().next().filter(|h| h.starts_with("pdq:")));
    let submitted = hashmesh(
        &node.rpc,
        &admin,
        &["submit", "--json", "--hash", pdq.expect("a pdq"), "--category", "csam"],
    );
    assert!(submitted.status.success(), "{}", String::from_utf8_lossy(&submitted.stderr));
    let entry = serde_json::from_slice::<Value>(&submitted.stdout).expect("json")["id"].clone();

    let dir = folder.to_str().expect("utf8");
    let scan = hashmesh(&node.rpc, &admin, &["match", "--dir", dir, "--jobs", "3"]);
    assert_eq!(scan.status.code(), Some(1), "a match exits 1: {}", String::from_utf8_lossy(&scan.stderr));
    let rows = parse_rows(&String::from_utf8_lossy(&scan.stdout));
    assert_eq!(rows.len(), 5, "one row per file: {rows:?}");
    for name in ["listed.png", "nested/deeper/mirrored.png"] {
        let r = row(&rows, name);
        // A lone member's entry stays pending: review, not remove.
        assert_eq!(r["action"], "review", "{r}");
        assert_eq!(r["hits"].as_array().map(Vec::len), Some(1), "one hit per entry: {r}");
        let hit = &r["hits"][0];
        assert_eq!(
            (&hit["entry"], &hit["category"], &hit["status"]),
            (&entry, &"csam".into(), &"pending".into())
        );
        assert_eq!((&hit["kind"], &hit["action"]), (&"pdq".into(), &"review".into()), "{hit}");
        assert!(hit["distance"].as_u64().is_some_and(|d| d <= 31), "{hit}");
        assert_eq!(r["error"], Value::Null, "{r}");
    }
    assert_eq!(row(&rows, "listed.png")["hits"][0]["distance"], 0);
    for name in ["nested/holiday.png", "notes, draft.txt"] {
        let r = row(&rows, name);
        assert_eq!(
            (&r["action"], &r["hits"], &r["error"]),
            (&"none".into(), &serde_json::json!([]), &Value::Null),
            "{r}"
        );
    }
    let broken = row(&rows, "broken.png");
    assert!(broken["error"].as_str().is_some_and(|e| e.contains("cannot decode image")), "{broken}");
    assert_eq!(broken["action"], "none", "its exact hashes were looked up and found nothing");

    // The same scan as CSV into a file: a header, then the same five rows.
    let report = tmp.path().join("report.csv");
    let csv = hashmesh(
        &node.rpc,
        &admin,
        &["match", "--dir", dir, "--format", "csv", "--report", report.to_str().expect("utf8")],
    );
    assert_eq!(csv.status.code(), Some(1));
    assert!(csv.stdout.is_empty(), "the report goes to the file");
    let text = std::fs::read_to_string(&report).expect("report written");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "path,action,hits,error,skipped");
    assert_eq!(lines.len(), 6, "{text}");
    let mirrored = lines.iter().find(|l| l.contains("mirrored.png")).expect("mirrored row");
    assert!(
        mirrored.contains(&format!(",review,{} csam pending pdq ", entry.as_str().expect("id"))),
        "{mirrored}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with('"') && l.contains("notes, draft.txt\",none,,,")),
        "quoted path: {text}"
    );

    // Without the listed picture and its copy: a broken image alone is an error (2), clean
    // files alone are 0.
    std::fs::remove_file(folder.join("listed.png")).expect("rm");
    std::fs::remove_dir_all(folder.join("nested/deeper")).expect("rm");
    assert_eq!(hashmesh(&node.rpc, &admin, &["match", "--dir", dir]).status.code(), Some(2));
    std::fs::remove_file(folder.join("broken.png")).expect("rm");
    let clean = hashmesh(&node.rpc, &admin, &["match", "--dir", dir]);
    assert_eq!(clean.status.code(), Some(0), "{}", String::from_utf8_lossy(&clean.stderr));
    assert_eq!(parse_rows(&String::from_utf8_lossy(&clean.stdout)).len(), 2);
    drop(node);
}

#[test]
fn a_scan_that_cannot_finish_exits_2_and_says_why() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("a.txt"), b"a").expect("write");
    let dir = tmp.path().to_str().expect("utf8");
    let unreachable = hashmesh("http://127.0.0.1:9", "hm_x", &["match", "--dir", dir]);
    assert_eq!(unreachable.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unreachable.stderr).contains("cannot reach the node"));
    let missing = hashmesh("http://127.0.0.1:9", "hm_x", &["match", "--dir", &format!("{dir}/nope")]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot scan"), "names the folder");
    // Report options without --dir are a usage error, as is --dir with files.
    for args in [
        vec!["match", "--format", "csv", "x.png"],
        vec!["match", "--report", "r.csv"],
        vec!["match", "--dir", dir, "x.png"],
    ] {
        let out = hashmesh("http://127.0.0.1:9", "hm_x", &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}
