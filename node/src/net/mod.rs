//! Replication between member nodes over libp2p: gossipsub push for speed, request-response
//! catch-up sync for exactness.
//!
//! One task (the [`event_loop`]) owns the swarm; everything else talks to it through a
//! [`Client`] that sends [`Command`]s over a bounded channel, with oneshot replies. What to
//! fetch from whom is decided by the I/O-free [`Engine`](crate::sync::Engine); what peers
//! send is verified and stored by the [`ingest`] stages. The network sees the replica only
//! through [`ReplicaHandle`].

mod behaviour;
mod event_loop;
pub mod follow;
mod ingest;
mod peers;

use std::time::Duration;

use hashmesh_protocol::Manifest;
use libp2p::request_response::ResponseChannel;
use libp2p::{Multiaddr, PeerId, gossipsub};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::P2pConfig;
use crate::replica::ReplicaHandle;
use crate::sync::{Engine, Fetch, FetchResult, OwnLog, SyncResponse};
pub use peers::PeerView;

/// Commands waiting for the event loop; a full queue makes senders wait (or, for gossip
/// publishing, drop the message: catch-up sync delivers it anyway).
const COMMAND_QUEUE: usize = 1024;

/// Why the network could not start.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A listen address is not a multiaddress.
    #[error("p2p.listen address {0:?} is not a valid multiaddress (e.g. /ip4/0.0.0.0/tcp/7700)")]
    BadListenAddress(String),
    /// Could not listen.
    #[error("cannot listen on {addr}: {message} (is the port in use? change p2p.listen in config.toml)")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        message: String,
    },
    /// The swarm could not be built.
    #[error("cannot start the network: {0}")]
    Build(String),
}

/// Requests to the event loop, from clients and from the tasks it starts.
pub(crate) enum Command {
    Publish(Vec<u8>),
    PublishProof(Vec<u8>),
    AddAddress(PeerId, Multiaddr),
    ListenAddrs(oneshot::Sender<Vec<Multiaddr>>),
    Peers(oneshot::Sender<Vec<PeerView>>),
    Refused(oneshot::Sender<u64>),
    Cut(PeerId),
    Restore(PeerId),
    SyncNow,
    /// A fetch's answer was used.
    Done(PeerId, Fetch, FetchResult),
    /// A fetch's answer could not be used, through no fault of the peer.
    Failed(PeerId, Fetch),
    /// A gossip message was checked.
    Validated {
        peer: PeerId,
        id: gossipsub::MessageId,
        verdict: ingest::Verdict,
    },
    /// A follower's request to its member node was answered (or failed, with why).
    Upstream(Option<Fetch>, Result<SyncResponse, String>),
    /// An answer to a peer's request is ready.
    Respond {
        peer: PeerId,
        channel: ResponseChannel<SyncResponse>,
        response: SyncResponse,
    },
}

/// What the network needs to start.
pub struct Settings {
    /// The node's libp2p identity (its member key).
    pub key: libp2p::identity::Keypair,
    /// Listen addresses and intervals.
    pub config: P2pConfig,
    /// The federation: who may connect, where to dial.
    pub manifest: Manifest,
    /// The sync engine, configured.
    pub engine: Engine<PeerId>,
    /// Where to publish the own log's state.
    pub own_log: watch::Sender<OwnLog>,
}

/// A cheap handle on the network task.
#[derive(Clone)]
pub struct Client {
    commands: mpsc::Sender<Command>,
    peer_id: PeerId,
}

impl Client {
    /// This node's libp2p peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Gossips a record's canonical bytes. Never blocks: if the network is backed up the
    /// message is dropped and peers get the record by catch-up sync instead.
    pub fn publish(&self, bytes: Vec<u8>) {
        if self.commands.try_send(Command::Publish(bytes)).is_err() {
            tracing::debug!("gossip queue full; the record will travel by sync");
        }
    }

    /// Gossips an encoded proof of equivocation, like [`Client::publish`].
    pub fn publish_proof(&self, bytes: Vec<u8>) {
        if self.commands.try_send(Command::PublishProof(bytes)).is_err() {
            tracing::debug!("gossip queue full; the proof will travel by sync");
        }
    }

    /// Tells the node where a member's peer can be dialed.
    pub async fn add_address(&self, peer: PeerId, addr: Multiaddr) {
        let _ = self.commands.send(Command::AddAddress(peer, addr)).await;
    }

    /// The addresses the node listens on.
    pub async fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.ask(Command::ListenAddrs).await.unwrap_or_default()
    }

    /// Connected and known member peers.
    pub async fn peers(&self) -> Vec<PeerView> {
        self.ask(Command::Peers).await.unwrap_or_default()
    }

    /// Connections refused because the peer is not in the manifest.
    pub async fn refused_connections(&self) -> u64 {
        self.ask(Command::Refused).await.unwrap_or_default()
    }

    /// Disconnects `peer` and refuses it until [`Client::restore`] (partitions in tests,
    /// and an operator's emergency brake).
    pub async fn cut(&self, peer: PeerId) {
        let _ = self.commands.send(Command::Cut(peer)).await;
    }

    /// Allows `peer` again and redials it.
    pub async fn restore(&self, peer: PeerId) {
        let _ = self.commands.send(Command::Restore(peer)).await;
    }

    /// Starts a sync round with every connected peer now.
    pub async fn sync_now(&self) {
        let _ = self.commands.send(Command::SyncNow).await;
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).await.ok()?;
        rx.await.ok()
    }
}

/// Starts the network task, replicating `replica`; libp2p's swarm, bandwidth and protocol
/// metrics go into `registry`.
pub fn spawn(
    replica: ReplicaHandle,
    settings: Settings,
    registry: &mut prometheus_client::registry::Registry,
    cancel: CancellationToken,
) -> Result<(Client, JoinHandle<()>), NetError> {
    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    let peer_id = settings.key.public().to_peer_id();
    let client = Client { commands: tx.clone(), peer_id };
    let event_loop = event_loop::EventLoop::new(replica, settings, registry, tx, rx)?;
    let task = tokio::spawn(tracing::Instrument::in_current_span(event_loop.run(cancel)));
    Ok((client, task))
}

/// Initial and minimum redial delay.
const MIN_BACKOFF: Duration = Duration::from_millis(250);
