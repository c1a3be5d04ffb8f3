//! The hashmesh test harness: [`TestNet`] starts n member nodes of one federation in this
//! process, each with a temp data dir, a seeded key and an RPC on a free loopback port, and
//! offers an HTTP client and condition waits with timeouts. Scenarios live in
//! `tests/scenarios/`.

use std::time::Duration;

use anyhow::{Context, bail};
use ed25519_dalek::SigningKey;
use hashmesh_node::RunningNode;
use hashmesh_node::cli::init::{InitOptions, ManifestSource, init};
use hashmesh_node::config::Config;
use hashmesh_protocol::{Manifest, MemberId, MemberInfo, PolicyParams};
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

    /// Starts (or restarts) the node from its data dir.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        let config = Config::load(self.dir.path())?;
        self.node = Some(RunningNode::start(self.dir.path(), config).await?);
        Ok(())
    }

    /// Stops the node, keeping its data.
    pub async fn stop(&mut self) {
        if let Some(node) = self.node.take() {
            node.shutdown().await;
        }
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
            Reply { status, body: serde_json::from_str(&text).unwrap_or(Value::Null) }
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
        let keys: Vec<SigningKey> = (0..n).map(seeded_key).collect();
        let manifest = Manifest {
            name: "testnet".into(),
            epoch: 1,
            policy: PolicyParams::default(),
            members: keys
                .iter()
                .enumerate()
                .map(|(i, k)| MemberInfo {
                    name: format!("node{i}"),
                    key: MemberId::from_key(&k.verifying_key()),
                    peers: vec![hashmesh_node::identity::peer_id(k)],
                    addresses: vec![],
                })
                .collect(),
        };
        let mut nodes = Vec::new();
        for (i, key) in keys.into_iter().enumerate() {
            let dir = tempfile::tempdir()?;
            let mut config = Config::default();
            config.rpc.listen = "127.0.0.1:0".parse()?;
            config.rpc.max_body_bytes = 1024 * 1024;
            config.p2p.listen = vec!["/ip4/127.0.0.1/tcp/0".into()];
            let done = init(
                dir.path(),
                InitOptions { manifest: ManifestSource::Given(manifest.clone()), key: Some(key), config },
            )?;
            let token = |name: &str| done.tokens.iter().find(|t| t.name == name).map(|t| t.token.clone());
            let mut node = TestNode {
                name: format!("node{i}"),
                member: done.member,
                admin: token("admin").context("admin token")?,
                submitter: token("submitter").context("submitter token")?,
                matcher: token("matcher").context("matcher token")?,
                dir,
                node: None,
            };
            node.start().await?;
            nodes.push(node);
        }
        Ok(Self { nodes, manifest })
    }

    /// Stops every node.
    pub async fn shutdown(mut self) {
        for node in &mut self.nodes {
            node.stop().await;
        }
    }
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
