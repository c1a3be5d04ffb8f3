//! A running node: its replica, its RPC server and (once started) its network, and the
//! [`NodeHandle`] through which the RPC and the tests act on it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use ed25519_dalek::SigningKey;
use hashmesh_protocol::{
    Action, Body, Entry, Fingerprint, FingerprintKind, Manifest, MemberId, Record, RecordId, Retract, Status,
    Vote,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::api::{
    CastVote, EntryFilter, EntryPage, EntryView, Hit, LogHead, MatchResult, RetractEntry, StatusView,
    SubmitEntry, VoteView, Written,
};
use crate::config::{Config, TokenConfig};
use crate::hashers::Computed;
use crate::replica::{AuthorError, EntryState, Replica};
use crate::store::{Store, StoreError};
use crate::{identity, net, rpc};

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The config could not be read.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The key could not be read.
    #[error(transparent)]
    Key(#[from] identity::KeyError),
    /// The manifest could not be read.
    #[error("cannot read the manifest {path}: {message}")]
    Manifest {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// This node's key is not in the manifest.
    #[error("this node's member key {0} is not in the manifest: add it, or use the key the manifest lists")]
    NotMember(MemberId),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The network could not start.
    #[error(transparent)]
    Net(#[from] net::NetError),
    /// The RPC port could not be bound.
    #[error(
        "cannot listen for RPC on {addr}: {source} (is the port in use? set rpc.listen in config.toml or pass --rpc-listen)"
    )]
    RpcBind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Why a request could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// No entry with this id.
    #[error("no entry with id {0} is known to this node")]
    UnknownEntry(RecordId),
    /// Members vote on other members' entries only.
    #[error("entry {0} was submitted by this member: members vote only on other members' entries")]
    OwnEntry(RecordId),
    /// Only the author retracts.
    #[error("entry {0} belongs to another member: only its author can retract it (vote `dispute` instead)")]
    NotAuthor(RecordId),
    /// Already retracted.
    #[error("entry {0} is already retracted")]
    AlreadyRetracted(RecordId),
    /// The record breaks a protocol rule.
    #[error("{0}")]
    Invalid(String),
    /// Storage failed.
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
}

impl From<AuthorError> for NodeError {
    fn from(e: AuthorError) -> Self {
        match e {
            AuthorError::Invalid(v) => Self::Invalid(v.to_string()),
            AuthorError::Store(s) => Self::Store(s),
        }
    }
}

pub(crate) struct Shared {
    replica: Mutex<Replica>,
    key: SigningKey,
    me: MemberId,
    manifest: Manifest,
    pub(crate) tokens: Vec<TokenConfig>,
    pub(crate) max_body_bytes: usize,
    /// One image-hashing job per core at a time, so concurrent uploads cannot exhaust memory.
    pub(crate) hashing: tokio::sync::Semaphore,
    net: OnceLock<net::Client>,
}

/// A cheap-to-clone handle on a node: everything the RPC and tests may ask of it.
#[derive(Clone)]
pub struct NodeHandle {
    pub(crate) shared: Arc<Shared>,
}

/// A started node; dropping it does not stop it, [`RunningNode::shutdown`] does.
pub struct RunningNode {
    handle: NodeHandle,
    rpc_addr: SocketAddr,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

/// Unix time in ms.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Reads a manifest file.
pub fn read_manifest(path: &Path) -> Result<Manifest, StartError> {
    let fail = |message: String| StartError::Manifest { path: path.to_owned(), message };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    Manifest::from_toml(&text).map_err(|e| fail(e.to_string()))
}

impl RunningNode {
    /// Opens the data dir and starts the node's tasks.
    pub async fn start(data_dir: &Path, config: Config) -> Result<Self, StartError> {
        let key = identity::load(&data_dir.join(&config.key_file))?;
        let manifest = read_manifest(&data_dir.join(&config.manifest))?;
        let me = MemberId::from_key(&key.verifying_key());
        if !manifest.is_member(&me) {
            return Err(StartError::NotMember(me));
        }
        let store = Store::open(&data_dir.join(&config.db), &manifest.name, me)?;
        let replica = Replica::load(store, manifest.clone())?;
        tracing::info!(federation = %manifest.name, member = %me, records = replica.store().len(), "replica loaded");
        let handle = NodeHandle {
            shared: Arc::new(Shared {
                replica: Mutex::new(replica),
                key,
                me,
                manifest,
                tokens: config.rpc.tokens.clone(),
                max_body_bytes: config.rpc.max_body_bytes,
                hashing: tokio::sync::Semaphore::new(
                    std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
                ),
                net: OnceLock::new(),
            }),
        };
        let span = tracing::info_span!("node", member = %manifest_name(&handle));
        let cancel = CancellationToken::new();
        let keypair = identity::libp2p_keypair(&handle.shared.key);
        let (net, net_task) =
            span.in_scope(|| net::spawn(handle.clone(), keypair, &config.p2p, cancel.clone()))?;
        tracing::info!(peer_id = %net.peer_id(), "network started");
        let _ = handle.shared.net.set(net);
        let listener = tokio::net::TcpListener::bind(config.rpc.listen)
            .await
            .map_err(|source| StartError::RpcBind { addr: config.rpc.listen, source })?;
        let rpc_addr = listener
            .local_addr()
            .map_err(|source| StartError::RpcBind { addr: config.rpc.listen, source })?;
        let rpc_task = tokio::spawn(rpc::serve(listener, handle.clone(), cancel.clone()).instrument(span));
        tracing::info!(%rpc_addr, "RPC listening");
        Ok(Self { handle, rpc_addr, cancel, tasks: vec![rpc_task, net_task] })
    }

    /// The handle.
    pub fn handle(&self) -> &NodeHandle {
        &self.handle
    }

    /// Where the RPC listens.
    pub fn rpc_addr(&self) -> SocketAddr {
        self.rpc_addr
    }

    /// Stops every task and waits for them, then flushes the store.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
        let store = self.handle.replica().store().clone();
        if let Err(e) = store.flush().await {
            tracing::error!(error = %e, "final flush failed");
        }
    }
}

impl NodeHandle {
    fn replica(&self) -> MutexGuard<'_, Replica> {
        // A panic while holding the lock cannot leave the replica half-updated (sled writes are
        // atomic), so a poisoned lock is safe to keep using.
        self.shared.replica.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// This node's member id.
    pub fn member(&self) -> MemberId {
        self.shared.me
    }

    /// The manifest in force.
    pub fn manifest(&self) -> &Manifest {
        &self.shared.manifest
    }

    /// The network client.
    pub fn net(&self) -> Option<&net::Client> {
        self.shared.net.get()
    }

    /// The store (cheap clone), for reads that need not hold the replica lock.
    pub fn store(&self) -> Store {
        self.replica().store().clone()
    }

    /// Connected and known member peers.
    pub async fn peers(&self) -> Vec<net::PeerView> {
        match self.net() {
            Some(net) => net.peers().await,
            None => Vec::new(),
        }
    }

    async fn write(&self, body: Body) -> Result<Written, NodeError> {
        let (record, store) = {
            let mut replica = self.replica();
            let record = replica.author(&self.shared.key, body, now_ms())?;
            (record, replica.store().clone())
        };
        // Acknowledge only once durable.
        store.flush().await?;
        if let Some(net) = self.shared.net.get() {
            net.publish(record.bytes().to_vec());
        }
        Ok(Written { id: record.id(), seq: record.seq() })
    }

    /// Submits a new entry in this member's log.
    pub async fn submit(&self, req: SubmitEntry) -> Result<Written, NodeError> {
        if req.fingerprints.is_empty() {
            return Err(NodeError::Invalid("an entry needs at least one fingerprint".into()));
        }
        let body = Body::Entry(Entry {
            fingerprints: req.fingerprints,
            category: req.category,
            links: req.links,
            note: req.note,
            expires_at: req.expires_at,
        });
        self.write(body).await
    }

    /// Submits many entries with one flush at the end (bulk import): far faster than one
    /// `submit` each, and just as durable once it returns. If an entry is refused, the ones
    /// before it stay written (and durable) and the error is returned.
    pub async fn submit_batch(&self, entries: Vec<SubmitEntry>) -> Result<Vec<Written>, NodeError> {
        let mut written = Vec::with_capacity(entries.len());
        let mut failed = None;
        let bodies: Vec<Body> = entries
            .into_iter()
            .map(|req| {
                Body::Entry(Entry {
                    fingerprints: req.fingerprints,
                    category: req.category,
                    links: req.links,
                    note: req.note,
                    expires_at: req.expires_at,
                })
            })
            .collect();
        let mut records = Vec::with_capacity(bodies.len());
        let mut bodies = bodies.into_iter().peekable();
        while bodies.peek().is_some() {
            // One transaction and one lock hold per chunk, so reads and gossip are not starved.
            let chunk: Vec<Body> = bodies.by_ref().take(4096).collect();
            match self.replica().author_many(&self.shared.key, chunk, now_ms()) {
                Ok(chunk) => {
                    written.extend(chunk.iter().map(|r| Written { id: r.id(), seq: r.seq() }));
                    records.extend(chunk);
                }
                Err(e) => {
                    failed = Some(NodeError::from(e));
                    break;
                }
            }
        }
        // What was written is made durable and published even if a later chunk failed.
        self.store().flush().await?;
        if let Some(net) = self.shared.net.get() {
            for record in records {
                net.publish(record.bytes().to_vec());
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(written),
        }
    }

    /// Votes on another member's entry. `reviewer` is the admin's token name.
    pub async fn vote(
        &self,
        entry: RecordId,
        req: CastVote,
        reviewer: Option<String>,
    ) -> Result<Written, NodeError> {
        {
            let replica = self.replica();
            let state = self.entry_state(&replica, &entry)?;
            if state.votes.author() == self.shared.me {
                return Err(NodeError::OwnEntry(entry));
            }
        }
        self.write(Body::Vote(Vote { entry, verdict: req.verdict, reason: req.reason, reviewer })).await
    }

    /// Retracts one of this member's entries.
    pub async fn retract(&self, entry: RecordId, req: RetractEntry) -> Result<Written, NodeError> {
        {
            let replica = self.replica();
            let state = self.entry_state(&replica, &entry)?;
            if state.votes.author() != self.shared.me {
                return Err(NodeError::NotAuthor(entry));
            }
            if state.votes.status(&self.shared.manifest.policy(), 0) == Status::Retracted {
                return Err(NodeError::AlreadyRetracted(entry));
            }
        }
        self.write(Body::Retract(Retract { entry, reason: req.reason })).await
    }

    fn entry_state<'a>(&self, replica: &'a Replica, id: &RecordId) -> Result<&'a EntryState, NodeError> {
        replica.catalog().get(id).ok_or(NodeError::UnknownEntry(*id))
    }

    /// One entry with its status.
    pub fn entry(&self, id: &RecordId) -> Result<EntryView, NodeError> {
        let replica = self.replica();
        let state = self.entry_state(&replica, id)?;
        Ok(self.view(state, now_ms()))
    }

    /// A page of entries matching `filter`.
    pub fn entries(&self, filter: &EntryFilter) -> EntryPage {
        let limit = filter.limit.unwrap_or(100).clamp(1, 1000);
        let now = now_ms();
        let policy = self.shared.manifest.policy();
        let replica = self.replica();
        let mut entries = Vec::new();
        let mut next_cursor = None;
        for state in replica.catalog().after(filter.cursor) {
            if filter.author.is_some_and(|a| a != state.votes.author())
                || filter.category.as_ref().is_some_and(|c| *c != state.entry.category)
                || filter.status.is_some_and(|s| s != state.votes.status(&policy, now))
            {
                continue;
            }
            if entries.len() == limit {
                next_cursor = entries.last().map(|e: &EntryView| e.id);
                break;
            }
            entries.push(self.view(state, now));
        }
        EntryPage { entries, next_cursor }
    }

    fn view(&self, state: &EntryState, now: u64) -> EntryView {
        let manifest = &self.shared.manifest;
        let name = |m: &MemberId| manifest.member(m).map(|i| i.name.clone());
        let status = state.votes.status(&manifest.policy(), now);
        EntryView {
            id: state.id,
            author: state.votes.author(),
            author_name: name(&state.votes.author()),
            seq: state.seq,
            timestamp: state.timestamp,
            fingerprints: state.entry.fingerprints.clone(),
            category: state.entry.category.clone(),
            links: state.entry.links.clone(),
            note: state.entry.note.clone(),
            expires_at: state.entry.expires_at,
            status,
            action: status.action(),
            votes: state
                .votes
                .votes()
                .map(|(member, verdict)| VoteView { member, member_name: name(&member), verdict })
                .collect(),
        }
    }

    /// Looks up fingerprints: exact kinds by equality, perceptual kinds by Hamming distance.
    pub fn match_fingerprints(&self, hashes: &[Fingerprint]) -> Vec<MatchResult> {
        let computed: Vec<Computed> = hashes.iter().cloned().map(Computed::plain).collect();
        self.match_computed(&computed)
    }

    /// Looks up computed fingerprints, each with its variants (PDQ's dihedral forms); a
    /// fingerprint marked `skipped` (too low quality) is reported, not matched.
    pub fn match_computed(&self, queries: &[Computed]) -> Vec<MatchResult> {
        let now = now_ms();
        let policy = self.shared.manifest.policy();
        let replica = self.replica();
        let catalog = replica.catalog();
        queries
            .iter()
            .map(|query| {
                let mut best: BTreeMap<RecordId, u32> = BTreeMap::new();
                if query.skipped.is_none() {
                    for fp in std::iter::once(&query.fingerprint).chain(&query.variants) {
                        for (id, distance) in self.lookup(catalog, fp) {
                            let d = best.entry(id).or_insert(distance);
                            *d = (*d).min(distance);
                        }
                    }
                }
                let mut hits: Vec<Hit> = best
                    .into_iter()
                    .filter_map(|(id, distance)| {
                        let state = catalog.get(&id)?;
                        let status = state.votes.status(&policy, now);
                        Some(Hit {
                            entry: id,
                            category: state.entry.category.clone(),
                            status,
                            kind: query.fingerprint.kind(),
                            distance,
                            action: status.action(),
                        })
                    })
                    .collect();
                hits.sort_by_key(|h| (action_rank(h.action), h.distance, h.entry));
                MatchResult {
                    hash: query.fingerprint.clone(),
                    quality: query.quality,
                    skipped: query.skipped.clone(),
                    hits,
                }
            })
            .collect()
    }

    fn lookup(&self, catalog: &crate::replica::Catalog, fp: &Fingerprint) -> Vec<(RecordId, u32)> {
        match max_distance(&self.shared.manifest, fp.kind()) {
            Some(max) => catalog.perceptual().query(fp, max),
            None => catalog.exact(fp).iter().map(|id| (*id, 0)).collect(),
        }
    }

    /// Raw signed records of `author` from `from_seq`.
    pub fn records(&self, author: &MemberId, from_seq: u64, limit: usize) -> Result<Vec<Record>, NodeError> {
        Ok(self.replica().store().range(author, from_seq, limit.clamp(1, 1000))?)
    }

    /// Offers a record that came from outside (a peer, an import).
    pub fn ingest(&self, record: Record) -> Result<crate::replica::Ingested, crate::replica::IngestError> {
        self.replica().ingest(record)
    }

    /// Offers signature-checked records of one author in seq order (a sync batch).
    pub fn ingest_run(&self, records: Vec<Record>) -> crate::replica::RunOutcome {
        self.replica().ingest_run(records)
    }

    /// Offers a record whose signature the caller has already checked.
    pub fn ingest_verified(
        &self,
        record: Record,
    ) -> Result<crate::replica::Ingested, crate::replica::IngestError> {
        self.replica().ingest_verified(record)
    }

    /// The node's status, with the network's view of which peers hold an identical replica.
    pub async fn status(&self) -> Result<StatusView, NodeError> {
        let peers = self.peers().await;
        let mut status = self.replica_status()?;
        status.peer_id = self.net().map(|n| n.peer_id().to_string());
        status.in_sync_with = peers.into_iter().filter(|p| p.in_sync).map(|p| p.peer_id).collect();
        if let Some(net) = self.net() {
            status.refused_connections = net.refused_connections().await;
        }
        Ok(status)
    }

    fn replica_status(&self) -> Result<StatusView, NodeError> {
        let replica = self.replica();
        let manifest = &self.shared.manifest;
        let heads = replica.heads()?;
        let logs = heads
            .iter()
            .map(|(author, head)| LogHead {
                author: *author,
                name: manifest.member(author).map(|m| m.name.clone()),
                seq: head.seq,
                head: head.id,
            })
            .collect();
        Ok(StatusView {
            federation: manifest.name.clone(),
            epoch: manifest.epoch,
            member: self.shared.me,
            member_name: manifest.member(&self.shared.me).map(|m| m.name.clone()),
            peer_id: None,
            records: replica.store().len(),
            entries: replica.catalog().len(),
            buffered: replica.buffered(),
            digest: hex::encode(digest(&heads)),
            logs,
            equivocators: replica.equivocators().iter().copied().collect(),
            in_sync_with: Vec::new(),
            refused_connections: 0,
        })
    }
}

/// The match threshold of a perceptual kind; `None` for exact kinds.
pub fn max_distance(manifest: &Manifest, kind: FingerprintKind) -> Option<u32> {
    match kind {
        FingerprintKind::Pdq => Some(manifest.pdq_max_distance()),
        // image_hasher kinds: about 10% of the bits, the usual near-duplicate threshold.
        FingerprintKind::Dhash => Some(14),
        FingerprintKind::Phash => Some(6),
        FingerprintKind::Blake3
        | FingerprintKind::Sha256
        | FingerprintKind::Sha1
        | FingerprintKind::Md5
        | FingerprintKind::Url => None,
    }
}

/// Strongest action first.
pub fn action_rank(action: Action) -> u8 {
    match action {
        Action::Remove => 0,
        Action::Review => 1,
        Action::None => 2,
    }
}

/// blake3 over every author's (id, seq, head): equal digests mean identical replicas, because
/// each head hash-chains the whole log behind it.
pub fn digest(heads: &[(MemberId, crate::store::Head)]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    for (author, head) in heads {
        hasher.update(&author.0);
        hasher.update(&head.seq.to_be_bytes());
        hasher.update(&head.id.0);
    }
    *hasher.finalize().as_bytes()
}

fn manifest_name(handle: &NodeHandle) -> String {
    handle.manifest().member(&handle.member()).map_or_else(|| handle.member().short(), |m| m.name.clone())
}
