//! The `hashmesh` binary as an operator uses it: init, run, submit, list, match, restart.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

mod founding;
mod lists;
mod operator;
mod scan;
mod tls;
mod video;

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

/// Runs the CLI against the node at `rpc` with `token`: its whole output, whatever the exit.
fn hashmesh(rpc: &str, token: &str, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env("HASHMESH_RPC", rpc)
        .env("HASHMESH_TOKEN", token)
        .output()
        .expect("cli runs")
}

fn cli(rpc: &str, token: &str, args: &[&str]) -> String {
    let out = hashmesh(rpc, token, args);
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

/// Every verb `hashmesh --help` lists, and every verb an operator needs, has its own help.
#[test]
fn every_verb_has_help() {
    let out = Command::new(BIN).arg("--help").output().expect("runs");
    assert!(out.status.success());
    let top = String::from_utf8_lossy(&out.stdout).into_owned();
    let listed: Vec<String> = top
        .split("Commands:")
        .nth(1)
        .expect("a Commands section")
        .lines()
        .skip(1) // the rest of the "Commands:" line
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .filter(|v| v != "help")
        .collect();
    let needed = [
        "init",
        "run",
        "keygen",
        "manifest",
        "devnet",
        "status",
        "peers",
        "submit",
        "vote",
        "retract",
        "entries",
        "show",
        "match",
        "hash",
        "records",
        "queue",
        "history",
        "export-proof",
        "verify",
        "member",
        "health",
    ];
    for verb in needed {
        assert!(listed.iter().any(|l| l == verb), "{verb} is listed in --help: {top}");
    }
    for verb in &listed {
        let out = Command::new(BIN).args([verb.as_str(), "--help"]).output().expect("runs");
        assert!(out.status.success(), "{verb} --help");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(&format!("Usage: hashmesh {verb}")), "{verb} --help prints its usage: {text}");
    }
}

/// `hash` prints the same digests as independent implementations (and the published test
/// vectors for "abc"), for a file long enough to be read in several pieces.
#[test]
fn hash_prints_the_digests_independent_implementations_compute() {
    use md5::Digest as _;
    let tmp = tempfile::tempdir().expect("tempdir");
    let abc = tmp.path().join("abc.txt");
    std::fs::write(&abc, b"abc").expect("write");
    let big = tmp.path().join("big.bin");
    let content: Vec<u8> = (0..3_000_017u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(&big, &content).expect("write");
    let lines = |file: &std::path::Path| -> Vec<String> {
        let out = Command::new(BIN).arg("hash").arg(file).output().expect("hash runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let mut lines: Vec<String> =
            String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect();
        lines.sort();
        lines
    };
    let mut want = vec![
        "blake3:6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85".to_owned(),
        "md5:900150983cd24fb0d6963f7d28e17f72".to_owned(),
        "sha1:a9993e364706816aba3e25717850c26c9cd0d89d".to_owned(),
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".to_owned(),
    ];
    want.sort();
    assert_eq!(lines(&abc), want, "the published vectors for \"abc\"");
    let mut want = vec![
        format!("blake3:{}", blake3::hash(&content).to_hex()),
        format!("md5:{}", hex::encode(md5::Md5::digest(&content))),
        format!("sha1:{}", hex::encode(sha1::Sha1::digest(&content))),
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(&content))),
    ];
    want.sort();
    assert_eq!(lines(&big), want);
}

fn init_node(dir: &std::path::Path) -> serde_json::Value {
    let out = Command::new(BIN).args(["init", "--json", "--data-dir"]).arg(dir).output().expect("init runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("init --json prints JSON")
}

/// Runs the CLI expecting it to fail: its exit code and stderr.
fn cli_fails(rpc: &str, token: Option<&str>, args: &[&str]) -> (Option<i32>, String) {
    let mut command = Command::new(BIN);
    command.args(args).env("HASHMESH_RPC", rpc).env_remove("HASHMESH_TOKEN");
    if let Some(token) = token {
        command.env("HASHMESH_TOKEN", token);
    }
    let out = command.output().expect("cli runs");
    assert!(!out.status.success(), "hashmesh {args:?} should fail");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// What an operator sees when a call is refused: exit code 1 and the node's reason, with what
/// to do; a usage error is clap's exit code 2 and names the problem.
#[test]
fn refused_calls_exit_1_with_the_reason_and_usage_errors_exit_2() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("node");
    let init = init_node(&dir);
    let token = |role: &str| init["tokens"][role].as_str().expect("token").to_owned();
    let node = run(&dir);
    let unknown_id = "ab".repeat(32);
    let cases: [(Option<String>, Vec<&str>, &str); 5] = [
        (None, vec!["status"], "missing `Authorization: Bearer <token>` header"),
        (Some("hm_wrong".into()), vec!["status"], "unknown token (HTTP 401)"),
        (
            Some(token("matcher")),
            vec!["retract", &unknown_id],
            "token \"matcher\" has role Matcher; this call needs Admin (HTTP 403)",
        ),
        (
            Some(token("submitter")),
            vec!["vote", &unknown_id, "confirm"],
            "token \"submitter\" has role Submitter; this call needs Admin (HTTP 403)",
        ),
        (Some(token("matcher")), vec!["show", &unknown_id], "(HTTP 404)"),
    ];
    for (token, args, want) in &cases {
        let (code, stderr) = cli_fails(&node.rpc, token.as_deref(), args);
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?} says {want:?}: {stderr}");
    }
    let (_, stderr) = cli_fails(&node.rpc, None, &["status"]);
    assert!(stderr.contains("set HASHMESH_TOKEN or pass --token"), "says what to do: {stderr}");
    let (_, stderr) = cli_fails(&node.rpc, Some(&token("matcher")), &["show", &unknown_id]);
    assert!(stderr.contains(&format!("no entry with id {unknown_id}")), "{stderr}");
    drop(node);
    // Nothing listens there.
    let (code, stderr) = cli_fails("http://127.0.0.1:9", Some("hm_x"), &["status"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("cannot reach the node at http://127.0.0.1:9"), "{stderr}");
    assert!(stderr.contains("set --rpc or HASHMESH_RPC"), "says what to do: {stderr}");
    // Usage errors: clap's code 2, naming what is wrong, before any call is made.
    for (args, want) in [
        (vec!["frobnicate"], "unrecognized subcommand 'frobnicate'"),
        (vec!["submit", "--hash", "md5:00112233445566778899aabbccddeeff"], "--category <CATEGORY>"),
        (vec!["submit", "--hash", "crc32:00", "--category", "csam"], "unknown fingerprint kind \"crc32\""),
        (vec!["show", "not-an-id"], "invalid value 'not-an-id'"),
        (vec!["vote", &unknown_id, "maybe"], "invalid value 'maybe'"),
    ] {
        let (code, stderr) = cli_fails("http://127.0.0.1:9", Some("hm_x"), &args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?} says {want:?}: {stderr}");
    }
}

/// Submits entries from `clients` threads until the node stops answering; returns the
/// (id, seq) of every write the node acknowledged.
fn write_until_killed(rpc: &str, token: &str, clients: usize, first: u64) -> Vec<(String, u64)> {
    let next = std::sync::atomic::AtomicU64::new(first);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..clients)
            .map(|_| {
                let next = &next;
                scope.spawn(move || {
                    let agent: ureq::Agent = ureq::Agent::config_builder()
                        .timeout_global(Some(std::time::Duration::from_secs(30)))
                        .build()
                        .new_agent();
                    let mut acked = Vec::new();
                    loop {
                        let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let body = format!(r#"{{"fingerprints":["md5:{n:032x}"],"category":"csam"}}"#);
                        let reply = agent
                            .post(format!("{rpc}/v1/entries"))
                            .header("Authorization", format!("Bearer {token}"))
                            .content_type("application/json")
                            .send(body.as_bytes());
                        // Killed mid-request: that write was never acknowledged.
                        let Ok(mut reply) = reply else { return acked };
                        let text = reply.body_mut().read_to_string().unwrap_or_default();
                        let v: serde_json::Value = serde_json::from_str(&text).expect("a 201 carries JSON");
                        acked.push((
                            v["id"].as_str().expect("id").to_owned(),
                            v["seq"].as_u64().expect("seq"),
                        ));
                    }
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("writer")).collect()
    })
}

#[test]
fn kill_9_during_concurrent_writes_loses_no_acknowledged_write() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("node");
    let out = Command::new(BIN).args(["init", "--json", "--data-dir"]).arg(&dir).output().expect("init runs");
    let init: serde_json::Value = serde_json::from_slice(&out.stdout).expect("init --json prints JSON");
    let token = init["tokens"]["submitter"].as_str().expect("token").to_owned();
    let mut acked: Vec<(String, u64)> = Vec::new();
    for cycle in 0..4u64 {
        let mut node = run(&dir);
        let rpc = node.rpc.clone();
        let killer = std::thread::spawn(move || {
            // Let the writers get going, then pull the plug without warning.
            std::thread::sleep(std::time::Duration::from_millis(400 + 150 * cycle));
            let _ = node.child.kill(); // SIGKILL
            let _ = node.child.wait();
        });
        let written = write_until_killed(&rpc, &token, 8, cycle * 1_000_000);
        killer.join().expect("killer");
        assert!(!written.is_empty(), "cycle {cycle} acknowledged writes before the kill");
        acked.extend(written);
    }
    let node = run(&dir);
    let agent = ureq::Agent::new_with_defaults();
    for (id, _) in &acked {
        let reply = agent
            .get(format!("{}/v1/entries/{id}", node.rpc))
            .header("Authorization", format!("Bearer {token}"))
            .call();
        assert!(reply.is_ok(), "acknowledged entry {id} survived the kills");
    }
    // No seq was acknowledged twice, and the log has no gap: its head is its record count.
    let mut seqs: Vec<u64> = acked.iter().map(|(_, s)| *s).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), acked.len(), "no seq reused");
    let status: serde_json::Value =
        serde_json::from_str(&cli(&node.rpc, &token, &["status", "--json"])).expect("json");
    let records = status["records"].as_u64().expect("records");
    let head = status["logs"][0]["seq"].as_u64().expect("head");
    assert_eq!(head, records, "a gap-free log");
    assert!(head >= *seqs.last().expect("some"), "every acknowledged seq is held");
    // And it goes on writing after its head.
    let next: serde_json::Value = serde_json::from_str(&cli(
        &node.rpc,
        &token,
        &["submit", "--json", "--hash", "md5:ffffffffffffffffffffffffffffffff", "--category", "csam"],
    ))
    .expect("json");
    assert_eq!(next["seq"].as_u64(), Some(head + 1));
}

/// `verify` checks a proof offline and says what is wrong with a bad one, with exit code 1.
#[test]
fn verify_refuses_a_file_that_is_not_a_proof_and_says_why() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("proof.json");
    std::fs::write(&file, br#"{"format": "something-else/1"}"#).expect("write");
    let out = Command::new(BIN).arg("verify").arg(&file).output().expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not a proof bundle"), "{err}");
    let missing = Command::new(BIN).arg("verify").arg(tmp.path().join("nope.json")).output().expect("runs");
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read"));
}
