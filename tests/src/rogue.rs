//! A member that misbehaves on the sync protocol, for scenarios that check a node cannot be
//! led astray: it holds a member's key (so it may connect), claims more of a log than it
//! has, and answers range requests by replaying records from the start or not at all, or with
//! records of its choosing (tampered ones, another author's) every time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use futures::StreamExt;
use hashmesh_node::sync::wire::{
    MAX_REQUEST_BYTES, MAX_WIRE_RESPONSE_BYTES, PROTOCOL, SyncRequest, SyncResponse,
};
use hashmesh_node::sync::{Clock, LogClock};
use hashmesh_protocol::MemberId;
use libp2p::request_response::{self, ProtocolSupport, ResponseChannel};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, StreamProtocol, noise, tcp, yamux};

/// A running rogue member.
pub struct Rogue {
    /// Its peer id (the member's).
    pub peer_id: PeerId,
    ranges: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Rogue {
    /// Starts a rogue with `key` that dials `dial`, claims `author`'s log runs to `claimed_seq`,
    /// and answers range requests in turn with a replay of `records` (from seq 1, whatever
    /// was asked) or never.
    pub fn start(
        key: &SigningKey,
        author: MemberId,
        claimed_seq: u64,
        records: Vec<Vec<u8>>,
        dial: Vec<Multiaddr>,
    ) -> anyhow::Result<Self> {
        Self::spawn(key, author, claimed_seq, records, dial, true)
    }

    /// Starts a rogue with `key` that dials `dial`, claims `author`'s log runs to `claimed_seq`,
    /// and answers every range request with exactly `records`, whatever was asked: bytes the
    /// scenario chose (a flipped byte, another author's records).
    pub fn serving(
        key: &SigningKey,
        author: MemberId,
        claimed_seq: u64,
        records: Vec<Vec<u8>>,
        dial: Vec<Multiaddr>,
    ) -> anyhow::Result<Self> {
        Self::spawn(key, author, claimed_seq, records, dial, false)
    }

    fn spawn(
        key: &SigningKey,
        author: MemberId,
        claimed_seq: u64,
        records: Vec<Vec<u8>>,
        dial: Vec<Multiaddr>,
        stall_every_other: bool,
    ) -> anyhow::Result<Self> {
        let keypair = hashmesh_node::identity::libp2p_keypair(key);
        let peer_id = keypair.public().to_peer_id();
        let codec = request_response::cbor::codec::Codec::<SyncRequest, SyncResponse>::default()
            .set_request_size_maximum(MAX_REQUEST_BYTES as u64)
            .set_response_size_maximum(MAX_WIRE_RESPONSE_BYTES as u64);
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_tcp(tcp::Config::default(), noise::Config::new, yamux::Config::default)?
            .with_behaviour(|_| {
                request_response::Behaviour::with_codec(
                    codec,
                    [(StreamProtocol::new(PROTOCOL), ProtocolSupport::Full)],
                    request_response::Config::default(),
                )
            })?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
            .build();
        for addr in dial {
            swarm.dial(addr)?;
        }
        let claim: Clock = BTreeMap::from([(
            author,
            LogClock { seq: claimed_seq, id: hashmesh_protocol::RecordId([7; 32]), fork: None },
        )]);
        let ranges = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&ranges);
        let task = tokio::spawn(async move {
            // Stalled answers are kept, never sent, so the asker must time out.
            let mut stalled: Vec<ResponseChannel<SyncResponse>> = Vec::new();
            loop {
                let SwarmEvent::Behaviour(request_response::Event::Message {
                    message: request_response::Message::Request { request, channel, .. },
                    ..
                }) = swarm.select_next_some().await
                else {
                    continue;
                };
                let response = match request {
                    SyncRequest::Heads => {
                        SyncResponse::Heads { clock: claim.clone(), epoch: 1, manifest: [0; 32] }
                    }
                    SyncRequest::Range { .. } => {
                        if counter.fetch_add(1, Ordering::SeqCst) % 2 == 1 && stall_every_other {
                            stalled.push(channel);
                            continue;
                        }
                        SyncResponse::Records(
                            records.iter().cloned().map(serde_bytes::ByteBuf::from).collect(),
                        )
                    }
                    SyncRequest::Proof { .. } => SyncResponse::Refused("no".into()),
                };
                let _ = swarm.behaviour_mut().send_response(channel, response);
            }
        });
        Ok(Self { peer_id, ranges, task })
    }

    /// Range requests it has received (replayed or stalled).
    pub fn ranges_asked(&self) -> usize {
        self.ranges.load(Ordering::SeqCst)
    }
}

impl Drop for Rogue {
    fn drop(&mut self) {
        self.task.abort();
    }
}
