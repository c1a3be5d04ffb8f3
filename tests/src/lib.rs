//! The hashmesh test harness: [`TestNet`] starts n member nodes of one federation in this
//! process, each with a temp data dir, a seeded key and an RPC on a free loopback port, and
//! offers an HTTP client and condition waits with timeouts. Scenarios live in
//! `tests/scenarios/`.

pub mod exposition;
pub mod load;
pub mod receiver;
pub mod rogue;
pub mod rogue_upstream;

use std::time::Duration;

use anyhow::{Context, bail};
use ed25519_dalek::SigningKey;
use hashmesh_node::RunningNode;
use hashmesh_node::cli::init::{InitOptions, ManifestSource, init};
use hashmesh_node::config::Config;
use hashmesh_node::net::PeerView;
use hashmesh_protocol::{Manifest, MemberId, MemberInfo, PolicyParams};
use libp2p::PeerId;
use serde_json::Value;

/// How long any wait in a test may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(30);

/// One member node.
pub struct TestNode {
    /// Its data dir.
    pub dir: tempfile::TempDir,
    /// The running node, `None` while stopped.
    pub node: Option<RunningNode>,
    /// Member name in the manifest.
    pub name: String,
    /// Member id.
    pub member: MemberId,
    /// RPC tokens by role.
    pub admin: String,
    /// Submitter token.
    pub submitter: String,
    /// Matcher token.
    pub matcher: String,
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// JSON body (`Null` if not JSON).
    pub body: Value,
    /// The body as text.
    pub text: String,
}

impl Reply {
    /// The `error` message of an error reply.
    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }
}

impl TestNode {
    /// The node's handle; panics if stopped (a test bug).
    pub fn handle(&self) -> &hashmesh_node::NodeHandle {
        self.node.as_ref().expect("node is running").handle()
    }

    /// `http://addr` of the RPC.
    pub fn rpc(&self) -> String {
        format!("http://{}", self.node.as_ref().expect("node is running").rpc_addr())
    }

    /// The node's libp2p peer id.
    pub fn peer_id(&self) -> PeerId {
        self.handle().net().peer_id()
    }

    /// Its status.
    pub async fn status(&self) -> hashmesh_node::api::StatusView {
        self.handle().status().await.expect("status")
    }

    /// Starts (or restarts) the node from its data dir.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        let config = Config::load(self.dir.path())?;
        self.node = Some(RunningNode::start(self.dir.path(), config).await?);
        Ok(())
    }

    /// Changes the (stopped or running) node's config file; it takes effect at the next start.
    pub fn configure(&self, edit: impl FnOnce(&mut Config)) -> anyhow::Result<()> {
        let mut config = Config::load(self.dir.path())?;
        edit(&mut config);
        config.check().map_err(anyhow::Error::msg)?;
        std::fs::write(self.dir.path().join(hashmesh_node::config::CONFIG_FILE), config.to_toml())?;
        Ok(())
    }

    /// Stops the node, keeping its data.
    pub async fn stop(&mut self) {
        if let Some(node) = self.node.take() {
            node.shutdown().await;
        }
    }

    /// A stopped copy of this (stopped) node: its data dir copied as it is now — a backup, or
    /// an operator's mistaken second node of the same member.
    pub fn copy(&self) -> anyhow::Result<TestNode> {
        anyhow::ensure!(self.node.is_none(), "stop {} before copying its data dir", self.name);
        let dir = tempfile::tempdir()?;
        copy_dir(self.dir.path(), dir.path())?;
        // A copy made as an operator would (`cp -a`): as private as the original.
        std::fs::set_permissions(dir.path(), std::fs::metadata(self.dir.path())?.permissions())?;
        Ok(TestNode {
            dir,
            node: None,
            name: format!("{}-copy", self.name),
            member: self.member,
            admin: self.admin.clone(),
            submitter: self.submitter.clone(),
            matcher: self.matcher.clone(),
        })
    }

    /// Replaces this (stopped) node's data dir with `from`'s: a restore from backup.
    pub fn restore_from(&mut self, from: TestNode) -> anyhow::Result<()> {
        anyhow::ensure!(self.node.is_none() && from.node.is_none(), "stop both nodes first");
        self.dir = from.dir;
        Ok(())
    }

    /// The node's `/metrics`, read with its matcher token and parsed strictly (a test fails
    /// on any line a scraper would refuse).
    pub async fn scrape(&self) -> exposition::Exposition {
        let text = self.metrics().await;
        exposition::parse(&text)
            .unwrap_or_else(|e| panic!("{}'s /metrics does not parse: {e:#}\n{text}", self.name))
    }

    /// The node's `/metrics` text, read with its matcher token.
    pub async fn metrics(&self) -> String {
        let url = format!("{}/metrics", self.rpc());
        let token = self.matcher.clone();
        tokio::task::spawn_blocking(move || {
            ureq::get(&url)
                .header("Authorization", format!("Bearer {token}"))
                .call()
                .expect("metrics")
                .into_body()
                .read_to_string()
                .expect("text")
        })
        .await
        .expect("client")
    }

    /// Submits an entry through the RPC; the raw reply.
    pub async fn try_submit(&self, fingerprint: &str) -> Reply {
        let body = serde_json::json!({ "fingerprints": [fingerprint], "category": "csam" });
        self.call("POST", "/v1/entries", Some(&self.submitter), Some(body)).await
    }

    /// Votes on an entry through the RPC (a dispute with a reason, which it needs); the raw
    /// reply.
    pub async fn vote(&self, entry: &str, verdict: &str) -> Reply {
        let reason = (verdict == "dispute").then_some("disputed in a test");
        let body = serde_json::json!({ "verdict": verdict, "reason": reason });
        self.call("POST", &format!("/v1/entries/{entry}/votes"), Some(&self.admin), Some(body)).await
    }

    /// An entry's status as this node derives it.
    pub fn entry_status(&self, entry: &str) -> Option<hashmesh_protocol::Status> {
        self.handle().entry(&entry.parse().ok()?).ok().map(|e| e.status)
    }

    /// Sends a request: `body` as JSON if given.
    pub async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        let raw = body.map(|b| b.to_string());
        self.call_raw(method, path, token, raw.map(String::into_bytes), Some("application/json")).await
    }

    /// Sends a request with a raw body.
    pub async fn call_raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
        content_type: Option<&str>,
    ) -> Reply {
        let url = format!("{}{path}", self.rpc());
        let (method, token, content_type) =
            (method.to_owned(), token.map(str::to_owned), content_type.map(str::to_owned));
        tokio::task::spawn_blocking(move || {
            let agent: ureq::Agent =
                ureq::Agent::config_builder().http_status_as_error(false).build().new_agent();
            let mut req = ureq::http::Request::builder().method(method.as_str()).uri(&url);
            if let Some(t) = token {
                req = req.header("Authorization", format!("Bearer {t}"));
            }
            if let Some(ct) = content_type.filter(|_| body.is_some()) {
                req = req.header("Content-Type", ct);
            }
            let req = req.body(body.unwrap_or_default()).expect("valid request");
            let mut resp = agent.run(req).expect("RPC reachable");
            let status = resp.status().as_u16();
            let text = resp.body_mut().read_to_string().unwrap_or_default();
            Reply { status, body: serde_json::from_str(&text).unwrap_or(Value::Null), text }
        })
        .await
        .expect("client task")
    }

    /// Submits an entry through the RPC and returns its id.
    pub async fn submit(&self, fingerprints: &[&str], category: &str) -> String {
        let reply = self
            .call(
                "POST",
                "/v1/entries",
                Some(&self.submitter),
                Some(serde_json::json!({ "fingerprints": fingerprints, "category": category })),
            )
            .await;
        assert_eq!(reply.status, 201, "submit failed: {reply:?}");
        reply.body["id"].as_str().expect("id").to_owned()
    }
}

/// A federation of n nodes in this process.
pub struct TestNet {
    /// The nodes, in manifest order.
    pub nodes: Vec<TestNode>,
    /// The shared manifest.
    pub manifest: Manifest,
}

/// A deterministic key for test member `i`.
pub fn seeded_key(i: usize) -> SigningKey {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
    seed[8] = 0x42;
    SigningKey::from_bytes(&seed)
}

impl TestNet {
    /// Creates and starts `n` member nodes of one federation.
    pub async fn new(n: usize) -> anyhow::Result<Self> {
        Self::create(0..n, &[], Vec::new()).await
    }

    /// Like [`TestNet::new`], one member node for each of `names` (member names may hold any
    /// text: quotes, backslashes, newlines).
    pub async fn named(names: &[&str]) -> anyhow::Result<Self> {
        Self::create(0..names.len(), names, Vec::new()).await
    }

    /// A one-node "federation" of a non-member (key index 1000) whose own manifest also lists
    /// `trusted`, so it will try to connect to them.
    pub async fn outsider(trusted: Vec<MemberInfo>) -> anyhow::Result<Self> {
        Self::create(1000..1001, &[], trusted).await
    }

    async fn create(
        key_indexes: std::ops::Range<usize>,
        names: &[&str],
        extra: Vec<MemberInfo>,
    ) -> anyhow::Result<Self> {
        let keys: Vec<SigningKey> = key_indexes.clone().map(seeded_key).collect();
        let mut manifest = Manifest {
            name: "testnet".into(),
            epoch: 1,
            policy: PolicyParams::default(),
            members: keys
                .iter()
                .zip(key_indexes)
                .enumerate()
                .map(|(at, (k, i))| MemberInfo {
                    name: names.get(at).map_or_else(|| format!("node{i}"), |n| (*n).to_owned()),
                    key: MemberId::from_key(&k.verifying_key()),
                    peers: vec![hashmesh_node::identity::peer_id(k)],
                    addresses: vec![],
                })
                .collect(),
            retired: Vec::new(),
        };
        let outsider = !extra.is_empty();
        manifest.members.extend(extra);
        let mut nodes = Vec::new();
        for (key, info) in keys.into_iter().zip(manifest.members.clone()) {
            nodes.push(start_node(key, info.name, &manifest, outsider).await?);
        }
        let net = Self { nodes, manifest };
        net.introduce_all().await?;
        net.wait_connected().await?;
        net.wait_writable().await?;
        Ok(net)
    }

    /// Starts the node of a candidate member (key index `i`) with the federation's genesis
    /// manifest, which does not list it: it is let in once an epoch adds it. Returns its
    /// index in `nodes` and the member info to propose.
    pub async fn candidate(&mut self, i: usize) -> anyhow::Result<(usize, MemberInfo)> {
        let key = seeded_key(i);
        let info = MemberInfo {
            name: format!("node{i}"),
            key: MemberId::from_key(&key.verifying_key()),
            peers: vec![hashmesh_node::identity::peer_id(&key)],
            addresses: vec![],
        };
        let node = start_node(key, info.name.clone(), &self.manifest, false).await?;
        self.nodes.push(node);
        self.introduce_all().await?;
        Ok((self.nodes.len() - 1, info))
    }

    /// Tells every running node where every other one listens (ports are chosen by the OS).
    pub async fn introduce_all(&self) -> anyhow::Result<()> {
        let mut book = Vec::new();
        for node in self.nodes.iter().filter(|n| n.node.is_some()) {
            let net = node.handle().net();
            let deadline = tokio::time::Instant::now() + WAIT;
            let addrs = loop {
                let addrs = net.listen_addrs().await;
                if !addrs.is_empty() {
                    break addrs;
                }
                if tokio::time::Instant::now() > deadline {
                    bail!("{} never reported a listen address", node.name);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            };
            book.push((net.peer_id(), addrs));
        }
        for node in self.nodes.iter().filter(|n| n.node.is_some()) {
            let net = node.handle().net();
            for (peer, addrs) in &book {
                for addr in addrs {
                    net.add_address(*peer, addr.clone()).await;
                }
            }
        }
        Ok(())
    }

    /// Waits until every running node is connected to every other running node.
    pub async fn wait_connected(&self) -> anyhow::Result<()> {
        let running: Vec<&TestNode> = self.nodes.iter().filter(|n| n.node.is_some()).collect();
        for node in &running {
            let want: Vec<String> =
                running.iter().filter(|o| o.member != node.member).map(|o| o.peer_id().to_string()).collect();
            wait_until(&format!("{} connected to all", node.name), || async {
                let peers = node.handle().peers().await;
                want.iter()
                    .all(|w| peers.iter().any(|p: &PeerView| &p.peer_id == w && p.connected_since.is_some()))
            })
            .await?;
        }
        Ok(())
    }

    /// Waits until every running node accepts own writes (its own log is confirmed by a peer).
    pub async fn wait_writable(&self) -> anyhow::Result<()> {
        for node in self.nodes.iter().filter(|n| n.node.is_some()) {
            wait_until(&format!("{} to accept writes", node.name), || async {
                node.handle().own_log().may_author()
            })
            .await?;
        }
        Ok(())
    }

    /// Cuts the link between nodes `a` and `b`, both ways, and waits until both sides have
    /// seen the connection close, so nothing sent afterwards can cross.
    pub async fn cut(&self, a: usize, b: usize) {
        let (pa, pb) = (self.nodes[a].peer_id(), self.nodes[b].peer_id());
        self.nodes[a].handle().net().cut(pb).await;
        self.nodes[b].handle().net().cut(pa).await;
        for (node, other) in [(&self.nodes[a], pb.to_string()), (&self.nodes[b], pa.to_string())] {
            wait_until(&format!("{} to drop {other}", node.name), || async {
                node.handle().peers().await.iter().all(|p| p.peer_id != other || p.connected_since.is_none())
            })
            .await
            .expect("link cut");
        }
    }

    /// Restores the link between nodes `a` and `b`.
    pub async fn restore(&self, a: usize, b: usize) {
        let (pa, pb) = (self.nodes[a].peer_id(), self.nodes[b].peer_id());
        self.nodes[a].handle().net().restore(pb).await;
        self.nodes[b].handle().net().restore(pa).await;
    }

    /// Waits until the given nodes hold identical replicas (equal digests) of `records` records.
    pub async fn wait_converged(&self, which: &[usize], records: usize) -> anyhow::Result<()> {
        wait_until(&format!("nodes {which:?} to converge on {records} records"), || async {
            let mut digests = Vec::new();
            for i in which {
                let s = self.nodes[*i].status().await;
                if s.records != records {
                    return false;
                }
                digests.push(s.digest);
            }
            digests.windows(2).all(|w| w[0] == w[1])
        })
        .await
    }

    /// Starts a follower of node `of` with that node's matcher token.
    pub async fn follower(&self, of: usize) -> anyhow::Result<TestNode> {
        start_follower(&self.nodes[of].rpc(), &self.nodes[of].matcher, &self.manifest).await
    }

    /// Stops every node.
    pub async fn shutdown(mut self) {
        for node in &mut self.nodes {
            node.stop().await;
        }
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for item in std::fs::read_dir(from)? {
        let item = item?;
        let target = to.join(item.file_name());
        if item.file_type()?.is_dir() {
            copy_dir(&item.path(), &target)?;
        } else {
            std::fs::copy(item.path(), &target)?;
        }
    }
    Ok(())
}

/// Waits until `check` returns true, polling; fails after [`WAIT`].
pub async fn wait_until<F, Fut>(what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if check().await {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("timed out after {WAIT:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Initialises a data dir for `key` with `manifest` and starts the node.
async fn start_node(
    key: SigningKey,
    name: String,
    manifest: &Manifest,
    outsider: bool,
) -> anyhow::Result<TestNode> {
    let mut config = test_config();
    config.p2p.listen = vec!["/ip4/127.0.0.1/tcp/0".into()];
    // A stalled sync request fails this soon, so scenarios with a stalling peer end.
    config.p2p.request_timeout = Duration::from_secs(5);
    // Refused dials (a candidate before it is let in) are retried soon.
    config.p2p.max_redial_backoff = Duration::from_secs(1);
    if outsider {
        // The outsider's "peers" never answer it: let it write on its own at once.
        config.p2p.own_log_timeout = Duration::ZERO;
        config.p2p.start_unconfirmed = true;
    }
    let mut node = prepare(key, name, manifest, config)?;
    node.start().await?;
    Ok(node)
}

/// Starts a follower (`run --follow`) of the member node at `rpc`, pulling with `token`: its
/// data dir made from the federation's `manifest` with a key of its own, which never signs.
pub async fn start_follower(rpc: &str, token: &str, manifest: &Manifest) -> anyhow::Result<TestNode> {
    let mut config = test_config();
    config.follow.node = rpc.to_owned();
    config.follow.token = token.to_owned();
    let key = seeded_key(10_000 + rand::random::<u16>() as usize);
    let mut node = prepare(key, "follower".into(), manifest, config)?;
    node.start().await?;
    Ok(node)
}

fn test_config() -> Config {
    let mut config = Config::default();
    config.rpc.listen = "127.0.0.1:0".parse().expect("an address");
    config.rpc.max_body_bytes = 1024 * 1024;
    config
}

/// A stopped node's data dir, made by `init` as an operator would.
fn prepare(key: SigningKey, name: String, manifest: &Manifest, config: Config) -> anyhow::Result<TestNode> {
    let dir = tempfile::tempdir()?;
    let done = init(
        dir.path(),
        InitOptions { manifest: ManifestSource::Given(manifest.clone()), key: Some(key), config },
    )?;
    let token = |name: &str| done.tokens.iter().find(|t| t.name == name).map(|t| t.token.clone());
    Ok(TestNode {
        name,
        member: done.member,
        admin: token("admin").context("admin token")?,
        submitter: token("submitter").context("submitter token")?,
        matcher: token("matcher").context("matcher token")?,
        dir,
        node: None,
    })
}

/// A benchmark's command-line value after `name` (`--rows 1000`), if given.
pub fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

/// [`arg`] parsed, or `default` when absent or unreadable.
pub fn arg_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    arg(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Restarts stopped-or-running node `i` with `key` (its member's rotated key) on the same data
/// dir, and waits until it is connected and writable again.
pub async fn restart_with_key(net: &mut TestNet, i: usize, key: &SigningKey) -> anyhow::Result<()> {
    net.nodes[i].stop().await;
    let key_file = net.nodes[i].dir.path().join("member.key");
    std::fs::remove_file(&key_file)?;
    hashmesh_node::identity::write(&key_file, key)?;
    net.nodes[i].start().await?;
    net.nodes[i].member = MemberId::from_key(&key.verifying_key());
    net.introduce_all().await?;
    net.wait_connected().await?;
    net.wait_writable().await
}

/// A test image from `node/tests/fixtures/pdq/`.
pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/../node/tests/fixtures/pdq/{name}", env!("CARGO_MANIFEST_DIR")))
        .expect("fixture")
}

/// `img` encoded as PNG.
pub fn png(img: &image::DynamicImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).expect("encode png");
    out.into_inner()
}

/// The committed vPDQ test videos (`tests/video/make-videos.sh` made them): `None`, with the
/// reason printed, when FFmpeg is not installed and `HASHMESH_REQUIRE_FFMPEG` is unset
/// (`.ci/run` installs FFmpeg and sets it, so CI never skips them).
pub fn test_videos() -> Option<&'static std::path::Path> {
    static INSTALLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let installed = *INSTALLED.get_or_init(|| {
        let ffmpeg = std::process::Command::new("ffmpeg").arg("-version").output();
        let installed = ffmpeg.is_ok_and(|o| o.status.success());
        if !installed {
            assert!(
                std::env::var_os("HASHMESH_REQUIRE_FFMPEG").is_none(),
                "HASHMESH_REQUIRE_FFMPEG is set but ffmpeg is not installed"
            );
            eprintln!("skipping: ffmpeg is not installed (bash tests/video/install-ffmpeg.sh)");
        }
        installed
    });
    installed.then(|| {
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../node/tests/fixtures/vpdq/videos"))
    })
}
