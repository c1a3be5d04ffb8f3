//! The node's Prometheus metrics, served by `GET /metrics` in the OpenMetrics text format
//! through `prometheus-client`.
//!
//! One [`Registry`] is built at start ([`Metrics::new`], then a member node's network adds
//! libp2p's families to it) and does not change afterwards. What each family holds and where
//! its value comes from:
//!
//! | families | where the value comes from |
//! |---|---|
//! | `hashmesh_build_info` | set once at start: version, federation, role |
//! | `hashmesh_records`, `_entries`, `_buffered_records`, `_equivocators`, `_epoch`, `_pending_proposals`, `_own_log_state` | read from the replica's view at each scrape ([`state::ReplicaState`]) |
//! | `hashmesh_peers_*`, `hashmesh_refused_connections_total`, `hashmesh_peer_*_total` | asked of the network task by each scrape ([`state::NetState`]) |
//! | `hashmesh_match_*_total` | counted by `NodeHandle::match_and_act`, once per match request ([`matching`]) |
//! | `hashmesh_rpc_*` | counted by the RPC's middleware ([`rpc`]) |
//! | `libp2p_*` | libp2p-metrics and gossipsub, from the swarm's events: member nodes only |
//!
//! State is never copied into a gauge to be kept up to date: a scrape reads it where it lives
//! (a collector cannot wait, so the handler asks the network task first and hands its answer
//! to the collector just before encoding). Names follow Prometheus' conventions, which the
//! crate applies: counters get `_total`, a family registered with a unit gets it as a suffix
//! (`_seconds`), label values are escaped. `docs/metrics.md` is generated from this registry
//! ([`reference`]), so it lists exactly what a node serves.

pub mod matching;
pub mod rpc;
pub mod state;

use std::sync::{Arc, Mutex};

use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
pub use prometheus_client::registry::Registry;

pub use state::{NetState, ReplicaState};

/// The media type of the exposition: OpenMetrics text, which Prometheus asks for and parses.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What a node is, for `hashmesh_build_info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A member's node on the libp2p network.
    Member,
    /// A read-only follower of a member node (`run --follow`).
    Follower,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Follower => "follower",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    federation: String,
    role: &'static str,
}

/// The registry and the handles the node counts with.
pub struct Metrics {
    registry: Registry,
    net: Arc<Mutex<NetState>>,
    /// Match requests, fingerprints and hits.
    pub matching: matching::MatchMetrics,
    /// RPC requests and their latency.
    pub rpc: rpc::RpcMetrics,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// The node's families under `hashmesh_`: `read_replica` is called at each scrape for the
    /// replica's gauges. A member node's network then adds libp2p's through
    /// [`Metrics::registry_mut`].
    pub fn new(
        federation: &str,
        role: Role,
        read_replica: impl Fn() -> ReplicaState + Send + Sync + 'static,
    ) -> Self {
        let mut registry = Registry::default();
        let net = Arc::new(Mutex::new(NetState::default()));
        let hashmesh = registry.sub_registry_with_prefix("hashmesh");
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                federation: federation.to_owned(),
                role: role.name(),
            })
            .set(1);
        hashmesh.register(
            "build_info",
            "Always 1: the `version` of hashmesh this node runs, its `federation` and its `role` (member node or follower)",
            build,
        );
        hashmesh.register_collector(Box::new(state::ReplicaCollector::new(read_replica)));
        hashmesh.register_collector(Box::new(state::NetCollector(Arc::clone(&net))));
        let matching = matching::MatchMetrics::new(hashmesh);
        let rpc = rpc::RpcMetrics::new(hashmesh);
        Self { registry, net, matching, rpc }
    }

    /// The registry, while the node is being built (libp2p registers its families here).
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// The exposition: every family, with the network's state as `net` (asked of the network
    /// task just before). Two scrapes at once may encode each other's `net`, one that is at
    /// most as old as the slower scrape; a scrape reads it once, so its families agree.
    pub fn encode(&self, net: NetState) -> Result<String, std::fmt::Error> {
        *self.net.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = net;
        let mut out = String::new();
        encode_registry(&mut out, &self.registry)?;
        encode_eof(&mut out)?;
        Ok(out)
    }
}

/// A family encoded even while it has no series yet, so a scrape (and `docs/metrics.md`)
/// shows it from the start; `prometheus-client` leaves out empty families otherwise.
#[derive(Debug, Clone, Default)]
pub(crate) struct Listed<M>(pub(crate) M);

impl<M: EncodeMetric> EncodeMetric for Listed<M> {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        self.0.encode(encoder)
    }

    fn metric_type(&self) -> MetricType {
        self.0.metric_type()
    }
}

/// `docs/metrics.md`: every `hashmesh_` family as a node serves it, from the registry itself.
pub fn reference() -> String {
    let metrics = Metrics::new("example", Role::Member, ReplicaState::default);
    let text = metrics.encode(NetState::default()).unwrap_or_default();
    let mut families: Vec<(String, String, String, String)> = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(4, ' ');
        let (Some("#"), Some(what), Some(name), Some(rest)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if !name.starts_with("hashmesh_") {
            continue;
        }
        if families.last().is_none_or(|f| f.0 != name) {
            families.push((name.to_owned(), String::new(), String::new(), String::new()));
        }
        let Some(family) = families.last_mut() else { continue };
        match what {
            "HELP" => family.3 = rest.to_owned(),
            "TYPE" => family.1 = rest.to_owned(),
            "UNIT" => family.2 = rest.to_owned(),
            _ => {}
        }
    }
    let mut out = String::from(
        "# Metrics\n\n\
         Generated from the node's metrics registry by `cargo test -p hashmesh-node --lib metrics` \
         (set `HASHMESH_BLESS=1` to rewrite this file after changing a metric); do not edit by hand.\n\n\
         `GET /metrics` (matcher token) serves these in the OpenMetrics text format \
         (`application/openmetrics-text`), which Prometheus asks for. A counter's samples are \
         named with `_total`; a histogram's with `_bucket`, `_sum` and `_count`.\n\n\
         | family | type | unit | samples | help |\n|---|---|---|---|---|\n",
    );
    for (name, kind, unit, help) in families {
        let samples = match kind.as_str() {
            "counter" => format!("`{name}_total`"),
            "histogram" => format!("`{name}_bucket`, `{name}_sum`, `{name}_count`"),
            _ => format!("`{name}`"),
        };
        out.push_str(&format!("| `{name}` | {kind} | {unit} | {samples} | {help} |\n"));
    }
    out.push_str(
        "\nA member node also serves libp2p's own families: `libp2p_swarm_*` (connections, dials, \
         listeners), `libp2p_identify_*`, `libp2p_ping_*`, `libp2p_bandwidth_bytes_total` and \
         `libp2p_gossipsub_*` (mesh, topics, messages by validation result). Their names and help \
         are those of libp2p-metrics and libp2p-gossipsub; each appears once its first event is \
         recorded. A follower has no libp2p network and serves none of them.\n",
    );
    out
}

#[cfg(test)]
mod tests;
