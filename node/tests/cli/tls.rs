//! HTTPS on the RPC: a node serves TLS from its configured certificate and key, the CLI
//! speaks https trusting a CA file, and plain HTTP is refused off loopback unless asked for.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::BIN;

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls").join(name)
}

/// Starts `run` with `args` and `env`; the child and the RPC URL it printed, or the child
/// and its stderr if it exited instead.
fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (Child, Result<String, String>) {
    let mut child = Command::new(BIN)
        .args(["run", "--data-dir"])
        .arg(dir)
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    let stdout = child.stdout.take().expect("stdout");
    let url = BufReader::new(stdout).lines().map_while(Result::ok).find_map(|l| {
        l.split("RPC on ").nth(1).map(|r| r.split_whitespace().next().unwrap_or("").to_owned())
    });
    match url {
        Some(url) => (child, Ok(url)),
        None => {
            let mut said = String::new();
            if let Some(mut err) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut err, &mut said);
            }
            (child, Err(said))
        }
    }
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn the_rpc_serves_https_and_the_cli_trusts_a_ca_file() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("node");
    let tokens = super::init_node(&dir);
    let admin = tokens["tokens"]["admin"].as_str().expect("admin token").to_owned();
    std::fs::copy(fixture("node.pem"), dir.join("node.pem")).expect("cert");
    std::fs::copy(fixture("node.key"), dir.join("node.key")).expect("key");
    std::fs::set_permissions(dir.join("node.key"), std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let tls = [("HASHMESH_RPC_TLS_CERT", "node.pem"), ("HASHMESH_RPC_TLS_KEY", "node.key")];
    let (child, url) = start(&dir, &["--rpc-listen", "127.0.0.1:0"], &tls);
    let url = url.expect("the node starts");
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");

    let ca = fixture("ca.pem");
    let cli = |extra: &[&str]| {
        Command::new(BIN)
            .args(["--rpc", &url, "--token", &admin])
            .args(extra)
            .args(["--json", "status"])
            .env_remove("HASHMESH_CA_FILE")
            .output()
            .expect("cli runs")
    };
    let out = cli(&["--ca-file", ca.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"digest\""));
    let out = cli(&[]);
    assert_eq!(out.status.code(), Some(1), "an unknown issuer is refused");
    assert!(
        String::from_utf8_lossy(&out.stderr).to_lowercase().contains("certificate"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plain = url.replacen("https://", "http://", 1);
    let out =
        Command::new(BIN).args(["--rpc", &plain, "--token", &admin, "status"]).output().expect("cli runs");
    assert!(!out.status.success(), "plain HTTP to the TLS port gets no answer");
    stop(child);
}

#[test]
fn plain_http_off_loopback_is_refused_unless_asked_for() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("node");
    super::init_node(&dir);
    let (child, refused) = start(&dir, &["--rpc-listen", "0.0.0.0:0"], &[]);
    let said = refused.expect_err("refused");
    assert!(said.contains("not a loopback address") && said.contains("--insecure-rpc"), "{said}");
    stop(child);
    let (child, url) = start(&dir, &["--rpc-listen", "0.0.0.0:0", "--insecure-rpc"], &[]);
    assert!(url.expect("starts when told").starts_with("http://0.0.0.0:"));
    stop(child);
}
