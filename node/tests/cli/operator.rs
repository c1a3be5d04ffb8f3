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
