//! A running node: its replica, its RPC server and (once started) its network, and the
//! [`NodeHandle`] through which the RPC and the tests act on it.

mod lists;
mod matching;
mod membership;
mod reads;
mod ready;
mod review;
mod stats;
mod writes;

pub use lists::Exported;
pub use matching::{action_rank, max_distance};
pub use stats::{date, parse_day};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use hashmesh_protocol::{Manifest, MemberId, Record, RecordId, ValidationError};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::{Config, TokenConfig};
use crate::replica::{AuthorError, Replica, ReplicaHandle, RunOutcome, Verified, writer};
use crate::store::{Store, StoreError};
use crate::sync::{Engine, EngineConfig, OwnLog};
use crate::{identity, metrics, net, rpc};

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The config could not be read.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The key could not be read.
    #[error(transparent)]
    Key(#[from] identity::KeyError),
    /// The RPC's TLS settings cannot be used, or plain HTTP would leave loopback.
    #[error("{0}")]
    Tls(String),
    /// A private file of the data dir is open to others.
    #[error(transparent)]
    FileModes(#[from] crate::files::FileModeError),
    /// The manifest could not be read.
    #[error("cannot read the manifest {path}: {message}")]
    Manifest {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The network could not start.
    #[error(transparent)]
    Net(#[from] net::NetError),
    /// The actioner's state could not be opened.
    #[error("cannot open the webhook outbox: {0}")]
    Actioner(StoreError),
    /// The writer thread could not start.
    #[error("cannot start the writer thread: {0}")]
    Writer(std::io::Error),
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
    /// Own writes wait until peers have confirmed this node's own log.
    #[error("{0}")]
    NotReady(String),
    /// This member's key is proven to have equivocated.
    #[error("{0}")]
    Forked(String),
    /// Only members may do this.
    #[error("{0}")]
    NotMember(String),
    /// No proposal with this id.
    #[error("no proposal with id {0} is known to this node (GET /v1/membership lists them)")]
    UnknownProposal(hashmesh_protocol::ProposalId),
    /// The request conflicts with the state it would change.
    #[error("{0}")]
    Conflict(String),
    /// A follower keeps a read-only replica.
    #[error("{0}")]
    Follower(String),
    /// Storage failed.
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
}

impl From<AuthorError> for NodeError {
    fn from(e: AuthorError) -> Self {
        match e {
            AuthorError::Invalid(v @ (ValidationError::NotMember(_) | ValidationError::Retired { .. })) => {
                Self::NotMember(format!(
                    "{v}: this node cannot write until a membership epoch makes its key a member"
                ))
            }
            AuthorError::Invalid(v) => Self::Invalid(v.to_string()),
            forked @ AuthorError::Forked(_) => Self::Forked(forked.to_string()),
            AuthorError::Store(s) => Self::Store(s),
        }
    }
}

pub(crate) struct Shared {
    replica: ReplicaHandle,
    pub(crate) actioner: Arc<crate::actioner::Actioner>,
    net: net::Client,
    own_log: watch::Receiver<OwnLog>,
    me: MemberId,
    /// The member node this node follows (`run --follow`): it then refuses writes.
    follow: Option<crate::config::FollowConfig>,
    /// Fires when the node stops: long polls answer at once rather than hold the shutdown.
    pub(crate) stopping: CancellationToken,
    /// Own writes hold it shared; a membership proposal or approval holds it alone, so the
    /// seq it reads for this member's next record is the one the record gets.
    authoring: tokio::sync::RwLock<()>,
    /// What this follower last reported of its counters to its member node, by day.
    reported: std::sync::Mutex<std::collections::BTreeMap<u32, Vec<hashmesh_protocol::DailyCount>>>,
    pub(crate) tokens: Vec<TokenConfig>,
    pub(crate) max_body_bytes: usize,
    /// The RPC's connection cap and timeouts.
    pub(crate) rpc_limits: crate::rpc::Limits,
    /// One hashing job (an image decoded, or a video through FFmpeg) per core at a time, so
    /// concurrent uploads cannot exhaust memory or CPU.
    pub(crate) hashing: tokio::sync::Semaphore,
    /// How uploaded videos are decoded.
    pub(crate) video: crate::hashers::video::VideoConfig,
    /// Set once this node has caught up with a peer (see `ready.rs`); never cleared.
    caught_up: std::sync::atomic::AtomicBool,
    /// The metrics registry, complete once the network has added libp2p's families.
    pub(crate) metrics: metrics::Metrics,
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
    https: bool,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    writer: std::thread::JoinHandle<()>,
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
    /// Opens the data dir and starts the node: the replica and its writer, then the network
    /// that replicates it, then the RPC that serves both — each built once, in that order.
    pub async fn start(data_dir: &Path, config: Config) -> Result<Self, StartError> {
        crate::files::check(data_dir, &config, false)?;
        let tls = crate::tls::acceptor(data_dir, &config.rpc).map_err(StartError::Tls)?;
        let key = identity::load(&data_dir.join(&config.key_file))?;
        let genesis = read_manifest(&data_dir.join(&config.manifest))?;
        let me = MemberId::from_key(&key.verifying_key());
        let db = data_dir.join(&config.db);
        let store = Store::open_unclaimed(&db, &genesis.name)?;
        let replica = Replica::open(store, genesis)?;
        let manifest = replica.governance().current().clone();
        match replica.store().member()? {
            // A data dir whose member's key an epoch rotated to this key is this member's still.
            Some(held) if manifest.retired_key(&held).is_some_and(|r| r.successor == Some(me)) => {
                tracing::info!(old = %held, new = %me, "this member's key was rotated: the node signs with the new key from now on");
                replica.store().claim_member(&db, me, Some(held))?;
            }
            // Another key's data dir, and this key is no member here yet: perhaps an epoch this
            // node has not seen rotated that key to this one. Replicate without claiming; the
            // writer claims the store when that epoch arrives (writes are refused until then).
            Some(held) if held != me && !manifest.is_member(&me) => tracing::warn!(
                held = %held,
                member = %me,
                "this data dir belongs to another member key, and this key is not a member in the epochs this node holds: it replicates, and takes over the data dir only if an epoch rotated that key to this one"
            ),
            _ => replica.store().claim_member(&db, me, None)?,
        }
        tracing::info!(federation = %manifest.name, epoch = manifest.epoch, member = %me, records = replica.read_view().records(), "replica loaded");
        let follows = (!config.follow.node.is_empty()).then(|| config.follow.node.clone());
        let mut config = config;
        if !config.follow.ca_file.as_os_str().is_empty() {
            config.follow.ca_file = data_dir.join(&config.follow.ca_file);
        }
        let follow_tls = crate::tls::client(Some(&config.follow.ca_file)).map_err(StartError::Tls)?;
        if follows.is_none() && !manifest.is_member(&me) {
            tracing::warn!(
                member = %me,
                epoch = manifest.epoch,
                "this node's member key is not a member of the federation: the node replicates from members that let it in, and writes are refused until an epoch adds it (a member runs `hashmesh member propose` with this key)"
            );
        }
        let actioner = crate::actioner::Actioner::open(replica.store(), me, config.webhooks.clone())
            .map_err(StartError::Actioner)?;
        let keypair = identity::libp2p_keypair(&key);
        let (replica, writer) = writer::spawn(replica, key).map_err(StartError::Writer)?;
        let name = manifest.member(&me).map_or_else(|| me.short(), |m| m.name.clone());
        let span = tracing::info_span!("node", member = %name);
        let cancel = CancellationToken::new();
        let engine = Engine::new(EngineConfig {
            me,
            members: manifest.log_keys(),
            // The only member has no one to ask whether its log is current; a follower never
            // authors.
            alone: follows.is_some() || manifest.members.iter().all(|m| m.key == me),
            own_log_timeout: config.p2p.own_log_timeout,
            start_unconfirmed: config.p2p.start_unconfirmed,
        });
        let (own_log_tx, own_log) = watch::channel(engine.own_log());
        let role = if follows.is_some() { metrics::Role::Follower } else { metrics::Role::Member };
        let mut metrics = {
            let (replica, own_log) = (replica.clone(), own_log.clone());
            metrics::Metrics::new(&manifest.name, role, move || {
                metrics::ReplicaState::read(&replica, *own_log.borrow())
            })
        };
        let (net, net_task) = match &follows {
            Some(node) => {
                let settings = net::follow::FollowSettings {
                    node: node.clone(),
                    token: config.follow.token.clone(),
                    peer_id: keypair.public().to_peer_id(),
                    request_timeout: config.p2p.request_timeout,
                    tls: follow_tls,
                    engine,
                    own_log: own_log_tx,
                };
                span.in_scope(|| net::follow::spawn(replica.clone(), settings, cancel.clone()))
            }
            None => {
                let settings = net::Settings {
                    key: keypair,
                    config: config.p2p.clone(),
                    manifest: manifest.clone(),
                    engine,
                    own_log: own_log_tx,
                };
                let started = span.in_scope(|| {
                    net::spawn(replica.clone(), settings, metrics.registry_mut(), cancel.clone())
                })?;
                tracing::info!(peer_id = %started.0.peer_id(), "network started");
                started
            }
        };
        let handle = NodeHandle {
            shared: Arc::new(Shared {
                replica,
                actioner: Arc::new(actioner),
                net,
                own_log,
                me,
                follow: follows.as_ref().map(|_| config.follow.clone()),
                stopping: cancel.clone(),
                authoring: tokio::sync::RwLock::new(()),
                reported: std::sync::Mutex::default(),
                tokens: config.rpc.tokens.clone(),
                max_body_bytes: config.rpc.max_body_bytes,
                rpc_limits: crate::rpc::Limits {
                    max_connections: config.rpc.max_connections,
                    header_timeout: config.rpc.header_timeout,
                    request_timeout: config.rpc.request_timeout,
                },
                hashing: tokio::sync::Semaphore::new(
                    std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
                ),
                video: config.video.clone(),
                caught_up: std::sync::atomic::AtomicBool::new(false),
                metrics,
            }),
        };
        let listener = tokio::net::TcpListener::bind(config.rpc.listen)
            .await
            .map_err(|source| StartError::RpcBind { addr: config.rpc.listen, source })?;
        let rpc_addr = listener
            .local_addr()
            .map_err(|source| StartError::RpcBind { addr: config.rpc.listen, source })?;
        let https = tls.is_some();
        let rpc_task =
            tokio::spawn(rpc::serve(listener, tls, handle.clone(), cancel.clone()).instrument(span));
        tracing::info!(%rpc_addr, https, "RPC listening");
        let mut tasks = vec![rpc_task, net_task];
        tasks.extend(handle.shared.actioner.spawn(handle.shared.replica.clone(), &cancel));
        tasks.push(tokio::spawn(share_counters(
            handle.clone(),
            config.stats.publish_interval,
            cancel.clone(),
        )));
        Ok(Self { handle, rpc_addr, https, cancel, tasks, writer })
    }

    /// The handle.
    pub fn handle(&self) -> &NodeHandle {
        &self.handle
    }

    /// Where the RPC listens.
    pub fn rpc_addr(&self) -> SocketAddr {
        self.rpc_addr
    }

    /// The RPC's base URL: `https://` when it serves TLS.
    pub fn rpc_url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.rpc_addr)
    }

    /// Stops every task and waits for them, then for the writer to store and flush what it
    /// holds and let go of the store.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
        if let Err(e) = self.handle.shared.replica.close().await {
            tracing::error!(error = %e, "final flush failed");
        }
        let writer = self.writer;
        let _ = tokio::task::spawn_blocking(move || writer.join()).await;
    }
}

/// Every `every` until `cancel` fires: a member node signs its member's changed counters, a
/// follower reports its own to its member node.
async fn share_counters(node: NodeHandle, every: std::time::Duration, cancel: CancellationToken) {
    let mut ticks = tokio::time::interval(every);
    ticks.tick().await; // the first tick is now: nothing is counted yet
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if node.follows().is_some() {
            match node.report_counters().await {
                Ok(0) => {}
                Ok(days) => {
                    tracing::info!(days, "reported this follower's daily counters to its member node")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "daily counters not reported; the next tick tries again")
                }
            }
            continue;
        }
        match node.publish_stats().await {
            Ok(written) if !written.is_empty() => {
                tracing::info!(records = written.len(), "published this member's daily counters")
            }
            Ok(_) => {}
            // Not a member, or the own log is not confirmed yet: the next tick tries again.
            Err(e) => tracing::debug!(error = %e, "daily counters not published"),
        }
    }
}

impl NodeHandle {
    /// The replica: its view, store and writer.
    pub fn replica(&self) -> &ReplicaHandle {
        &self.shared.replica
    }

    /// This node's member id.
    pub fn member(&self) -> MemberId {
        self.shared.me
    }

    /// The member node this node follows, if it is a follower.
    pub fn follows(&self) -> Option<&str> {
        self.shared.follow.as_ref().map(|f| f.node.as_str())
    }

    /// The network client.
    pub fn net(&self) -> &net::Client {
        &self.shared.net
    }

    /// Whether this node's own log is confirmed by its peers (own writes wait until it is).
    pub fn own_log(&self) -> OwnLog {
        *self.shared.own_log.borrow()
    }

    /// Connected and known member peers.
    pub async fn peers(&self) -> Vec<net::PeerView> {
        self.shared.net.peers().await
    }

    /// Offers a record from outside (an import, a test): its signature is checked, then it is
    /// stored like any record from a peer, and any proof of equivocation it completes is
    /// gossiped.
    pub async fn ingest(&self, record: Record) -> Result<RunOutcome, NodeError> {
        let verified = Verified::check(record).map_err(|e| NodeError::Invalid(e.to_string()))?;
        let (outcome, proofs) = self
            .shared
            .replica
            .ingest(vec![verified])
            .await
            .map_err(|e| NodeError::NotReady(e.to_string()))?;
        for proof in proofs {
            self.shared.net.publish_proof(proof.encode());
        }
        Ok(outcome)
    }

    /// Raw signed records of `author` from `from_seq`.
    pub fn records(&self, author: &MemberId, from_seq: u64, limit: usize) -> Result<Vec<Record>, NodeError> {
        Ok(self.shared.replica.range(author, from_seq, limit.clamp(1, 1000))?)
    }
}
