//! What the node knows about each member peer: addresses, connection, counters, redial backoff.

use std::collections::HashMap;
use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::MIN_BACKOFF;

/// A peer as `GET /v1/peers` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PeerView {
    /// libp2p peer id.
    pub peer_id: String,
    /// Member name from the manifest.
    pub member: Option<String>,
    /// Address of the current connection.
    pub address: Option<String>,
    /// When the current connection was established (unix ms).
    pub connected_since: Option<u64>,
    /// Records received from this peer and stored.
    pub records_received: u64,
    /// Records sent to this peer in sync responses.
    pub records_sent: u64,
    /// Invalid messages received from this peer.
    pub rejects: u64,
    /// Whether its vector clock equalled ours at the last comparison.
    pub in_sync: bool,
    /// The membership epoch it had in force at the last comparison.
    pub epoch: Option<u64>,
    /// blake3 of its manifest then, hex.
    pub manifest_digest: Option<String>,
}

/// One member peer.
pub(super) struct Peer {
    pub(super) member: Option<String>,
    pub(super) addrs: Vec<Multiaddr>,
    pub(super) connected: Option<(Multiaddr, u64)>,
    pub(super) connections: u32,
    pub(super) received: u64,
    pub(super) sent: u64,
    pub(super) rejects: u64,
    pub(super) in_sync: bool,
    pub(super) epoch: Option<(u64, [u8; 32])>,
    pub(super) cut: bool,
    pub(super) next_dial: Instant,
    pub(super) backoff: Duration,
}

impl Peer {
    pub(super) fn new(member: Option<String>) -> Self {
        Self {
            member,
            addrs: Vec::new(),
            connected: None,
            connections: 0,
            received: 0,
            sent: 0,
            rejects: 0,
            in_sync: false,
            epoch: None,
            cut: false,
            next_dial: Instant::now(),
            backoff: MIN_BACKOFF,
        }
    }

    pub(super) fn view(&self, id: &PeerId) -> PeerView {
        PeerView {
            peer_id: id.to_string(),
            member: self.member.clone(),
            address: self.connected.as_ref().map(|(a, _)| a.to_string()),
            connected_since: self.connected.as_ref().map(|(_, t)| *t),
            records_received: self.received,
            records_sent: self.sent,
            rejects: self.rejects,
            in_sync: self.in_sync,
            epoch: self.epoch.map(|(e, _)| e),
            manifest_digest: self.epoch.map(|(_, d)| hex::encode(d)),
        }
    }

    /// Schedules the next dial after a failure, doubling the delay up to `max`.
    pub(super) fn back_off(&mut self, max: Duration) {
        self.next_dial = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(max);
    }
}

/// All member peers by id.
pub(super) type Peers = HashMap<PeerId, Peer>;
