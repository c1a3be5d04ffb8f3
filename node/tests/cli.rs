//! The `hashmesh` binary as an operator uses it: init, run, submit, list, match, restart.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_hashmesh");

struct Running {
    child: Child,
    rpc: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(dir: &std::path::Path) -> Running {
    let mut child = Command::new(BIN)
        .args(["run", "--data-dir"])
        .arg(dir)
        .args(["--rpc-listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("hashmesh starts");
    let stdout = child.stdout.take().expect("stdout");
    // The node prints its RPC address once it is listening; reading the line is the wait.
    let rpc = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.split("RPC on ").nth(1).map(|r| r.split_whitespace().next().unwrap_or("").to_owned()))
        .expect("node prints its RPC address");
    Running { child, rpc }
}

fn cli(rpc: &str, token: &str, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .env("HASHMESH_RPC", rpc)
        .env("HASHMESH_TOKEN", token)
        .output()
        .expect("cli runs");
    assert!(out.status.success(), "hashmesh {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn operator_flow_survives_restart() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("node");
    let out = Command::new(BIN).args(["init", "--json", "--data-dir"]).arg(&dir).output().expect("init runs");
    assert!(out.status.success());
    let init: serde_json::Value = serde_json::from_slice(&out.stdout).expect("init --json prints JSON");
    let admin = init["tokens"]["admin"].as_str().expect("admin token").to_owned();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("member.key")).expect("key file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "key file must be private");
    }
    let again = Command::new(BIN).args(["init", "--data-dir"]).arg(&dir).output().expect("init runs");
    assert!(!again.status.success(), "a second init must refuse to overwrite");
    // A broken manifest is refused before anything is written.
    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "name = ").expect("write");
    let other = tmp.path().join("other");
    let out = Command::new(BIN)
        .args(["init", "--data-dir"])
        .arg(&other)
        .arg("--manifest")
        .arg(&bad)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("manifest"), "says what is wrong");
    assert!(!other.exists(), "nothing is left behind");

    let file = tmp.path().join("removed.bin");
    std::fs::write(&file, b"content a platform removed").expect("write");
    let hashes = Command::new(BIN).arg("hash").arg(&file).output().expect("hash runs");
    let hashes = String::from_utf8_lossy(&hashes.stdout).into_owned();
    let sha256 = hashes.lines().find(|l| l.starts_with("sha256:")).expect("sha256 line").to_owned();

    let node = run(&dir);
    let written = cli(
        &node.rpc,
        &admin,
        &["submit", "--json", "--hash", &sha256, "--category", "drugs", "--link", "https://example.com/p/1"],
    );
    let id = serde_json::from_str::<serde_json::Value>(&written).expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert!(cli(&node.rpc, &admin, &["entries"]).contains(&id));
    let matched = cli(
        &node.rpc,
        &admin,
        &["match"].iter().copied().chain([file.to_str().expect("utf8 path")]).collect::<Vec<_>>(),
    );
    assert!(matched.contains(&id), "matching the file finds the entry: {matched}");
    drop(node);

    let node = run(&dir);
    let shown = cli(&node.rpc, &admin, &["show", &id]);
    assert!(shown.contains(&sha256), "entry survives a restart: {shown}");
}

#[test]
fn every_verb_has_help() {
    for verb in
        ["init", "run", "status", "submit", "vote", "retract", "entries", "show", "match", "hash", "records"]
    {
        let out = Command::new(BIN).args([verb, "--help"]).output().expect("runs");
        assert!(out.status.success(), "{verb} --help");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage"), "{verb} --help prints usage");
    }
}
