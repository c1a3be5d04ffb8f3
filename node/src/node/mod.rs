//! A running node: its replica, its RPC server and (once started) its network, and the
//! [`NodeHandle`] through which the RPC and the tests act on it.

mod matching;
mod reads;
mod writes;

pub use matching::{action_rank, max_distance};
pub use reads::digest;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use ed25519_dalek::SigningKey;
use hashmesh_protocol::{Manifest, MemberId, Record, RecordId};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::{Config, TokenConfig};
use crate::replica::{AuthorError, Replica};
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
}

fn manifest_name(handle: &NodeHandle) -> String {
    handle.manifest().member(&handle.member()).map_or_else(|| handle.member().short(), |m| m.name.clone())
}
