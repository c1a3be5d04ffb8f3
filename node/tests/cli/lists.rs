//! `hashmesh import` / `export`, `stats` and `webhooks` as an operator runs them.

use std::process::Command;

use super::{BIN, cli, init_node, run};

#[test]
fn a_list_goes_in_and_comes_out_and_a_bad_row_sets_the_exit_status() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("node");
    let admin = init_node(&dir)["tokens"]["admin"].as_str().expect("admin token").to_owned();
    let node = run(&dir);

    let list = tmp.path().join("list.txt");
    let pdq = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
    std::fs::write(&list, format!("pdq {pdq}\nvideo_md5 0123456789abcdef0123456789abcdef\n")).expect("write");
    let out = cli(
        &node.rpc,
        &admin,
        &["import", list.to_str().expect("utf8"), "--format", "te", "--category", "csam"],
    );
    assert!(out.contains("2 rows: 2 imported, 0 skipped"), "{out}");

    // Again, with a bad row: the held rows are skipped, the bad one named, the exit status 1.
    std::fs::write(&list, format!("pdq {pdq}\nraw_text hello\n")).expect("write");
    let again = Command::new(BIN)
        .args(["import", list.to_str().expect("utf8"), "--format", "te", "--category", "csam"])
        .env("HASHMESH_RPC", &node.rpc)
        .env("HASHMESH_TOKEN", &admin)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert_eq!(again.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("1 skipped") && stdout.contains("line 2: signal type \"raw_text\""), "{stdout}");

    let exported = tmp.path().join("out.te");
    cli(&node.rpc, &admin, &["export", "--format", "te", "-o", exported.to_str().expect("utf8")]);
    let mut lines: Vec<String> =
        std::fs::read_to_string(&exported).expect("written").lines().map(str::to_owned).collect();
    lines.sort();
    assert_eq!(lines, vec![format!("pdq {pdq}"), "video_md5 0123456789abcdef0123456789abcdef".to_owned()]);
    let stdout = cli(&node.rpc, &admin, &["export", "--format", "plain", "--kind", "md5"]);
    assert_eq!(stdout, "md5:0123456789abcdef0123456789abcdef\n");

    let stats = cli(&node.rpc, &admin, &["stats", "--publish"]);
    assert!(stats.contains("no counters published"), "nothing matched yet: {stats}");
    let hooks = cli(&node.rpc, &admin, &["webhooks"]);
    assert!(hooks.contains("no webhooks configured"), "{hooks}");
}
