//! The one writer: a dedicated thread that owns the [`Replica`] and commits in groups.
//!
//! Every change to the replica — own records, records from peers, proofs — is a job sent to
//! this thread over a bounded channel. The thread takes every job waiting, stages them all,
//! stores them as one atomic batch, flushes once if any of them must be durable, and only
//! then answers each. So concurrent writers share a flush (group commit), an own record is
//! acknowledged only once it is on disk, and the only blocking sled calls run here — never on
//! an async worker, and never `flush_async`, which in sled 0.34.7 can deadlock when called
//! concurrently (sled issue #1308), freezing every writer for good.

use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::thread::JoinHandle;

use ed25519_dalek::SigningKey;
use hashmesh_protocol::{Body, EquivocationProof, Manifest, MemberId, Record, RecordId};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::{AuthorError, Committed, IngestError, Replica, RunOutcome, Verified, View};
use crate::store::{Store, StoreError};
use crate::sync::Clock;

/// Jobs waiting for the writer; a full queue makes senders wait.
const QUEUE: usize = 4096;
/// Most jobs committed together, so one round cannot hold back answers for long.
const MAX_ROUND: usize = 1024;

enum Job {
    Author {
        bodies: Vec<Body>,
        timestamp: u64,
        reply: oneshot::Sender<Result<Vec<Record>, AuthorError>>,
    },
    Ingest {
        records: Vec<Verified>,
        reply: oneshot::Sender<(RunOutcome, Vec<EquivocationProof>)>,
    },
    Proof {
        proof: Box<EquivocationProof>,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
    Flush {
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Store and flush what is staged, answer, and stop.
    Close {
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
}

/// The writer went away (the node is shutting down).
#[derive(Debug, thiserror::Error)]
#[error("the node is shutting down")]
pub struct WriterGone;

/// A cheap-to-clone handle on the replica: reads from the view and the store, writes through
/// the writer thread. This is all the network and the RPC see of the replica.
#[derive(Clone)]
pub struct ReplicaHandle {
    view: Arc<RwLock<View>>,
    store: Store,
    jobs: mpsc::Sender<Job>,
    manifest: watch::Receiver<Manifest>,
    changes: broadcast::Sender<Arc<Changed>>,
    commits: watch::Receiver<u64>,
}

/// Entries whose status a commit may have changed, announced once the view shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    /// These entries got a vote or a retraction.
    Entries(Vec<RecordId>),
    /// Any entry may have changed (a new epoch, a proof of equivocation).
    All,
}

/// Announcements a slow listener may fall behind by before it is told it lagged (and should
/// look at everything it cares about).
const CHANGES: usize = 1024;

/// Starts the writer thread, which signs own records with `key`.
pub fn spawn(replica: Replica, key: SigningKey) -> std::io::Result<(ReplicaHandle, JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel(QUEUE);
    let (manifest_tx, manifest) = watch::channel(replica.governance().current().clone());
    let (changes, _) = broadcast::channel(CHANGES);
    let (commits_tx, commits) = watch::channel(0);
    let handle = ReplicaHandle {
        view: replica.view(),
        store: replica.store().clone(),
        jobs: tx,
        manifest,
        changes: changes.clone(),
        commits,
    };
    let outputs = Outputs { manifest: manifest_tx, changes, commits: commits_tx };
    let thread = std::thread::Builder::new()
        .name("hashmesh-writer".into())
        .spawn(move || run(replica, &key, rx, &outputs))?;
    Ok((handle, thread))
}

/// What the writer announces after a commit.
struct Outputs {
    manifest: watch::Sender<Manifest>,
    changes: broadcast::Sender<Arc<Changed>>,
    /// Counts commits, for long polls that wait for the clock to move.
    commits: watch::Sender<u64>,
}

fn run(mut replica: Replica, key: &SigningKey, mut rx: mpsc::Receiver<Job>, outputs: &Outputs) {
    let mut jobs = Vec::with_capacity(MAX_ROUND);
    let mut close = None;
    while let Some(first) = rx.blocking_recv() {
        jobs.push(first);
        while jobs.len() < MAX_ROUND {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        if let Some(at) = jobs.iter().position(|j| matches!(j, Job::Close { .. })) {
            if let Job::Close { reply } = jobs.remove(at) {
                close = Some(reply);
            }
            rx.close(); // later senders learn the writer is gone
        }
        round(&mut replica, key, &mut jobs, outputs);
        if close.is_some() {
            break;
        }
    }
    let flushed = replica.store().flush();
    if let Err(e) = &flushed {
        tracing::error!(error = %e, "final flush failed");
    }
    if let Some(reply) = close {
        let _ = reply.send(flushed);
    }
}

/// Claims the store for `key` if `manifest` rotated the key it belongs to to `key` (the node
/// was restarted with its member's new key before it had the epoch that rotated it).
fn take_over_if_rotated(replica: &Replica, key: &SigningKey, manifest: &Manifest) {
    let me = MemberId::from_key(&key.verifying_key());
    let Ok(Some(held)) = replica.store().member() else { return };
    if held != me && manifest.retired_key(&held).is_some_and(|r| r.successor == Some(me)) {
        match replica.store().pass_to(held, me) {
            Ok(_) => {
                tracing::info!(old = %held, new = %me, "this member's key was rotated: the data dir is the new key's now")
            }
            Err(e) => tracing::error!(error = %e, "cannot record the key rotation in the store"),
        }
    }
}

/// Stages every job, commits once, announces a new epoch if one took effect (before any job
/// is answered, so whoever hears back from the writer sees the epoch), answers each.
fn round(replica: &mut Replica, key: &SigningKey, jobs: &mut Vec<Job>, outputs: &Outputs) {
    enum Staged {
        Author(oneshot::Sender<Result<Vec<Record>, AuthorError>>, Result<Vec<Record>, AuthorError>),
        Ingest(oneshot::Sender<(RunOutcome, Vec<EquivocationProof>)>, RunOutcome),
        Proof(oneshot::Sender<Result<bool, StoreError>>, bool),
        Flush(oneshot::Sender<Result<(), StoreError>>),
    }
    let mut durable = false;
    let staged: Vec<Staged> = jobs
        .drain(..)
        .map(|job| match job {
            Job::Author { bodies, timestamp, reply } => {
                durable = true;
                Staged::Author(reply, replica.author(key, bodies, timestamp))
            }
            Job::Ingest { records, reply } => Staged::Ingest(reply, replica.ingest_run(records)),
            Job::Proof { proof, reply } => Staged::Proof(reply, replica.offer_proof(*proof)),
            Job::Flush { reply } | Job::Close { reply } => {
                durable = true;
                Staged::Flush(reply)
            }
        })
        .collect();
    let committed = replica.commit(durable);
    if committed.as_ref().is_ok_and(|c| !c.epochs.is_empty()) {
        let current = replica.governance().current().clone();
        tracing::info!(epoch = current.epoch, "a new membership epoch took effect");
        take_over_if_rotated(replica, key, &current);
        outputs.manifest.send_replace(current);
    }
    if let Ok(c) = &committed {
        let changed = if c.changed_all() {
            Some(Changed::All)
        } else {
            (!c.touched.is_empty()).then(|| Changed::Entries(c.touched.clone()))
        };
        // No listener is fine: nothing acts on status changes then.
        if let Some(changed) = changed {
            let _ = outputs.changes.send(Arc::new(changed));
        }
        outputs.commits.send_modify(|n| *n = n.wrapping_add(1));
    }
    let failed = |e: &StoreError| StoreError::Corrupt(format!("the batch could not be stored: {e}"));
    for job in staged {
        // A requester that gave up (timeout, disconnect) is no reason to stop.
        match (job, &committed) {
            (Staged::Author(reply, result), Ok(_)) => drop(reply.send(result)),
            (Staged::Author(reply, _), Err(e)) => drop(reply.send(Err(AuthorError::Store(failed(e))))),
            (Staged::Ingest(reply, outcome), Ok(Committed { proofs, .. })) => {
                drop(reply.send((outcome, proofs.clone())));
            }
            (Staged::Ingest(reply, mut outcome), Err(e)) => {
                outcome.stored = 0;
                outcome.error = Some(IngestError::Store(failed(e)));
                drop(reply.send((outcome, Vec::new())));
            }
            (Staged::Proof(reply, taken), Ok(_)) => drop(reply.send(Ok(taken))),
            (Staged::Proof(reply, _), Err(e)) => drop(reply.send(Err(failed(e)))),
            (Staged::Flush(reply), Ok(_)) => drop(reply.send(Ok(()))),
            (Staged::Flush(reply), Err(e)) => drop(reply.send(Err(failed(e)))),
        }
    }
}

impl ReplicaHandle {
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Job) -> Result<T, WriterGone> {
        let (tx, rx) = oneshot::channel();
        self.jobs.send(make(tx)).await.map_err(|_| WriterGone)?;
        rx.await.map_err(|_| WriterGone)
    }

    /// Signs new records in this member's log and returns them once they are on disk.
    pub async fn author(&self, bodies: Vec<Body>, timestamp: u64) -> Result<Vec<Record>, AuthorError> {
        self.ask(|reply| Job::Author { bodies, timestamp, reply }).await.unwrap_or_else(|_| {
            Err(AuthorError::Store(StoreError::Corrupt("the node is shutting down".into())))
        })
    }

    /// Takes in verified records (gossip, a sync batch): what became of them, and any proof
    /// of equivocation that took effect.
    pub async fn ingest(
        &self,
        records: Vec<Verified>,
    ) -> Result<(RunOutcome, Vec<EquivocationProof>), WriterGone> {
        self.ask(|reply| Job::Ingest { records, reply }).await
    }

    /// Offers a proof of equivocation; true if it took effect.
    pub async fn offer_proof(&self, proof: EquivocationProof) -> Result<bool, StoreError> {
        self.ask(|reply| Job::Proof { proof: Box::new(proof), reply })
            .await
            .unwrap_or_else(|_| Err(StoreError::Corrupt("the node is shutting down".into())))
    }

    /// Waits until everything stored so far is on disk.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.ask(|reply| Job::Flush { reply })
            .await
            .unwrap_or_else(|_| Err(StoreError::Corrupt("the node is shutting down".into())))
    }

    /// Stores and flushes everything, then stops the writer: it lets go of the replica.
    pub async fn close(&self) -> Result<(), StoreError> {
        self.ask(|reply| Job::Close { reply })
            .await
            .unwrap_or_else(|_| Err(StoreError::Corrupt("the node is shutting down".into())))
    }

    /// Reads the view. Hold the guard briefly: the writer waits for it to publish a batch.
    pub fn view(&self) -> RwLockReadGuard<'_, View> {
        self.view.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// News of entries whose status a commit may have changed, sent once the view shows it.
    pub fn changes(&self) -> broadcast::Receiver<Arc<Changed>> {
        self.changes.subscribe()
    }

    /// News of each commit, once the view shows it (the value only counts them).
    pub fn commits(&self) -> watch::Receiver<u64> {
        let mut commits = self.commits.clone();
        commits.mark_unchanged();
        commits
    }

    /// The manifest in force, and news of each epoch that takes effect.
    pub fn manifest(&self) -> watch::Receiver<Manifest> {
        self.manifest.clone()
    }

    /// A copy of the vector clock.
    pub fn clock(&self) -> Clock {
        self.view().clock().clone()
    }

    /// The proof held against `author`, encoded.
    pub fn proof(&self, author: &MemberId) -> Option<Vec<u8>> {
        self.view().proofs().get(author).map(EquivocationProof::encode)
    }

    /// The store, for reads of the logs. Reads are capped by the clock, so a record is never
    /// served before the writer has published it (an own record: before it is durable).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Canonical bytes of `author`'s records from `from_seq`, up to what the clock shows.
    pub fn range_bytes(
        &self,
        author: &MemberId,
        from_seq: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let Some(to) = self.view().clock().get(author).map(|c| c.seq) else { return Ok(Vec::new()) };
        if from_seq > to {
            return Ok(Vec::new());
        }
        self.store.range_bytes(author, from_seq.max(1), to, limit, max_bytes)
    }

    /// Decoded records of `author` from `from_seq`, up to what the clock shows.
    pub fn range(&self, author: &MemberId, from_seq: u64, limit: usize) -> Result<Vec<Record>, StoreError> {
        let Some(to) = self.view().clock().get(author).map(|c| c.seq) else { return Ok(Vec::new()) };
        self.store.range(author, from_seq.max(1), to, limit)
    }
}
