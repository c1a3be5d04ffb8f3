//! Node configuration: one TOML file in the data dir, written by `hashmesh init`.
//!
//! Precedence, highest first: command-line flags, environment (`HASHMESH_*`: every key, see
//! [`env`] and `docs/configuration.md`), this file, then the defaults below. Relative paths are resolved against the data dir, so a data
//! dir can be moved or mounted elsewhere as a whole.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

mod env;

pub use env::{reference, variable};

/// Default RPC listen address: loopback only, so nothing is exposed until the operator says so.
pub const DEFAULT_RPC_LISTEN: &str = "127.0.0.1:7800";
/// Default libp2p listen address.
pub const DEFAULT_P2P_LISTEN: &str = "/ip4/0.0.0.0/tcp/7700";
/// The config file's name inside the data dir.
pub const CONFIG_FILE: &str = "config.toml";

/// The whole node configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The member's signing key file (0600), relative to the data dir.
    pub key_file: PathBuf,
    /// The federation manifest, relative to the data dir.
    pub manifest: PathBuf,
    /// The sled database folder, relative to the data dir.
    pub db: PathBuf,
    /// The HTTP RPC.
    pub rpc: RpcConfig,
    /// The libp2p network.
    pub p2p: P2pConfig,
    /// URLs told of matches and of later status changes of matched entries (written only
    /// when there are some, so `[[webhooks]]` blocks can be appended to a fresh config).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<WebhookConfig>,
    /// Publishing this member's daily counters.
    pub stats: StatsConfig,
    /// Following a member node instead of joining the federation's network.
    pub follow: FollowConfig,
    /// FFmpeg, which decodes videos for their vPDQ fingerprints.
    pub video: crate::hashers::video::VideoConfig,
}

/// A follower (`hashmesh run --follow`) keeps a read-only replica of its member's node,
/// pulled over that node's RPC, and serves matching and reads from it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FollowConfig {
    /// The member node's RPC URL; empty for a member node.
    pub node: String,
    /// A token of the member node's (the matcher role suffices).
    pub token: String,
    /// PEM CA certificates to trust for an https member node, relative to the data dir
    /// (empty: the public roots).
    pub ca_file: PathBuf,
}

/// One webhook: where events go, and the secret their HMAC is keyed with.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The receiver's URL (http or https).
    pub url: String,
    /// The HMAC-SHA256 key of the `X-Hashmesh-Signature` header (at least 16 characters).
    pub secret: String,
    /// Which events: `match`, `status_changed` (default both).
    #[serde(default = "all_events")]
    pub events: Vec<EventKind>,
    /// Longest wait between retries of a delivery the receiver did not take.
    #[serde(default = "default_retry_max", with = "humantime_serde")]
    pub retry_max: Duration,
}

/// A kind of webhook event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Content matched entries.
    Match,
    /// An entry this member matched before changed status.
    StatusChanged,
}

impl EventKind {
    /// The name in the config, in events' `type` and in the `X-Hashmesh-Event` header.
    pub fn name(self) -> &'static str {
        match self {
            Self::Match => "match",
            Self::StatusChanged => "status_changed",
        }
    }
}

fn all_events() -> Vec<EventKind> {
    vec![EventKind::Match, EventKind::StatusChanged]
}

fn default_retry_max() -> Duration {
    Duration::from_secs(300)
}

/// Daily counters of matches and removals, published as signed records.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StatsConfig {
    /// How often this member signs and publishes its counters of the day so far (the last
    /// record of a day is the one that counts).
    #[serde(with = "humantime_serde")]
    pub publish_interval: Duration,
}

impl Default for StatsConfig {
    fn default() -> Self {
        Self { publish_interval: Duration::from_secs(3600) }
    }
}

/// HTTP RPC settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RpcConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Largest request body, in bytes (file uploads for matching included).
    pub max_body_bytes: usize,
    /// Connections served at once; more are closed as they arrive, so a flood of connections
    /// cannot exhaust the node.
    pub max_connections: usize,
    /// How long a client may take to send a request's head: a slow-loris client is cut off.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// How long a JSON request may take from its head to its answer (uploads and lists are
    /// bounded by their size and stream instead).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// PEM certificate chain for HTTPS (with `tls_key`), relative to the data dir; empty
    /// for plain HTTP.
    pub tls_cert: PathBuf,
    /// PEM private key of `tls_cert`, relative to the data dir.
    pub tls_key: PathBuf,
    /// Serve plain HTTP on an address other than loopback (behind a trusted network or a
    /// TLS-terminating proxy): refused otherwise, since tokens would cross the network in clear.
    pub insecure: bool,
    /// Bearer tokens; only their blake3 hashes are stored.
    pub tokens: Vec<TokenConfig>,
}

/// One RPC bearer token.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Who holds it (recorded as `reviewer` on votes).
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// blake3 of the token, hex.
    pub blake3: String,
}

/// What a token may do. Each role includes the ones below it: admin ⊃ submitter ⊃ matcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Match content and read entries.
    Matcher,
    /// Also submit entries.
    Submitter,
    /// Also vote and retract.
    Admin,
}

/// libp2p settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct P2pConfig {
    /// Multiaddresses to listen on.
    pub listen: Vec<String>,
    /// How often to run catch-up sync with every connected peer.
    #[serde(with = "humantime_serde")]
    pub sync_interval: Duration,
    /// Longest wait between redials of a member that cannot be reached.
    #[serde(with = "humantime_serde")]
    pub max_redial_backoff: Duration,
    /// How long to wait for a peer's answer to a sync request before asking elsewhere: a
    /// peer that stalls holds back the logs it was asked for at most this long.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// At start, own writes wait until a peer has confirmed this node holds every record of
    /// its own log that the federation holds (a restored backup or a lost disk would
    /// otherwise reuse seqs and fork the member's log). How long to wait for any peer before
    /// the status says the own log is unconfirmed.
    #[serde(with = "humantime_serde")]
    pub own_log_timeout: Duration,
    /// Whether to accept own writes anyway once `own_log_timeout` has passed with no peer
    /// reachable. Off by default: writing then risks a fork if the data dir is not current.
    pub start_unconfirmed: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            key_file: "member.key".into(),
            manifest: "manifest.toml".into(),
            db: "db".into(),
            rpc: RpcConfig::default(),
            p2p: P2pConfig::default(),
            webhooks: Vec::new(),
            stats: StatsConfig::default(),
            follow: FollowConfig::default(),
            video: crate::hashers::video::VideoConfig::default(),
        }
    }
}

impl Default for RpcConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_RPC_LISTEN.parse().unwrap_or(SocketAddr::from(([127, 0, 0, 1], 7800))),
            max_body_bytes: 32 * 1024 * 1024,
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            tls_cert: PathBuf::new(),
            tls_key: PathBuf::new(),
            insecure: false,
            tokens: Vec::new(),
        }
    }
}

impl Default for P2pConfig {
    fn default() -> Self {
        Self {
            listen: vec![DEFAULT_P2P_LISTEN.into()],
            sync_interval: Duration::from_secs(30),
            max_redial_backoff: Duration::from_secs(60),
            request_timeout: Duration::from_secs(20),
            own_log_timeout: Duration::from_secs(60),
            start_unconfirmed: false,
        }
    }
}

/// The config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No config in the data dir.
    #[error("no {CONFIG_FILE} in {0}: run `hashmesh init --data-dir {0}` first")]
    Missing(PathBuf),
    /// Could not read it.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid.
    #[error("{path} is not a valid config: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// Reads `<data_dir>/config.toml`.
    pub fn load(data_dir: &Path) -> Result<Self, ConfigError> {
        let path = data_dir.join(CONFIG_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ConfigError::Missing(data_dir.to_owned()));
            }
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        let (config, used) = Self::parse(&text, |name| std::env::var(name).ok())
            .map_err(|message| ConfigError::Invalid { path, message })?;
        if !used.is_empty() {
            tracing::info!(variables = ?used, "config keys set from the environment");
        }
        Ok(config)
    }

    /// Reads a config's text, with each key's `HASHMESH_*` variable (as `var` gives them)
    /// winning over the file, and checks it; with the variables that were used. No I/O: the
    /// fuzz target `config_toml` calls it with any text.
    pub fn parse(text: &str, var: impl Fn(&str) -> Option<String>) -> Result<(Self, Vec<String>), String> {
        let mut table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
        let used = env::overlay(&mut table, var)?;
        let config: Self = table.try_into().map_err(|e: toml::de::Error| e.to_string())?;
        config.check()?;
        Ok((config, used))
    }

    /// Rejects values the node cannot run with.
    pub fn check(&self) -> Result<(), String> {
        if self.p2p.sync_interval < Duration::from_millis(100)
            || self.p2p.sync_interval > Duration::from_secs(86_400)
        {
            return Err("p2p.sync_interval must be between 100ms and 24h (e.g. \"30s\")".into());
        }
        if self.p2p.max_redial_backoff < Duration::from_secs(1)
            || self.p2p.max_redial_backoff > Duration::from_secs(3600)
        {
            return Err("p2p.max_redial_backoff must be between 1s and 1h (e.g. \"60s\")".into());
        }
        if self.rpc.max_body_bytes < 1024 {
            return Err("rpc.max_body_bytes must be at least 1024".into());
        }
        if self.rpc.tls_cert.as_os_str().is_empty() != self.rpc.tls_key.as_os_str().is_empty() {
            return Err("rpc.tls_cert and rpc.tls_key go together: set both for HTTPS, or neither".into());
        }
        if self.rpc.max_connections == 0 {
            return Err("rpc.max_connections must be at least 1".into());
        }
        for (key, value) in
            [("header_timeout", self.rpc.header_timeout), ("request_timeout", self.rpc.request_timeout)]
        {
            if value < Duration::from_millis(100) || value > Duration::from_secs(3600) {
                return Err(format!("rpc.{key} must be between 100ms and 1h (e.g. \"10s\")"));
            }
        }
        for hook in &self.webhooks {
            let url = url::Url::parse(&hook.url)
                .map_err(|e| format!("webhook url {:?} is not a URL: {e}", hook.url))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(format!("webhook url {:?} must be http or https", hook.url));
            }
            if hook.secret.len() < 16 {
                return Err(format!(
                    "the secret of webhook {:?} must be at least 16 characters (it keys the HMAC receivers check)",
                    hook.url
                ));
            }
            if hook.retry_max < Duration::from_millis(100) || hook.retry_max > Duration::from_secs(86_400) {
                return Err(format!("retry_max of webhook {:?} must be between 100ms and 24h", hook.url));
            }
        }
        if self.stats.publish_interval < Duration::from_millis(100)
            || self.stats.publish_interval > Duration::from_secs(86_400)
        {
            return Err("stats.publish_interval must be between 100ms and 24h (e.g. \"1h\")".into());
        }
        if !self.follow.node.is_empty() {
            let url = url::Url::parse(&self.follow.node).map_err(|e| {
                format!("follow.node {:?} is not a URL (e.g. http://member-node:7800): {e}", self.follow.node)
            })?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(format!("follow.node {:?} must be an http or https URL", self.follow.node));
            }
            if self.follow.token.trim().is_empty() {
                return Err("a follower needs a token of its member node: set follow.token, HASHMESH_FOLLOW_TOKEN or --follow-token (the matcher role suffices)".into());
            }
        }
        Ok(())
    }

    /// The TOML text.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

/// A new random bearer token and its config line.
pub fn new_token(name: &str, role: Role) -> (String, TokenConfig) {
    let secret: [u8; 24] = rand::random();
    let token = format!("hm_{}", hex::encode(secret));
    let config = TokenConfig { name: name.to_owned(), role, blake3: token_hash(&token) };
    (token, config)
}

/// The stored form of a token.
pub fn token_hash(token: &str) -> String {
    blake3::hash(token.as_bytes()).to_hex().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An operator appends `[[webhooks]]` blocks to the config `init` wrote.
    #[test]
    fn webhooks_can_be_appended_to_a_written_config_and_are_checked() {
        let hook = "\n[[webhooks]]\nurl = \"https://hooks.example/h\"\nsecret = \"sixteen or more chars\"\n";
        let config: Config =
            toml::from_str(&(Config::default().to_toml() + hook)).expect("appended config reads");
        assert_eq!(config.webhooks.len(), 1);
        assert_eq!(config.webhooks[0].events, vec![EventKind::Match, EventKind::StatusChanged]);
        assert_eq!(config.webhooks[0].retry_max, Duration::from_secs(300));
        assert_eq!(config.check(), Ok(()));
        let round: Config = toml::from_str(&config.to_toml()).expect("written back");
        assert_eq!(round.webhooks[0].url, "https://hooks.example/h");

        for (bad, says) in [
            (hook.replace("https://hooks.example/h", "ftp://x/"), "http or https"),
            (hook.replace("https://hooks.example/h", "not a url"), "not a URL"),
            (hook.replace("sixteen or more chars", "short"), "at least 16"),
            (format!("{hook}retry_max = \"1ms\"\n"), "retry_max"),
        ] {
            let config: Config = toml::from_str(&(Config::default().to_toml() + &bad)).expect("parses");
            let err = config.check().expect_err("refused");
            assert!(err.contains(says), "{err}");
        }
    }
}
