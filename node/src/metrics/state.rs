//! Gauges and counters that mirror node state, read where the state lives at each scrape:
//! the replica's view ([`ReplicaState`]) and the network task's peers ([`NetState`]).

use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::net::PeerView;
use crate::replica::ReplicaHandle;
use crate::sync::OwnLog;

/// The replica at one moment, as its gauges show it.
#[derive(Debug, Clone, Default)]
pub struct ReplicaState {
    /// Signed records held.
    pub records: u64,
    /// Entries held.
    pub entries: u64,
    /// Records waiting for a gap in their author's log to fill.
    pub buffered: u64,
    /// Authors proven to have signed two records at one position.
    pub equivocators: u64,
    /// The membership epoch in force.
    pub epoch: u64,
    /// Membership proposals not yet in effect.
    pub pending_proposals: u64,
    /// Whether own writes may go ahead, and why (not).
    pub own_log: Option<OwnLog>,
}

impl ReplicaState {
    /// Reads the replica's view (for a moment, like any reader) and the own log's state.
    pub fn read(replica: &ReplicaHandle, own_log: OwnLog) -> Self {
        let view = replica.view();
        Self {
            records: view.records(),
            entries: view.catalog().len() as u64,
            buffered: view.buffered() as u64,
            equivocators: view.proofs().len() as u64,
            epoch: view.manifest().epoch,
            pending_proposals: view.governance().pending().len() as u64,
            own_log: Some(own_log),
        }
    }
}

/// Encodes the replica's gauges from a fresh [`ReplicaState`] at each scrape.
pub(super) struct ReplicaCollector {
    read: Box<dyn Fn() -> ReplicaState + Send + Sync>,
}

impl ReplicaCollector {
    pub(super) fn new(read: impl Fn() -> ReplicaState + Send + Sync + 'static) -> Self {
        Self { read: Box::new(read) }
    }
}

impl std::fmt::Debug for ReplicaCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaCollector").finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

impl Collector for ReplicaCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = (self.read)();
        for (name, help, value) in [
            ("records", "Signed records held.", s.records),
            ("entries", "Entries held.", s.entries),
            (
                "buffered_records",
                "Out-of-order records waiting for a gap in their author's log to fill.",
                s.buffered,
            ),
            (
                "equivocators",
                "Authors caught signing two records at one position of their log.",
                s.equivocators,
            ),
            ("epoch", "Membership epoch in force.", s.epoch),
            ("pending_proposals", "Membership proposals not yet in effect.", s.pending_proposals),
        ] {
            gauge(&mut encoder, name, help, value)?;
        }
        let mut family = encoder.encode_descriptor(
            "own_log_state",
            "1 for the `state` of this node's own log, 0 for the others: own writes are accepted when \
             confirmed (by a peer) or unconfirmed (by configuration), refused while waiting or stuck.",
            None,
            MetricType::Gauge,
        )?;
        for state in OwnLog::ALL {
            let value = i64::from(s.own_log == Some(state));
            ConstGauge::new(value).encode(family.encode_family(&StateLabel { state: state.name() })?)?;
        }
        Ok(())
    }
}

/// The network at one moment: its peers (or, for a follower, its member node) and the
/// connections it refused.
#[derive(Debug, Clone, Default)]
pub struct NetState {
    /// Peers as `GET /v1/peers` shows them.
    pub peers: Vec<PeerView>,
    /// Connections refused because the peer is not a member.
    pub refused_connections: u64,
}

/// Encodes the [`NetState`] the current scrape asked the network task for.
#[derive(Debug)]
pub(super) struct NetCollector(pub(super) Arc<Mutex<NetState>>);

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabels {
    peer: String,
    member: String,
}

impl Collector for NetCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let net = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let connected = net.peers.iter().filter(|p| p.connected_since.is_some()).count() as u64;
        let in_sync = net.peers.iter().filter(|p| p.in_sync).count() as u64;
        gauge(
            &mut encoder,
            "peers_connected",
            "Member peers connected (a follower: its member node, when it answers).",
            connected,
        )?;
        gauge(
            &mut encoder,
            "peers_in_sync",
            "Member peers whose replica equalled ours at the last comparison.",
            in_sync,
        )?;
        ConstCounter::new(net.refused_connections).encode(encoder.encode_descriptor(
            "refused_connections",
            "Connections refused because the peer is not a member.",
            None,
            MetricType::Counter,
        )?)?;
        for (name, help, value) in [
            (
                "peer_records_received",
                "Records received from the peer and stored, by `peer` id and `member` name.",
                (|p: &PeerView| p.records_received) as fn(&PeerView) -> u64,
            ),
            (
                "peer_records_sent",
                "Records sent to the peer in sync answers, by `peer` id and `member` name.",
                |p| p.records_sent,
            ),
            (
                "peer_rejects",
                "Invalid messages received from the peer, by `peer` id and `member` name.",
                |p| p.rejects,
            ),
        ] {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for p in &net.peers {
                let labels =
                    PeerLabels { peer: p.peer_id.clone(), member: p.member.clone().unwrap_or_default() };
                ConstCounter::new(value(p)).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> Result<(), std::fmt::Error> {
    let value = i64::try_from(value).unwrap_or(i64::MAX);
    ConstGauge::new(value).encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)
}
