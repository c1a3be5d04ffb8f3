//! What an operator wires the binary into: log collectors and shells.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use super::BIN;

/// `--log-format json` (or `HASHMESH_LOG_FORMAT=json`) writes one JSON object per log line,
/// with the event's fields at the top level, for a log collector to parse.
#[test]
fn run_logs_one_json_object_per_line_when_asked() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for (flag, env) in [(Some("json"), None), (None, Some("json"))] {
        let dir = tmp.path().join(format!("node-{}", flag.is_some()));
        super::init_node(&dir);
        let mut command = Command::new(BIN);
        command.args(["run", "--rpc-listen", "127.0.0.1:0", "--data-dir"]).arg(&dir);
        if let Some(format) = flag {
            command.args(["--log-format", format]);
        }
        if let Some(format) = env {
            command.env("HASHMESH_LOG_FORMAT", format);
        }
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .env_remove("HASHMESH_LOG")
            .spawn()
            .expect("runs");
        let stderr = child.stderr.take().expect("stderr");
        // Reading up to the line that says the RPC listens is the wait.
        let mut lines = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let done = line.contains("RPC listening");
            lines.push(line);
            if done {
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(lines.last().is_some_and(|l| l.contains("RPC listening")), "{lines:?}");
        for line in &lines {
            let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            assert!(v["level"].is_string() && v["timestamp"].is_string(), "{line}");
        }
        let rpc: serde_json::Value = serde_json::from_str(lines.last().expect("a line")).expect("json");
        assert_eq!(rpc["message"], "RPC listening");
        assert!(rpc["rpc_addr"].as_str().is_some_and(|a| a.starts_with("127.0.0.1:")), "{rpc}");
    }
}

/// Two consecutive free ports on loopback (devnet numbers its nodes' ports from a base).
fn free_pair() -> u16 {
    for _ in 0..100 {
        let first = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = first.local_addr().expect("addr").port();
        if port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
    panic!("no two consecutive free ports");
}

/// A newcomer sees the devnet's banner (addresses, tokens) below the start-up log lines, not
/// scrolled away by them: it waits until the nodes have connected and confirmed their logs.
#[test]
fn devnet_prints_its_banner_after_the_start_up_logs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("out.txt");
    let file = std::fs::File::create(&out).expect("create");
    let (rpc, p2p) = (free_pair(), free_pair());
    let mut child = Command::new(BIN)
        .args(["devnet", "--nodes", "2", "--rpc-port", &rpc.to_string(), "--p2p-port", &p2p.to_string()])
        .arg("--dir")
        .arg(tmp.path().join("devnet"))
        .env_remove("HASHMESH_LOG")
        .env_remove("HASHMESH_LOG_FORMAT")
        .stdout(file.try_clone().expect("clone"))
        .stderr(file)
        .spawn()
        .expect("runs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let text = loop {
        let text = std::fs::read_to_string(&out).expect("read");
        if text.contains("try it") || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    let banner = text.find("hashmesh devnet: 2 member nodes").unwrap_or_else(|| panic!("a banner: {text}"));
    assert_eq!(text.matches("own log confirmed").count(), 2, "{text}");
    let last_log = text.rfind("own log confirmed").expect("confirmed");
    assert!(last_log < banner, "the banner comes after the start-up logs: {text}");
    assert!(!text.contains("still connecting"), "{text}");
}

/// `run` starts only from a data dir `init` made, and only while its private files are
/// private: a missing data dir and a key others can read are refused with what to run;
/// `--fix-permissions` narrows the modes and starts.
#[test]
fn run_refuses_a_missing_data_dir_and_files_others_can_read() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("node");
    let refused = |extra: &[&str]| {
        let out = Command::new(BIN)
            .args(["run", "--rpc-listen", "127.0.0.1:0", "--data-dir"])
            .arg(&dir)
            .args(extra)
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(1));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let said = refused(&[]);
    assert!(said.contains("is not a node's data dir") && said.contains("hashmesh init --data-dir"), "{said}");
    assert!(!dir.exists(), "nothing was made");
    let said = refused(&["--follow", "http://127.0.0.1:9"]);
    assert!(said.contains("--follow http://127.0.0.1:9"), "{said}");

    super::init_node(&dir);
    let mode = |path: &std::path::Path| std::fs::metadata(path).expect("exists").permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700, "init makes the data dir private");
    for file in ["member.key", "config.toml", "rpc-tokens"] {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }
    let key = dir.join("member.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let said = refused(&[]);
    assert!(said.contains("mode 0644") && said.contains(&format!("chmod 600 {}", key.display())), "{said}");

    let mut child = Command::new(BIN)
        .args(["run", "--fix-permissions", "--rpc-listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("runs");
    let started = BufReader::new(child.stdout.take().expect("stdout"))
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("RPC on"));
    let _ = child.kill();
    let _ = child.wait();
    assert!(started, "started once the mode was fixed");
    assert_eq!(mode(&key), 0o600);
}

/// `completions` prints a script each shell loads, naming the verbs and their flags.
#[test]
fn completions_are_printed_for_each_shell() {
    for (shell, marker) in
        [("bash", "_hashmesh()"), ("zsh", "#compdef hashmesh"), ("fish", "complete -c hashmesh")]
    {
        let out = Command::new(BIN).args(["completions", shell]).output().expect("runs");
        assert!(out.status.success(), "{shell}: {}", String::from_utf8_lossy(&out.stderr));
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains(marker), "{shell}: {marker}");
        assert!(
            script.contains("manifest") && script.contains("log-format"),
            "{shell} knows the verbs and flags"
        );
    }
    let out = Command::new(BIN).args(["completions", "tcsh"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(2), "an unknown shell is a usage error");
}

/// `man` writes a page per command, from the same definitions as `--help`, or the main page
/// to stdout.
#[test]
fn manual_pages_are_written_for_every_command() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("man1");
    let out = Command::new(BIN).args(["man", "--out-dir"]).arg(&dir).output().expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let page = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    assert!(page("hashmesh.1").contains(".TH hashmesh 1"), "the main page");
    assert!(page("hashmesh-run.1").contains("follow\\-token"), "run's page has its flags");
    assert!(page("hashmesh-member-propose.1").contains(".TH hashmesh-member-propose"), "nested verbs too");
    let out = Command::new(BIN).arg("man").output().expect("runs");
    assert!(String::from_utf8_lossy(&out.stdout).contains(".SH SUBCOMMANDS"), "the main page to stdout");
}

/// `health` is what a container's HEALTHCHECK runs (the image has no shell or curl): exit 0
/// while the node answers its probe, 1 with the reason when it does not. No token needed.
#[test]
fn health_exits_0_while_the_node_answers_and_1_when_it_does_not() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("node");
    super::init_node(&dir);
    let node = super::run(&dir);
    // A single member is ready at once: it has no one to catch up with.
    for args in [&["health"][..], &["health", "--ready"]] {
        let out = Command::new(BIN)
            .args(args)
            .args(["--rpc", &node.rpc])
            .env_remove("HASHMESH_TOKEN")
            .output()
            .expect("runs");
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    drop(node);
    let out = Command::new(BIN).args(["health", "--rpc", "http://127.0.0.1:9"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(1), "a node that does not answer is unhealthy");
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the node at http://127.0.0.1:9"));
}
