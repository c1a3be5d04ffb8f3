//! The libp2p behaviours a node runs, allow-list first so a non-member's connection is
//! refused before any other protocol sees it.

use std::time::Duration;

use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::{StreamProtocol, allow_block_list, connection_limits, gossipsub, identify, identity, ping};

use crate::sync::wire::{MAX_REQUEST_BYTES, MAX_WIRE_RESPONSE_BYTES, PROTOCOL, SyncRequest, SyncResponse};

/// Largest gossip message: one record plus framing.
const MAX_GOSSIP_BYTES: usize = hashmesh_protocol::codec::MAX_RECORD_SIZE + 1024;

/// Every behaviour of a hashmesh node.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) allow: allow_block_list::Behaviour<allow_block_list::AllowedPeers>,
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
    pub(crate) gossip: gossipsub::Behaviour,
    pub(crate) sync: request_response::cbor::Behaviour<SyncRequest, SyncResponse>,
}

/// Why the behaviours could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot configure gossipsub: {0}")]
pub(crate) struct BehaviourError(String);

impl Behaviour {
    /// The behaviours; gossipsub records its own metrics (mesh, topics, validation results)
    /// under `libp2p_gossipsub_` in `registry`.
    pub(crate) fn new(
        key: &identity::Keypair,
        max_peers: u32,
        request_timeout: Duration,
        registry: &mut prometheus_client::registry::Registry,
    ) -> Result<Self, BehaviourError> {
        let gossip_config = gossipsub::ConfigBuilder::default()
            .validation_mode(gossipsub::ValidationMode::Strict)
            .validate_messages()
            .message_id_fn(|m: &gossipsub::Message| {
                gossipsub::MessageId::from(blake3::hash(&m.data).as_bytes().to_vec())
            })
            .max_transmit_size(MAX_GOSSIP_BYTES)
            .heartbeat_interval(Duration::from_millis(500))
            .build()
            .map_err(|e| BehaviourError(e.to_string()))?;
        let gossip =
            gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Signed(key.clone()), gossip_config)
                .map_err(|e| BehaviourError(e.to_string()))?
                .with_metrics(registry.sub_registry_with_prefix("libp2p_gossipsub"), gossip_metrics());
        let limits = connection_limits::ConnectionLimits::default()
            .with_max_established_per_peer(Some(2))
            .with_max_established(Some(max_peers * 2 + 8))
            .with_max_pending_incoming(Some(64));
        let codec = request_response::cbor::codec::Codec::default()
            .set_request_size_maximum(MAX_REQUEST_BYTES as u64)
            .set_response_size_maximum(MAX_WIRE_RESPONSE_BYTES as u64);
        let sync = request_response::Behaviour::with_codec(
            codec,
            [(StreamProtocol::new(PROTOCOL), ProtocolSupport::Full)],
            request_response::Config::default().with_request_timeout(request_timeout),
        );
        Ok(Self {
            allow: allow_block_list::Behaviour::default(),
            limits: connection_limits::Behaviour::new(limits),
            identify: identify::Behaviour::new(identify::Config::new("/hashmesh/id/1".into(), key.public())),
            ping: ping::Behaviour::default(),
            gossip,
            sync,
        })
    }
}

/// Gossipsub's metrics, with one score bucket at 0. Peer scoring is off (only members get in),
/// so every peer's score is 0; the default buckets reach down to -16000, and OpenMetrics
/// forbids a histogram's `_sum` beside negative bucket bounds, so a strict parser would refuse
/// the whole exposition for a histogram that can only ever hold zeros.
fn gossip_metrics() -> gossipsub::MetricsConfig {
    gossipsub::MetricsConfig { score_buckets: vec![0.0], ..gossipsub::MetricsConfig::default() }
}
