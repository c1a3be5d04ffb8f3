//! The task that owns the swarm: it dials and redials members, validates and forwards gossip,
//! serves and drives catch-up sync, and answers the [`Client`](super::Client).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use futures::StreamExt;
use hashmesh_protocol::{MemberId, Record};
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::swarm::SwarmEvent;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::{Multiaddr, PeerId, Swarm, gossipsub, identify, noise, tcp, yamux};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::behaviour::{Behaviour, BehaviourEvent};
use super::peers::{Peer, Peers};
use super::sync::{self, Fetch, SyncRequest, SyncResponse};
use super::{Command, MIN_BACKOFF, NetError};
use crate::NodeHandle;
use crate::config::P2pConfig;
use crate::node::now_ms;
use crate::replica::{IngestError, Ingested};

/// Most dial addresses remembered per peer (manifest, identify and operator together).
const MAX_ADDRS_PER_PEER: usize = 16;

/// What a request in flight was for.
enum Pending {
    Heads(PeerId),
    Range(PeerId, Fetch),
}

/// The outcome of ingesting one fetched batch, reported back to the loop.
#[derive(Debug)]
pub(crate) struct BatchDone {
    peer: PeerId,
    fetch: Fetch,
    received: usize,
    stored: u64,
    last_seq: Option<u64>,
    rejected: Option<String>,
    fork_at: Option<u64>,
}

pub(crate) struct EventLoop {
    swarm: Swarm<Behaviour>,
    node: NodeHandle,
    topic: gossipsub::IdentTopic,
    peers: Peers,
    listen: Vec<Multiaddr>,
    commands_tx: mpsc::Sender<Command>,
    commands: mpsc::Receiver<Command>,
    sync_interval: Duration,
    max_backoff: Duration,
    pending: HashMap<OutboundRequestId, Pending>,
    fetching: HashMap<MemberId, PeerId>,
    asking_heads: HashSet<PeerId>,
    /// Peers that had something to offer while that author was being fetched from another
    /// peer: asked again once the fetch ends, so nothing waits for the periodic round.
    recheck: HashSet<PeerId>,
    refused_connections: u64,
}

impl EventLoop {
    pub(crate) fn new(
        node: NodeHandle,
        key: libp2p::identity::Keypair,
        config: &P2pConfig,
        commands_tx: mpsc::Sender<Command>,
        commands: mpsc::Receiver<Command>,
    ) -> Result<Self, NetError> {
        let manifest = node.manifest().clone();
        let me = key.public().to_peer_id();
        let member_peers = manifest.members.iter().map(|m| m.peers.len() as u32).sum::<u32>();
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
            .with_tokio()
            .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
            .map_err(|e| NetError::Build(e.to_string()))?
            .with_behaviour(|k| Behaviour::new(k, member_peers).map_err(Box::from))
            .map_err(|e| NetError::Build(e.to_string()))?
            // Member connections are long-lived; keep them even when quiet.
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(24 * 3600)))
            .build();
        for addr in &config.listen {
            let parsed: Multiaddr = addr.parse().map_err(|_| NetError::BadListenAddress(addr.clone()))?;
            swarm
                .listen_on(parsed)
                .map_err(|e| NetError::Listen { addr: addr.clone(), message: e.to_string() })?;
        }
        let topic = gossipsub::IdentTopic::new(format!("hashmesh/{}/records/1", manifest.name));
        swarm.behaviour_mut().gossip.subscribe(&topic).map_err(|e| NetError::Build(e.to_string()))?;
        let mut peers = Peers::new();
        for member in &manifest.members {
            for text in &member.peers {
                let Ok(peer) = text.parse::<PeerId>() else {
                    tracing::warn!(member = %member.name, peer = %text, "manifest lists a peer id that does not parse; ignoring it");
                    continue;
                };
                if peer == me {
                    continue;
                }
                swarm.behaviour_mut().allow.allow_peer(peer);
                let entry = peers.entry(peer).or_insert_with(|| Peer::new(Some(member.name.clone())));
                // Addresses are per member; with several nodes per member each is tried.
                entry.addrs.extend(member.addresses.iter().filter_map(|a| a.parse().ok()));
            }
        }
        Ok(Self {
            swarm,
            node,
            topic,
            peers,
            listen: Vec::new(),
            commands_tx,
            commands,
            sync_interval: config.sync_interval,
            max_backoff: config.max_redial_backoff,
            pending: HashMap::new(),
            fetching: HashMap::new(),
            asking_heads: HashSet::new(),
            recheck: HashSet::new(),
            refused_connections: 0,
        })
    }

    pub(crate) async fn run(mut self, cancel: CancellationToken) {
        let mut dial_tick = tokio::time::interval(Duration::from_millis(200));
        let mut sync_tick = tokio::time::interval(self.sync_interval);
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                event = self.swarm.select_next_some() => self.on_swarm(event),
                Some(command) = self.commands.recv() => self.on_command(command),
                _ = dial_tick.tick() => self.redial(),
                _ = sync_tick.tick() => self.sync_all(),
            }
        }
        tracing::debug!("network stopped");
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Publish(bytes) => {
                if let Err(e) = self.swarm.behaviour_mut().gossip.publish(self.topic.clone(), bytes) {
                    tracing::debug!(error = %e, "gossip publish skipped; peers will sync");
                }
            }
            Command::AddAddress(peer, addr) => {
                if let Some(p) = self.peers.get_mut(&peer)
                    && !p.addrs.contains(&addr)
                {
                    if p.addrs.len() >= MAX_ADDRS_PER_PEER {
                        p.addrs.remove(0);
                    }
                    p.addrs.push(addr);
                    p.next_dial = Instant::now();
                }
            }
            Command::ListenAddrs(reply) => {
                let _ = reply.send(self.listen.clone());
            }
            Command::Peers(reply) => {
                let _ = reply.send(self.peers.iter().map(|(id, p)| p.view(id)).collect());
            }
            Command::Refused(reply) => {
                let _ = reply.send(self.refused_connections);
            }
            Command::Cut(peer) => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.cut = true;
                }
                self.swarm.behaviour_mut().allow.disallow_peer(peer);
            }
            Command::Restore(peer) => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.cut = false;
                    p.next_dial = Instant::now();
                    p.backoff = MIN_BACKOFF;
                    self.swarm.behaviour_mut().allow.allow_peer(peer);
                }
            }
            Command::SyncNow => self.sync_all(),
            Command::BatchDone(done) => self.on_batch_done(&done),
        }
    }

    fn redial(&mut self) {
        let now = Instant::now();
        let max = self.max_backoff;
        let due: Vec<(PeerId, Vec<Multiaddr>)> = self
            .peers
            .iter_mut()
            .filter(|(_, p)| !p.cut && p.connections == 0 && now >= p.next_dial && !p.addrs.is_empty())
            .map(|(id, p)| {
                p.back_off(max);
                (*id, p.addrs.clone())
            })
            .collect();
        for (peer, addrs) in due {
            let opts = DialOpts::peer_id(peer).addresses(addrs).build();
            if let Err(e) = self.swarm.dial(opts) {
                tracing::debug!(%peer, error = %e, "dial failed");
            }
        }
    }

    fn sync_all(&mut self) {
        let connected: Vec<PeerId> =
            self.peers.iter().filter(|(_, p)| p.connections > 0).map(|(id, _)| *id).collect();
        for peer in connected {
            self.ask_heads(peer);
        }
    }

    fn ask_heads(&mut self, peer: PeerId) {
        if self.asking_heads.insert(peer) {
            let id = self.swarm.behaviour_mut().sync.send_request(&peer, SyncRequest::Heads);
            self.pending.insert(id, Pending::Heads(peer));
        }
    }

    fn fetch(&mut self, peer: PeerId, fetch: Fetch) {
        self.fetching.insert(fetch.author, peer);
        let request =
            SyncRequest::Range { author: fetch.author.0, from_seq: fetch.from_seq, limit: fetch.limit };
        let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
        self.pending.insert(id, Pending::Range(peer, fetch));
    }

    /// A fetch of `author` from `peer` is over (done, failed or abandoned): free the author
    /// for the next fetch and ask again the peers that offered it meanwhile.
    fn fetch_ended(&mut self, author: MemberId, peer: PeerId) {
        if self.fetching.get(&author) == Some(&peer) {
            self.fetching.remove(&author);
        }
        for other in std::mem::take(&mut self.recheck) {
            self.ask_heads(other);
        }
    }

    fn on_swarm(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "p2p listening");
                self.listen.push(address);
            }
            SwarmEvent::ConnectionEstablished { peer_id, endpoint, .. } => {
                if let Some(p) = self.peers.get_mut(&peer_id) {
                    p.connections += 1;
                    p.connected.get_or_insert((endpoint.get_remote_address().clone(), now_ms()));
                    p.backoff = MIN_BACKOFF;
                    tracing::info!(peer = %peer_id, member = ?p.member, "member connected");
                }
                self.ask_heads(peer_id);
            }
            SwarmEvent::ConnectionClosed { peer_id, num_established, .. } => {
                if let Some(p) = self.peers.get_mut(&peer_id) {
                    p.connections = num_established;
                    if num_established == 0 {
                        p.connected = None;
                        p.in_sync = false;
                        p.next_dial = Instant::now() + p.backoff;
                        tracing::info!(peer = %peer_id, member = ?p.member, "member disconnected");
                    }
                }
                if num_established == 0 {
                    self.forget_requests_to(peer_id);
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id: Some(peer), error, .. } => {
                tracing::debug!(%peer, %error, "cannot reach member");
            }
            SwarmEvent::IncomingConnectionError { send_back_addr, error, .. } => {
                if matches!(error, libp2p::swarm::ListenError::Denied { .. }) {
                    self.refused_connections += 1;
                    tracing::info!(%send_back_addr, %error, "refused a connection from a peer that is not a member");
                } else {
                    tracing::debug!(%send_back_addr, %error, "incoming connection failed");
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossip(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => self.on_gossip(propagation_source, &message_id, &message.data),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.on_sync(event),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                if let Some(p) = self.peers.get_mut(&peer_id) {
                    for addr in info.listen_addrs.into_iter().take(MAX_ADDRS_PER_PEER) {
                        if !p.addrs.contains(&addr) && p.addrs.len() < MAX_ADDRS_PER_PEER {
                            p.addrs.push(addr);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn forget_requests_to(&mut self, peer: PeerId) {
        self.asking_heads.remove(&peer);
        let abandoned: Vec<MemberId> =
            self.fetching.iter().filter(|(_, p)| **p == peer).map(|(a, _)| *a).collect();
        for author in abandoned {
            self.fetch_ended(author, peer);
        }
    }

    fn on_gossip(&mut self, source: PeerId, id: &gossipsub::MessageId, data: &[u8]) {
        use gossipsub::MessageAcceptance::{Accept, Ignore, Reject};
        let outcome = Record::decode(data)
            .map_err(|e| IngestError::Invalid(e.into()))
            .and_then(|r| self.node.ingest(r));
        let acceptance = match outcome {
            Ok(Ingested::Stored { also }) => {
                if let Some(p) = self.peers.get_mut(&source) {
                    p.received += 1 + also.len() as u64;
                }
                Accept
            }
            Ok(Ingested::Duplicate) => Ignore,
            Ok(Ingested::Buffered { .. }) => {
                // A gap: fetch what is missing instead of waiting for the periodic round.
                self.ask_heads(source);
                Accept
            }
            // Forward evidence of equivocation so every node learns of it.
            Ok(Ingested::Equivocation) => Accept,
            Err(IngestError::Invalid(hashmesh_protocol::ValidationError::BrokenChain { .. })) => {
                // Validly signed but off our chain: the author forked earlier. The relaying
                // peer may be honest, so do not punish it; sync fetches the fork as evidence.
                self.ask_heads(source);
                Ignore
            }
            Err(IngestError::Invalid(e)) => {
                tracing::warn!(peer = %source, error = %e, "rejected gossip message");
                if let Some(p) = self.peers.get_mut(&source) {
                    p.rejects += 1;
                }
                Reject
            }
            Err(IngestError::Store(e)) => {
                tracing::error!(error = %e, "cannot store gossiped record");
                Ignore
            }
        };
        self.swarm.behaviour_mut().gossip.report_message_validation_result(id, &source, acceptance);
    }

    fn on_sync(&mut self, event: request_response::Event<SyncRequest, SyncResponse>) {
        use request_response::{Event, Message};
        match event {
            Event::Message { peer, message: Message::Request { request, channel, .. }, .. } => {
                let response = self.serve(request);
                if let (SyncResponse::Records(records), Some(p)) = (&response, self.peers.get_mut(&peer)) {
                    p.sent += records.len() as u64;
                }
                if self.swarm.behaviour_mut().sync.send_response(channel, response).is_err() {
                    tracing::debug!(%peer, "sync response not sent: connection closed");
                }
            }
            Event::Message { message: Message::Response { request_id, response }, .. } => {
                match self.pending.remove(&request_id) {
                    Some(Pending::Heads(peer)) => {
                        self.asking_heads.remove(&peer);
                        self.on_heads(peer, response);
                    }
                    Some(Pending::Range(peer, fetch)) => self.on_records(peer, fetch, response),
                    None => {}
                }
            }
            Event::OutboundFailure { peer, request_id, error, .. } => {
                tracing::debug!(%peer, %error, "sync request failed");
                match self.pending.remove(&request_id) {
                    Some(Pending::Heads(p)) => {
                        self.asking_heads.remove(&p);
                    }
                    Some(Pending::Range(p, fetch)) => self.fetch_ended(fetch.author, p),
                    None => {}
                }
            }
            _ => {}
        }
    }

    fn serve(&self, request: SyncRequest) -> SyncResponse {
        let store = self.node.store();
        match request {
            SyncRequest::Heads => match store.heads() {
                Ok(heads) => SyncResponse::Heads(sync::to_wire(&heads)),
                Err(e) => SyncResponse::Refused(e.to_string()),
            },
            SyncRequest::Range { author, from_seq, limit } => {
                let limit = limit.min(sync::BATCH) as usize;
                match store.range_bytes(&MemberId(author), from_seq.max(1), limit, sync::MAX_RESPONSE_BYTES) {
                    Ok(records) => {
                        SyncResponse::Records(records.into_iter().map(serde_bytes::ByteBuf::from).collect())
                    }
                    Err(e) => SyncResponse::Refused(e.to_string()),
                }
            }
        }
    }

    fn on_heads(&mut self, peer: PeerId, response: SyncResponse) {
        let SyncResponse::Heads(theirs) = response else {
            tracing::debug!(%peer, "peer answered Heads with something else");
            return;
        };
        let store = self.node.store();
        let Ok(mine) = store.heads() else { return };
        let in_sync = sync::same_clock(&mine, &theirs);
        if let Some(p) = self.peers.get_mut(&peer) {
            p.in_sync = in_sync;
        }
        if in_sync {
            return;
        }
        let manifest = self.node.manifest();
        let theirs: Vec<_> = theirs.into_iter().filter(|h| manifest.is_member(&MemberId(h.author))).collect();
        let mine: BTreeMap<_, _> = mine.into_iter().collect();
        let plan = sync::plan(&mine, &theirs, |author, seq| {
            store.get_at(author, seq).ok().flatten().map(|r| r.id())
        });
        for fetch in plan {
            if self.fetching.contains_key(&fetch.author) {
                self.recheck.insert(peer);
            } else {
                self.fetch(peer, fetch);
            }
        }
    }

    fn on_records(&mut self, peer: PeerId, fetch: Fetch, response: SyncResponse) {
        let SyncResponse::Records(records) = response else {
            tracing::debug!(%peer, ?response, "range refused");
            self.fetch_ended(fetch.author, peer);
            return;
        };
        let node = self.node.clone();
        let done = self.commands_tx.clone();
        // Verifying signatures is the costly part: do it off the event loop.
        tokio::spawn(async move {
            let outcome =
                tokio::task::spawn_blocking(move || ingest_batch(&node, peer, fetch, &records)).await;
            // Always report back, so the author is free to be fetched again.
            let batch = outcome.unwrap_or_else(|e| BatchDone {
                peer,
                fetch,
                received: 0,
                stored: 0,
                last_seq: None,
                rejected: Some(format!("ingest task failed: {e}")),
                fork_at: None,
            });
            let _ = done.send(Command::BatchDone(batch)).await;
        });
    }

    fn on_batch_done(&mut self, done: &BatchDone) {
        if let Some(p) = self.peers.get_mut(&done.peer) {
            p.received += done.stored;
            if done.rejected.is_some() {
                p.rejects += 1;
            }
        }
        if let Some(reason) = &done.rejected {
            tracing::warn!(peer = %done.peer, author = %done.fetch.author, %reason, "rejected synced record");
        }
        let still_ours = self.fetching.get(&done.fetch.author) == Some(&done.peer);
        if !still_ours {
            // The peer went away meanwhile and the author was handed to another peer.
            return;
        }
        let regular = done.fetch.limit == sync::BATCH;
        if let Some(seq) = done.fork_at.filter(|_| regular) {
            // The peer's log forks from ours below this seq: fetch its record there, which the
            // store keeps as evidence of equivocation. That single fetch ends the exchange for
            // this author; the next round will not plan past a fork it cannot extend.
            self.fetch(
                done.peer,
                Fetch { author: done.fetch.author, from_seq: seq.saturating_sub(1).max(1), limit: 1 },
            );
        } else if regular
            && done.rejected.is_none()
            && done.fork_at.is_none()
            && done.received == done.fetch.limit as usize
        {
            let from_seq = done.last_seq.map_or(done.fetch.from_seq, |s| s + 1);
            self.fetch(done.peer, Fetch { from_seq, ..done.fetch });
        } else {
            if done.stored > 0 {
                self.ask_heads(done.peer);
            }
            self.fetch_ended(done.fetch.author, done.peer);
        }
    }
}

/// Verifies and stores one fetched batch, in order; stops at the first bad record.
fn ingest_batch(
    node: &NodeHandle,
    peer: PeerId,
    fetch: Fetch,
    records: &[serde_bytes::ByteBuf],
) -> BatchDone {
    let mut done = BatchDone {
        peer,
        fetch,
        received: records.len(),
        stored: 0,
        last_seq: None,
        rejected: None,
        fork_at: None,
    };
    let mut decoded = Vec::with_capacity(records.len());
    for bytes in records {
        match Record::decode(bytes) {
            Ok(r) if r.author() == fetch.author => decoded.push(r),
            Ok(r) => {
                done.rejected =
                    Some(format!("asked for {}'s log, got a record by {}", fetch.author, r.author()));
                break;
            }
            Err(e) => {
                done.rejected = Some(e.to_string());
                break;
            }
        }
    }
    let checks = verify_all(&decoded);
    let mut verified = Vec::with_capacity(decoded.len());
    for (record, check) in decoded.into_iter().zip(checks) {
        if let Err(e) = check {
            done.rejected = Some(e.to_string());
            break;
        }
        verified.push(record);
    }
    let signature_error = done.rejected.take();
    let outcome = node.ingest_run(verified);
    done.stored = outcome.stored;
    done.last_seq = outcome.last_seq;
    match outcome.error {
        Some(IngestError::Invalid(hashmesh_protocol::ValidationError::BrokenChain { seq, .. })) => {
            done.fork_at = Some(seq);
        }
        Some(e) => done.rejected = Some(e.to_string()),
        None => done.rejected = signature_error,
    }
    done
}

/// Checks every signature (`verify_strict`), spread over the machine's cores: signature
/// checks are much of what limits catch-up speed. A batch is one author's, so the author's key
/// is decompressed once.
fn verify_all(records: &[Record]) -> Vec<Result<(), hashmesh_protocol::ValidationError>> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get).min(8);
    let chunk = records.len().div_ceil(threads).max(1);
    let key = records.first().and_then(|r| r.author().verifying_key());
    let check = |r: &Record| match &key {
        Some(key) => r.verify_signature_with(key),
        None => r.verify_signature(),
    };
    std::thread::scope(|scope| {
        let workers: Vec<_> = records
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(check).collect::<Vec<_>>()))
            .collect();
        // Results stop at a worker that panicked, so the caller's zip stops there and the
        // rest of the batch is fetched again later.
        let mut checks = Vec::with_capacity(records.len());
        for worker in workers {
            match worker.join() {
                Ok(part) => checks.extend(part),
                Err(_) => break,
            }
        }
        checks
    })
}
