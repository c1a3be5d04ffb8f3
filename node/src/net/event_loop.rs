//! The task that owns the swarm. It dials and redials members, and translates: swarm events
//! into sync [`Event`]s, the engine's [`Output`]s into requests, answers into ingest jobs.
//! Nothing here waits: serving reads the store on blocking threads, ingesting runs in the
//! [`ingest`](super::ingest) stages (handed over without waiting, since they report back
//! here), so the swarm is always polled and nothing can deadlock on this task.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use hashmesh_protocol::{Manifest, MemberId, RecordId};
use libp2p::metrics::Recorder;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::SwarmEvent;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::{Multiaddr, PeerId, Swarm, gossipsub, identify, noise, tcp, yamux};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::behaviour::{Behaviour, BehaviourEvent};
use super::ingest::{self, Job, Verdict};
use super::peers::{Peer, Peers};
use super::{Command, MIN_BACKOFF, NetError, Settings};
use crate::node::now_ms;
use crate::replica::ReplicaHandle;
use crate::store::Store;
use crate::sync::{Clock, Engine, Event, Fetch, Local, Output, OwnLog, Purpose, SyncRequest, SyncResponse};

/// Most dial addresses remembered per peer (manifest, identify and operator together).
const MAX_ADDRS_PER_PEER: usize = 16;
/// Requests from one peer served at once; more are refused until one is done.
const MAX_SERVING_PER_PEER: usize = 4;

pub(crate) struct EventLoop {
    swarm: Swarm<Behaviour>,
    replica: ReplicaHandle,
    engine: Engine<PeerId>,
    records_topic: gossipsub::IdentTopic,
    proofs_topic: gossipsub::IdentTopic,
    peers: Peers,
    listen: Vec<Multiaddr>,
    commands_tx: mpsc::Sender<Command>,
    commands: mpsc::Receiver<Command>,
    ingest: mpsc::Sender<Job>,
    own_log: watch::Sender<OwnLog>,
    sync_interval: Duration,
    max_backoff: Duration,
    started: Instant,
    pending: HashMap<OutboundRequestId, (PeerId, Option<Fetch>)>,
    serving: HashMap<PeerId, Arc<AtomicUsize>>,
    refused_connections: u64,
    manifest: watch::Receiver<Manifest>,
    /// libp2p's swarm, identify, ping and gossipsub families, recorded from the events here.
    metrics: libp2p::metrics::Metrics,
}

/// The replica as the engine sees it at one moment.
pub(super) struct Snapshot<'a> {
    clock: Clock,
    store: &'a Store,
}

impl<'a> Snapshot<'a> {
    pub(super) fn of(replica: &'a ReplicaHandle) -> Self {
        Self { clock: replica.clock(), store: replica.store() }
    }
}

impl Local for Snapshot<'_> {
    fn clock(&self) -> &Clock {
        &self.clock
    }

    fn id_at(&self, author: &MemberId, seq: u64) -> Option<RecordId> {
        self.store.get_at(author, seq).ok().flatten().map(|r| r.id())
    }
}

impl EventLoop {
    pub(crate) fn new(
        replica: ReplicaHandle,
        settings: Settings,
        registry: &mut prometheus_client::registry::Registry,
        commands_tx: mpsc::Sender<Command>,
        commands: mpsc::Receiver<Command>,
    ) -> Result<Self, NetError> {
        let Settings { key, config, manifest, engine, own_log } = settings;
        let member_peers = manifest.members.iter().map(|m| m.peers.len() as u32).sum::<u32>();
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
            .with_tokio()
            .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
            .map_err(|e| NetError::Build(e.to_string()))?
            .with_bandwidth_metrics(registry)
            .with_behaviour(|k| {
                Behaviour::new(k, member_peers, config.request_timeout, registry).map_err(Box::from)
            })
            .map_err(|e| NetError::Build(e.to_string()))?
            // Member connections are long-lived; keep them even when quiet.
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(24 * 3600)))
            .build();
        for addr in &config.listen {
            let parsed: Multiaddr = addr.parse().map_err(|_| NetError::BadListenAddress(addr.clone()))?;
            swarm
                .listen_on(parsed)
                .map_err(|e| NetError::Listen { addr: addr.clone(), message: crate::error_chain(&e) })?;
        }
        let records_topic = gossipsub::IdentTopic::new(format!("hashmesh/{}/records/1", manifest.name));
        let proofs_topic = gossipsub::IdentTopic::new(format!("hashmesh/{}/proofs/1", manifest.name));
        for topic in [&records_topic, &proofs_topic] {
            swarm.behaviour_mut().gossip.subscribe(topic).map_err(|e| NetError::Build(e.to_string()))?;
        }
        let ingest = ingest::spawn(replica.clone(), commands_tx.clone());
        let _ = own_log.send(engine.own_log());
        let mut manifest_changes = replica.manifest();
        manifest_changes.mark_unchanged();
        let mut event_loop = Self {
            swarm,
            replica,
            engine,
            records_topic,
            proofs_topic,
            peers: Peers::new(),
            manifest: manifest_changes,
            listen: Vec::new(),
            commands_tx,
            commands,
            ingest,
            own_log,
            sync_interval: config.sync_interval,
            max_backoff: config.max_redial_backoff,
            started: Instant::now(),
            pending: HashMap::new(),
            serving: HashMap::new(),
            refused_connections: 0,
            metrics: libp2p::metrics::Metrics::new(registry),
        };
        event_loop.apply_manifest(&manifest);
        Ok(event_loop)
    }

    /// Lets in exactly the peers `manifest` lists and reads clocks for exactly its keys: at
    /// start, and whenever a membership epoch takes effect. A peer no longer listed (its
    /// member was removed, or moved to other nodes) is disconnected at once.
    fn apply_manifest(&mut self, manifest: &Manifest) {
        let me = *self.swarm.local_peer_id();
        let mut listed: HashMap<PeerId, (&str, Vec<Multiaddr>)> = HashMap::new();
        for member in &manifest.members {
            for text in &member.peers {
                let Ok(peer) = text.parse::<PeerId>() else {
                    tracing::warn!(member = %member.name, peer = %text, "manifest lists a peer id that does not parse; ignoring it");
                    continue;
                };
                if peer != me {
                    // Addresses are per member; with several nodes per member each is tried.
                    listed.insert(
                        peer,
                        (&member.name, member.addresses.iter().filter_map(|a| a.parse().ok()).collect()),
                    );
                }
            }
        }
        let gone: Vec<PeerId> = self.peers.keys().filter(|p| !listed.contains_key(p)).copied().collect();
        for peer in gone {
            let member = self.peers.remove(&peer).and_then(|p| p.member);
            self.swarm.behaviour_mut().allow.disallow_peer(peer);
            tracing::info!(%peer, member = member.as_deref().unwrap_or("?"), epoch = manifest.epoch, "peer is no longer in the manifest: disconnected");
        }
        for (peer, (name, addrs)) in listed {
            let entry = self.peers.entry(peer).or_insert_with(|| Peer::new(None));
            entry.member = Some(name.to_owned());
            for addr in addrs {
                if !entry.addrs.contains(&addr) && entry.addrs.len() < MAX_ADDRS_PER_PEER {
                    entry.addrs.push(addr);
                }
            }
            if !entry.cut {
                self.swarm.behaviour_mut().allow.allow_peer(peer);
            }
        }
        self.engine.set_members(manifest.log_keys());
    }

    pub(crate) async fn run(mut self, cancel: CancellationToken) {
        let mut dial_tick = tokio::time::interval(Duration::from_millis(200));
        // The engine's clock ticks at least once a second, for the own-log timeout; peers are
        // asked for their clocks every sync_interval.
        let mut tick = tokio::time::interval(self.sync_interval.min(Duration::from_secs(1)));
        let mut last_round = Instant::now();
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                event = self.swarm.select_next_some() => self.on_swarm(event),
                Some(command) = self.commands.recv() => self.on_command(command),
                Ok(()) = self.manifest.changed() => {
                    let manifest = self.manifest.borrow_and_update().clone();
                    self.apply_manifest(&manifest);
                    // New keys' logs and cut ones: compare clocks with everyone now.
                    self.step(Event::Tick(self.started.elapsed()));
                }
                _ = dial_tick.tick() => self.redial(),
                _ = tick.tick() => {
                    if last_round.elapsed() >= self.sync_interval {
                        last_round = Instant::now();
                        self.step(Event::Tick(self.started.elapsed()));
                    } else {
                        self.own_log_tick();
                    }
                }
            }
        }
        tracing::debug!("network stopped");
    }

    /// Feeds the engine one event and carries out what it says.
    fn step(&mut self, event: Event<PeerId>) {
        let local = Snapshot::of(&self.replica);
        let outputs = self.engine.handle(event, &local);
        for output in outputs {
            match output {
                Output::AskHeads(peer) => {
                    let id = self.swarm.behaviour_mut().sync.send_request(&peer, SyncRequest::Heads);
                    self.pending.insert(id, (peer, None));
                }
                Output::Send(peer, fetch) => {
                    let id = self.swarm.behaviour_mut().sync.send_request(&peer, fetch.request());
                    self.pending.insert(id, (peer, Some(fetch)));
                }
                Output::Strike(peer, reason) => {
                    tracing::warn!(%peer, %reason, "peer sent a wrong sync answer");
                    if let Some(p) = self.peers.get_mut(&peer) {
                        p.rejects += 1;
                    }
                }
                Output::OwnLog(state) => {
                    match state {
                        OwnLog::Confirmed => tracing::info!("own log confirmed by peers; accepting writes"),
                        OwnLog::Unconfirmed => tracing::warn!(
                            "no peer reachable within p2p.own_log_timeout; accepting writes unconfirmed (p2p.start_unconfirmed = true)"
                        ),
                        OwnLog::Stuck => tracing::warn!(
                            "no peer reachable within p2p.own_log_timeout: own writes stay refused until a peer confirms this node's own log (set p2p.start_unconfirmed = true to write anyway)"
                        ),
                        OwnLog::Waiting => {}
                    }
                    let _ = self.own_log.send(state);
                }
            }
        }
    }

    /// Lets the engine see time pass without starting a sync round.
    fn own_log_tick(&mut self) {
        if self.engine.own_log() == OwnLog::Waiting {
            self.step(Event::Tick(self.started.elapsed()));
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Publish(bytes) => self.publish(true, bytes),
            Command::PublishProof(bytes) => self.publish(false, bytes),
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
            Command::SyncNow => self.step(Event::Tick(self.started.elapsed())),
            Command::Done(peer, fetch, result) => {
                if let (crate::sync::FetchResult::Stored { new, .. }, Some(p)) =
                    (&result, self.peers.get_mut(&peer))
                {
                    p.received += new;
                }
                self.step(Event::Done(peer, fetch, result));
            }
            Command::Failed(peer, fetch) => self.step(Event::Failed(peer, fetch)),
            Command::Validated { peer, id, verdict } => self.validated(peer, &id, verdict),
            // Only a follower asks a member node over the RPC.
            Command::Upstream(..) => {}
            Command::Respond { peer, channel, response } => {
                if let (SyncResponse::Records(records), Some(p)) = (&response, self.peers.get_mut(&peer)) {
                    p.sent += records.len() as u64;
                }
                if self.swarm.behaviour_mut().sync.send_response(channel, response).is_err() {
                    tracing::debug!(%peer, "sync response not sent: connection closed");
                }
            }
        }
    }

    fn publish(&mut self, record: bool, bytes: Vec<u8>) {
        let topic = if record { self.records_topic.clone() } else { self.proofs_topic.clone() };
        if let Err(e) = self.swarm.behaviour_mut().gossip.publish(topic, bytes) {
            tracing::debug!(error = %e, "gossip publish skipped; peers will sync");
        }
    }

    fn validated(&mut self, peer: PeerId, id: &gossipsub::MessageId, verdict: Verdict) {
        use gossipsub::MessageAcceptance::{Accept, Ignore, Reject};
        let acceptance = match verdict {
            Verdict::Accept => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.received += 1;
                }
                Accept
            }
            Verdict::Ignore => Ignore,
            Verdict::Gap | Verdict::Conflict => {
                // Something is missing or forked: compare clocks with the sender now.
                self.step(Event::Compare(peer));
                Accept
            }
            Verdict::Reject(reason) => {
                tracing::warn!(%peer, %reason, "rejected gossip message");
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.rejects += 1;
                }
                Reject
            }
        };
        self.swarm.behaviour_mut().gossip.report_message_validation_result(id, &peer, acceptance);
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

    fn on_swarm(&mut self, event: SwarmEvent<BehaviourEvent>) {
        self.metrics.record(&event);
        match &event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossip(e)) => self.metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(e)) => self.metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(e)) => self.metrics.record(e),
            _ => {}
        }
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
                    tracing::info!(peer = %peer_id, member = p.member.as_deref().unwrap_or("?"), "member connected");
                }
                self.step(Event::Connected(peer_id));
            }
            SwarmEvent::ConnectionClosed { peer_id, num_established, .. } => {
                if let Some(p) = self.peers.get_mut(&peer_id) {
                    p.connections = num_established;
                    if num_established == 0 {
                        p.connected = None;
                        p.in_sync = false;
                        p.next_dial = Instant::now() + p.backoff;
                        tracing::info!(peer = %peer_id, member = p.member.as_deref().unwrap_or("?"), "member disconnected");
                    }
                }
                if num_established == 0 {
                    self.pending.retain(|_, (peer, _)| *peer != peer_id);
                    self.step(Event::Disconnected(peer_id));
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
                propagation_source: peer,
                message_id: id,
                message,
            })) => {
                let job = if message.topic == self.proofs_topic.hash() {
                    Job::GossipProof { peer, id: id.clone(), bytes: message.data }
                } else {
                    Job::Gossip { peer, id: id.clone(), bytes: message.data }
                };
                if self.ingest.try_send(job).is_err() {
                    // Ingest is backed up: drop the message unforwarded; catch-up sync brings
                    // the record anyway.
                    self.validated(peer, &id, Verdict::Ignore);
                }
            }
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

    fn on_sync(&mut self, event: request_response::Event<SyncRequest, SyncResponse>) {
        use request_response::{Event as Rr, Message};
        match event {
            Rr::Message { peer, message: Message::Request { request, channel, .. }, .. } => {
                self.serve(peer, request, channel);
            }
            Rr::Message { message: Message::Response { request_id, response }, .. } => {
                let Some((peer, fetch)) = self.pending.remove(&request_id) else { return };
                self.on_response(peer, fetch, response);
            }
            Rr::OutboundFailure { peer, request_id, error, .. } => {
                tracing::debug!(%peer, %error, "sync request failed");
                match self.pending.remove(&request_id) {
                    Some((peer, None)) => self.step(Event::HeadsFailed(peer)),
                    Some((peer, Some(fetch))) => self.step(Event::Failed(peer, fetch)),
                    None => {}
                }
            }
            _ => {}
        }
    }

    fn on_response(&mut self, peer: PeerId, fetch: Option<Fetch>, response: SyncResponse) {
        match (fetch, response) {
            (None, SyncResponse::Heads { clock: theirs, epoch, manifest }) => {
                let in_sync = theirs == self.replica.clock();
                let ours = self.manifest.borrow().clone();
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.in_sync = in_sync;
                    if p.epoch != Some((epoch, manifest)) {
                        if epoch != ours.epoch {
                            // The records bring whichever side is behind forward.
                            tracing::info!(%peer, member = p.member.as_deref().unwrap_or("?"), theirs = epoch, ours = ours.epoch, "peer is on another membership epoch");
                        } else if manifest != ours.digest() {
                            tracing::warn!(%peer, member = p.member.as_deref().unwrap_or("?"), epoch, "peer has a different manifest for the same epoch: check that both nodes started from the same genesis manifest");
                        }
                    }
                    p.epoch = Some((epoch, manifest));
                }
                self.step(Event::Heads(peer, theirs));
            }
            (None, _) => self.step(Event::HeadsFailed(peer)),
            (Some(fetch), SyncResponse::Records(records)) if fetch.purpose != Purpose::Proof => {
                self.step(Event::Arrived(peer, fetch, records.len()));
                self.hand_over(peer, fetch, Job::Range { peer, fetch, records });
            }
            (Some(fetch), SyncResponse::Proof(bytes)) if fetch.purpose == Purpose::Proof => {
                self.step(Event::Arrived(peer, fetch, 1));
                self.hand_over(peer, fetch, Job::Proof { peer, fetch, bytes });
            }
            (Some(fetch), response) => {
                tracing::debug!(%peer, ?fetch, ?response, "sync request refused");
                self.step(Event::Failed(peer, fetch));
            }
        }
    }

    /// Hands an answer to the ingest stages. Never waits: the ingest stages report back
    /// through this loop, so waiting here for them could deadlock. If they are backed up, the
    /// fetch fails and is asked again later.
    fn hand_over(&mut self, peer: PeerId, fetch: Fetch, job: Job) {
        if self.ingest.try_send(job).is_err() {
            tracing::debug!(%peer, "ingest is backed up; fetch dropped for now");
            self.step(Event::Failed(peer, fetch));
        }
    }

    /// Answers a request on a blocking thread; the answer comes back as a command.
    fn serve(&mut self, peer: PeerId, request: SyncRequest, channel: ResponseChannel<SyncResponse>) {
        let busy = Arc::clone(self.serving.entry(peer).or_default());
        if busy.fetch_add(1, Ordering::SeqCst) >= MAX_SERVING_PER_PEER {
            busy.fetch_sub(1, Ordering::SeqCst);
            let refusal = SyncResponse::Refused("too many requests at once; try again later".into());
            let _ = self.swarm.behaviour_mut().sync.send_response(channel, refusal);
            return;
        }
        let replica = self.replica.clone();
        let done = self.commands_tx.clone();
        tokio::spawn(async move {
            let response = tokio::task::spawn_blocking(move || replica.answer(request))
                .await
                .unwrap_or_else(|e| SyncResponse::Refused(format!("could not answer: {e}")));
            busy.fetch_sub(1, Ordering::SeqCst);
            let _ = done.send(Command::Respond { peer, channel, response }).await;
        });
    }
}
