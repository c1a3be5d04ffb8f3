//! `hashmesh devnet`: a whole local federation in one process, for trying hashmesh out.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use ed25519_dalek::SigningKey;
use hashmesh_protocol::{Manifest, MemberId, MemberInfo, PolicyParams};

use super::DevnetArgs;
use super::init::{InitOptions, ManifestSource, init, read_token};
use crate::RunningNode;
use crate::config::{CONFIG_FILE, Config};

/// Creates the federation's data dirs on first use, then runs every node until Ctrl-C.
pub(super) async fn devnet(args: &DevnetArgs) -> anyhow::Result<()> {
    let n = args.nodes;
    anyhow::ensure!((1..=64).contains(&n), "--nodes must be between 1 and 64");
    for (flag, base) in [("--rpc-port", args.rpc_port), ("--p2p-port", args.p2p_port)] {
        anyhow::ensure!(
            base >= 1024 && usize::from(base) + n <= 65_536,
            "{flag} {base}: node ports {base}..{} must lie in 1024..=65535",
            usize::from(base) + n - 1
        );
    }
    let dirs: Vec<_> = (0..n).map(|i| args.dir.join(format!("node{i}"))).collect();
    if dirs[0].join(CONFIG_FILE).exists() {
        println!("reusing the devnet in {}", args.dir.display());
    } else {
        create(args, &dirs)?;
    }
    let mut nodes = Vec::new();
    for dir in &dirs {
        let config = Config::load(dir).with_context(|| {
            format!(
                "{} is not part of this devnet: delete {} to start afresh",
                dir.display(),
                args.dir.display()
            )
        })?;
        nodes.push(
            RunningNode::start(dir, config).await.with_context(|| format!("starting {}", dir.display()))?,
        );
    }
    // The banner is what a newcomer needs (addresses, tokens): print it once the start-up
    // log lines (connections, own logs confirmed) are out, so they do not scroll it away.
    let unsettled = settle(&nodes).await;
    println!("\nhashmesh devnet: {n} member nodes replicating on loopback (Ctrl-C to stop)\n");
    println!("{:<7} {:<24} admin token", "node", "RPC");
    for (i, (node, dir)) in nodes.iter().zip(&dirs).enumerate() {
        let token = read_token(dir, "admin").unwrap_or_default();
        println!("node{i:<3} http://{:<17} {token}", node.rpc_addr());
    }
    let first = nodes[0].rpc_addr();
    let last = nodes[n - 1].rpc_addr();
    println!("\ntry it (tokens are in {}/node*/rpc-tokens):", args.dir.display());
    println!(
        "  export HASHMESH_RPC=http://{first} HASHMESH_TOKEN=$(grep ^admin= {}/rpc-tokens | cut -d= -f2)",
        dirs[0].display()
    );
    println!("  hashmesh submit --hash md5:0123456789abcdef0123456789abcdef --category csam");
    println!(
        "  hashmesh --rpc http://{last} --token $(grep ^admin= {}/rpc-tokens | cut -d= -f2) entries",
        dirs[n - 1].display()
    );
    if !unsettled.is_empty() {
        println!("\nstill connecting after {SETTLE:?}: {} (see the log lines above)", unsettled.join(", "));
    }
    super::commands::shutdown_signal().await?;
    println!("stopping {n} nodes");
    for node in nodes {
        node.shutdown().await;
    }
    Ok(())
}

/// The longest wait for the nodes to connect before the banner is printed anyway.
const SETTLE: Duration = Duration::from_secs(10);

/// Waits until every node is connected to every other and accepts writes (its own log is
/// confirmed), at most [`SETTLE`]; returns the names of nodes that are not there yet.
async fn settle(nodes: &[RunningNode]) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let mut unsettled = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            let handle = node.handle();
            let connected = handle.peers().await.iter().filter(|p| p.connected_since.is_some()).count();
            if !handle.own_log().may_author() || connected + 1 < nodes.len() {
                unsettled.push(format!("node{i}"));
            }
        }
        if unsettled.is_empty() || tokio::time::Instant::now() >= deadline {
            // The last lines of a burst are written as the state changes; let them out first.
            tokio::time::sleep(Duration::from_millis(100)).await;
            return unsettled;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn create(args: &DevnetArgs, dirs: &[std::path::PathBuf]) -> anyhow::Result<()> {
    let keys: Vec<SigningKey> = dirs.iter().map(|_| SigningKey::from_bytes(&rand::random())).collect();
    let p2p = |i: usize| format!("/ip4/127.0.0.1/tcp/{}", usize::from(args.p2p_port) + i);
    let manifest = Manifest {
        name: "devnet".into(),
        epoch: 1,
        policy: PolicyParams::default(),
        retired: Vec::new(),
        members: keys
            .iter()
            .enumerate()
            .map(|(i, key)| MemberInfo {
                name: format!("node{i}"),
                key: MemberId::from_key(&key.verifying_key()),
                peers: vec![crate::identity::peer_id(key)],
                addresses: vec![p2p(i)],
            })
            .collect(),
    };
    for (i, (dir, key)) in dirs.iter().zip(keys).enumerate() {
        let mut config = Config::default();
        // In range: checked against the node count in `devnet`.
        config.rpc.listen = ([127, 0, 0, 1], args.rpc_port.saturating_add(i as u16)).into();
        config.p2p.listen = vec![p2p(i)];
        init(dir, InitOptions { manifest: ManifestSource::Given(manifest.clone()), key: Some(key), config })?;
    }
    write_manifest_copy(&args.dir, &manifest)
}

fn write_manifest_copy(dir: &Path, manifest: &Manifest) -> anyhow::Result<()> {
    std::fs::write(dir.join("manifest.toml"), manifest.to_toml()).context("cannot write the devnet manifest")
}
