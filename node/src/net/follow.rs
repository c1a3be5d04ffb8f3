//! A follower (`hashmesh run --follow URL`): a read-only replica of its own member's node,
//! pulled over that node's RPC (`POST /v1/sync`) instead of libp2p, for members whose
//! matching outgrows one node.
//!
//! It runs the sync [`Engine`] a member node runs, with one peer — the member node — and
//! stores what arrives through the same [`ingest`] stages, so a follower checks every record
//! (signature, membership, chain) exactly as catch-up from a peer would. Asking for heads is a
//! long poll: the member node answers as soon as its clock differs from the one the follower
//! last saw, or after [`LONG_POLL`] with the same clock, so a new record reaches followers in
//! one round trip and an idle follower costs one request per long poll.
//!
//! The follower serves the node's [`Client`] as the libp2p event loop does, with the member
//! node as its only peer. It publishes nothing: it never authors, and its member node already
//! gossips every proof it holds.

use std::time::Duration;

use libp2p::PeerId;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::ingest::{self, Job};
use super::{COMMAND_QUEUE, Client, Command, PeerView};
use crate::node::now_ms;
use crate::replica::ReplicaHandle;
use crate::sync::{
    Clock, Engine, Event, Fetch, Output, OwnLog, Purpose, SyncRequest, SyncResponse, digest, wire,
};

/// Longest a member node holds a heads request open while its clock stays the same.
pub const LONG_POLL: Duration = Duration::from_secs(20);
/// Path of the sync endpoint on a member node's RPC.
pub const SYNC_PATH: &str = "/v1/sync";
/// Media type of the sync messages over HTTP.
pub const CBOR: &str = "application/cbor";

/// What a follower needs to start.
pub struct FollowSettings {
    /// The member node's RPC base URL, e.g. `http://member-node:7800`.
    pub node: String,
    /// A token of the member node's (the matcher role suffices).
    pub token: String,
    /// This node's own peer id (followers are not in the manifest; it only names the node).
    pub peer_id: PeerId,
    /// How long the member node may take to answer a range request.
    pub request_timeout: Duration,
    /// The roots to trust for an https member node.
    pub tls: ureq::tls::TlsConfig,
    /// The sync engine, configured.
    pub engine: Engine<PeerId>,
    /// Where to publish the own log's state (a follower never authors).
    pub own_log: watch::Sender<OwnLog>,
}

/// Starts the follower task, replicating `replica` from the member node.
pub fn spawn(
    replica: ReplicaHandle,
    settings: FollowSettings,
    cancel: CancellationToken,
) -> (Client, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    let client = Client { commands: tx.clone(), peer_id: settings.peer_id };
    let follower = Follower::new(replica, settings, tx, rx);
    let task = tokio::spawn(tracing::Instrument::in_current_span(follower.run(cancel)));
    (client, task)
}

/// The member node's RPC, spoken blocking (call it on a blocking thread).
#[derive(Clone)]
struct Upstream {
    agent: ureq::Agent,
    url: String,
    token: String,
}

impl Upstream {
    /// Sends `request`; with `after`, a heads request waits until the member node's clock
    /// digest differs from it.
    fn call(&self, request: &SyncRequest, after: Option<[u8; 32]>) -> Result<SyncResponse, String> {
        let body = cbor4ii::serde::to_vec(Vec::new(), request).map_err(|e| e.to_string())?;
        let url = match after {
            Some(d) => format!("{}{SYNC_PATH}?after={}", self.url, hex::encode(d)),
            None => format!("{}{SYNC_PATH}", self.url),
        };
        let response = self
            .agent
            .post(&url)
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Content-Type", CBOR)
            .send(&body[..])
            .map_err(|e| format!("{url}: {e}"))?;
        let status = response.status();
        let bytes = response
            .into_body()
            .with_config()
            .limit(wire::MAX_WIRE_RESPONSE_BYTES as u64)
            .read_to_vec()
            .map_err(|e| format!("{url}: reading the answer: {e}"))?;
        if !status.is_success() {
            let error = serde_json::from_slice::<crate::api::ErrorBody>(&bytes)
                .map_or_else(|_| String::from_utf8_lossy(&bytes).into_owned(), |b| b.error);
            return Err(format!("{url} answered {status}: {error}"));
        }
        cbor4ii::serde::from_slice(&bytes).map_err(|e| format!("{url}: the answer does not decode: {e}"))
    }
}

/// What the follower knows of its member node.
#[derive(Default)]
struct Node {
    /// Its clock at its last heads answer.
    clock: Option<Clock>,
    /// Its epoch and manifest digest then.
    epoch: Option<(u64, [u8; 32])>,
    /// Since when its answers have been coming (unix ms); `None` while it cannot be reached.
    reachable_since: Option<u64>,
    /// Whether the current stretch of failures was logged (once per stretch, not per retry).
    warned: bool,
    received: u64,
    rejects: u64,
}

struct Follower {
    replica: ReplicaHandle,
    engine: Engine<PeerId>,
    upstream: Upstream,
    /// Names the member node in the engine (a label: the node is reached by URL).
    label: PeerId,
    node: Node,
    commands_tx: mpsc::Sender<Command>,
    commands: mpsc::Receiver<Command>,
    ingest: mpsc::Sender<Job>,
    own_log: watch::Sender<OwnLog>,
    started: Instant,
}

impl Follower {
    fn new(
        replica: ReplicaHandle,
        settings: FollowSettings,
        commands_tx: mpsc::Sender<Command>,
        commands: mpsc::Receiver<Command>,
    ) -> Self {
        let FollowSettings { node, token, request_timeout, tls, engine, own_log, .. } = settings;
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(tls)
            .timeout_global(Some(LONG_POLL + request_timeout))
            .build()
            .new_agent();
        let upstream = Upstream { agent, url: node.trim_end_matches('/').to_owned(), token };
        let _ = own_log.send(engine.own_log());
        Self {
            ingest: ingest::spawn(replica.clone(), commands_tx.clone()),
            replica,
            engine,
            upstream,
            label: PeerId::random(),
            node: Node::default(),
            commands_tx,
            commands,
            own_log,
            started: Instant::now(),
        }
    }

    async fn run(mut self, cancel: CancellationToken) {
        tracing::info!(node = %self.upstream.url, "following the member node");
        let mut manifest = self.replica.manifest();
        manifest.mark_unchanged();
        // Each tick asks again if the last heads request failed (a long poll in flight makes it
        // a no-op), so a follower is back within a second of its member node.
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        self.step(Event::Connected(self.label));
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                Some(command) = self.commands.recv() => self.on_command(command),
                Ok(()) = manifest.changed() => {
                    let keys = manifest.borrow_and_update().log_keys();
                    self.engine.set_members(keys);
                    self.step(Event::Tick(self.started.elapsed()));
                }
                _ = tick.tick() => self.step(Event::Tick(self.started.elapsed())),
            }
        }
        tracing::debug!("follower stopped");
    }

    /// Feeds the engine one event and carries out what it says.
    fn step(&mut self, event: Event<PeerId>) {
        let local = super::event_loop::Snapshot::of(&self.replica);
        for output in self.engine.handle(event, &local) {
            match output {
                Output::AskHeads(_) => {
                    let after = self.node.clock.as_ref().map(digest);
                    self.ask(None, SyncRequest::Heads, after);
                }
                Output::Send(_, fetch) => self.ask(Some(fetch), fetch.request(), None),
                Output::Strike(_, reason) => {
                    tracing::warn!(node = %self.upstream.url, %reason, "the member node sent a wrong sync answer");
                    self.node.rejects += 1;
                }
                Output::OwnLog(state) => {
                    let _ = self.own_log.send(state);
                }
            }
        }
    }

    /// Sends a request on a blocking thread; the answer comes back as a command.
    fn ask(&self, fetch: Option<Fetch>, request: SyncRequest, after: Option<[u8; 32]>) {
        let upstream = self.upstream.clone();
        let done = self.commands_tx.clone();
        tokio::spawn(async move {
            let answer = tokio::task::spawn_blocking(move || upstream.call(&request, after))
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
            let _ = done.send(Command::Upstream(fetch, answer)).await;
        });
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Upstream(fetch, Ok(response)) => {
                if self.node.reachable_since.is_none() {
                    tracing::info!(node = %self.upstream.url, "member node reachable");
                    self.node.reachable_since = Some(now_ms());
                    self.node.warned = false;
                }
                self.on_response(fetch, response);
            }
            Command::Upstream(fetch, Err(error)) => {
                self.node.reachable_since = None;
                if !self.node.warned {
                    self.node.warned = true;
                    tracing::warn!(node = %self.upstream.url, %error, "member node not answering; asking again every second");
                }
                match fetch {
                    None => self.step(Event::HeadsFailed(self.label)),
                    Some(fetch) => self.step(Event::Failed(self.label, fetch)),
                }
            }
            Command::Done(_, fetch, result) => {
                if let crate::sync::FetchResult::Stored { new, .. } = &result {
                    self.node.received += new;
                }
                self.step(Event::Done(self.label, fetch, result));
            }
            Command::Failed(_, fetch) => self.step(Event::Failed(self.label, fetch)),
            Command::Peers(reply) => {
                let _ = reply.send(vec![self.view()]);
            }
            Command::ListenAddrs(reply) => {
                let _ = reply.send(Vec::new());
            }
            Command::Refused(reply) => {
                let _ = reply.send(0);
            }
            Command::SyncNow => self.step(Event::Tick(self.started.elapsed())),
            // A follower publishes nothing, dials no one and serves no peer.
            Command::Publish(_)
            | Command::PublishProof(_)
            | Command::AddAddress(..)
            | Command::Cut(_)
            | Command::Restore(_)
            | Command::Validated { .. }
            | Command::Respond { .. } => {}
        }
    }

    fn on_response(&mut self, fetch: Option<Fetch>, response: SyncResponse) {
        match (fetch, response) {
            (None, SyncResponse::Heads { clock, epoch, manifest }) => {
                let ours = self.replica.manifest().borrow().clone();
                if epoch == ours.epoch && manifest != ours.digest() && self.node.epoch.is_none() {
                    tracing::warn!(node = %self.upstream.url, epoch, "the member node has another manifest for this epoch: was this follower's data dir made with `init --manifest` from the federation's genesis manifest?");
                }
                self.node.clock = Some(clock.clone());
                self.node.epoch = Some((epoch, manifest));
                self.step(Event::Heads(self.label, clock));
                // The next long poll: answered when the member node's clock moves on.
                self.step(Event::Compare(self.label));
            }
            (None, _) => self.step(Event::HeadsFailed(self.label)),
            (Some(fetch), SyncResponse::Records(records)) if fetch.purpose != Purpose::Proof => {
                self.step(Event::Arrived(self.label, fetch, records.len()));
                self.hand_over(fetch, Job::Range { peer: self.label, fetch, records });
            }
            (Some(fetch), SyncResponse::Proof(bytes)) if fetch.purpose == Purpose::Proof => {
                self.step(Event::Arrived(self.label, fetch, 1));
                self.hand_over(fetch, Job::Proof { peer: self.label, fetch, bytes });
            }
            (Some(fetch), response) => {
                tracing::debug!(?fetch, ?response, "sync request refused by the member node");
                self.step(Event::Failed(self.label, fetch));
            }
        }
    }

    /// Hands an answer to the ingest stages without waiting (they report back through this
    /// task); if they are backed up the fetch fails and is asked again.
    fn hand_over(&mut self, fetch: Fetch, job: Job) {
        if self.ingest.try_send(job).is_err() {
            self.step(Event::Failed(self.label, fetch));
        }
    }

    /// The member node as `GET /v1/peers` shows it. In sync means this replica holds all the
    /// member node held at its last answer — compared now, since after catching up the next
    /// answer comes only once the member node moves on.
    fn view(&self) -> PeerView {
        let in_sync = self.node.clock.as_ref().is_some_and(|theirs| *theirs == self.replica.clock());
        PeerView {
            peer_id: self.upstream.url.clone(),
            member: None,
            address: Some(self.upstream.url.clone()),
            connected_since: self.node.reachable_since,
            records_received: self.node.received,
            records_sent: 0,
            rejects: self.node.rejects,
            in_sync,
            epoch: self.node.epoch.map(|(e, _)| e),
            manifest_digest: self.node.epoch.map(|(_, d)| hex::encode(d)),
        }
    }
}
