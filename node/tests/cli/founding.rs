//! Founding a federation as two new members would, with nothing edited by hand: keygen on
//! each side, `manifest new` from what keygen printed, `init --key --manifest`, `run`.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::{BIN, run};

fn hashmesh(args: &[&str], dir: &Path) -> Output {
    Command::new(BIN).args(args).current_dir(dir).output().expect("hashmesh runs")
}

fn ok(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("--json prints JSON")
}

/// Two distinct ports nothing listens on right now (the OS picks them, both held at once so
/// they differ; they stay free for the test's while).
fn free_ports() -> (u16, u16) {
    let bind = || std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let (a, b) = (bind(), bind());
    (a.local_addr().expect("addr").port(), b.local_addr().expect("addr").port())
}

/// Runs the CLI against a node until `done` accepts its output, or fails after `timeout`.
fn poll(rpc: &str, token: &str, args: &[&str], timeout: Duration, done: impl Fn(&Output) -> bool) -> Output {
    let deadline = Instant::now() + timeout;
    loop {
        let out = super::hashmesh(rpc, token, args);
        if done(&out) {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "hashmesh {args:?} did not succeed within {timeout:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn two_founders_on_one_host_replicate_from_a_manifest_built_from_their_keygen_outputs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let at = tmp.path();
    // Each founder on its own machine: a key, and what to send to the federation.
    let alpha = ok(&hashmesh(&["keygen", "--json", "--out", "alpha.key"], at));
    let beta_out = hashmesh(&["keygen", "--json", "--out", "beta.key"], at);
    ok(&beta_out);
    std::fs::write(at.join("beta.json"), &beta_out.stdout).expect("save beta's keygen output");
    let (pa, pb) = free_ports();
    // One founder builds the manifest: alpha from the printed lines, beta from its JSON.
    let made = hashmesh(
        &[
            "manifest",
            "new",
            "--federation",
            "founders",
            "--member",
            &format!(
                "name=alpha,key={},peer={},address=/ip4/127.0.0.1/tcp/{pa}",
                alpha["member"].as_str().expect("member"),
                alpha["peer_id"].as_str().expect("peer id")
            ),
            "--member",
            &format!("name=beta,keygen=beta.json,address=/ip4/127.0.0.1/tcp/{pb}"),
            "--out",
            "federation.toml",
        ],
        at,
    );
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let checked = hashmesh(&["manifest", "check", "federation.toml"], at);
    assert!(checked.status.success(), "{}", String::from_utf8_lossy(&checked.stderr));
    // Writing it twice would let founders hold different manifests.
    let again = hashmesh(
        &[
            "manifest",
            "new",
            "--federation",
            "x",
            "--member",
            "name=a,keygen=beta.json",
            "--out",
            "federation.toml",
        ],
        at,
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("refusing to overwrite"));

    // Each member inits with its own key; the listen address comes from the manifest.
    let mut nodes = Vec::new();
    for (name, port) in [("alpha", pa), ("beta", pb)] {
        let key = format!("{name}.key");
        let init = ok(&hashmesh(
            &["init", "--json", "--data-dir", name, "--key", &key, "--manifest", "federation.toml"],
            at,
        ));
        assert_eq!(init["p2p_listen"], serde_json::json!([format!("/ip4/127.0.0.1/tcp/{port}")]), "{name}");
        let text = hashmesh(
            &["init", "--data-dir", &format!("{name}-text"), "--key", &key, "--manifest", "federation.toml"],
            at,
        );
        assert!(
            String::from_utf8_lossy(&text.stdout).contains(&format!(
                "p2p listen: /ip4/127.0.0.1/tcp/{port} (this member's address in the manifest)"
            )),
            "init says where it listens and why: {}",
            String::from_utf8_lossy(&text.stdout)
        );
        let admin = init["tokens"]["admin"].as_str().expect("admin token").to_owned();
        nodes.push((run(&at.join(name)), admin));
    }
    let [(a, a_token), (b, b_token)] = &nodes[..] else { unreachable!("two nodes") };

    // Own writes wait until a peer has confirmed alpha's log: that is the two connecting.
    let written = poll(
        &a.rpc,
        a_token,
        &["submit", "--json", "--hash", "md5:0123456789abcdef0123456789abcdef", "--category", "csam"],
        Duration::from_secs(60),
        |out| out.status.success(),
    );
    let id = serde_json::from_slice::<serde_json::Value>(&written.stdout).expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    poll(&b.rpc, b_token, &["entries"], Duration::from_secs(30), |out| {
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains(&id)
    });
}

#[test]
fn manifest_new_refuses_bad_members_with_the_member_and_the_reason() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let at = tmp.path();
    let k = |name: &str| {
        let v = ok(&hashmesh(&["keygen", "--json", "--out", &format!("{name}.key")], at));
        (v["member"].as_str().expect("member").to_owned(), v["peer_id"].as_str().expect("peer").to_owned())
    };
    let (ka, pa) = k("a");
    let (kb, _) = k("b");
    let a = format!("name=a,key={ka},address=/ip4/192.0.2.1/tcp/7700");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![a.clone(), format!("name=a,key={kb}")], "member name \"a\" appears twice"),
        (vec![a.clone(), format!("name=b,key={ka}")], "appears twice"),
        (vec![format!("name=b,key={}", &kb[..10])], "is not a member key"),
        (vec![format!("name=b,key={kb},peer={pa}")], "is not the one its key gives"),
        (vec![format!("name=b,key={kb},peer=12D3Koo")], "is not a libp2p peer id"),
        (vec![format!("name=b,key={kb},address=192.0.2.2:7700")], "is not a multiaddress"),
        (vec![format!("name=b,key={kb},address=/dns4/b.example/tcp/7700")], "IP addresses only"),
        (vec![a, format!("name=b,key={kb},address=/ip4/192.0.2.1/tcp/7700")], "given for both"),
        (vec!["name=b,keygen=missing.json".to_owned()], "is not the output of `hashmesh keygen --json`"),
        (vec![format!("name=b,key={kb},colour=red")], "unknown field \"colour\""),
    ];
    for (members, want) in cases {
        let mut args = vec!["manifest", "new", "--federation", "f"];
        for m in &members {
            args.extend(["--member", m]);
        }
        let out = hashmesh(&args, at);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{members:?} is refused");
        assert!(err.contains(want), "{members:?}: {want:?} in {err}");
    }
}
