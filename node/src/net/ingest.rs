//! Turning what peers send into stored records, off the swarm's task.
//!
//! Two stages in a row, each a task: the first decodes, checks ranges and verifies signatures
//! (on blocking threads, spread over the cores); the second hands the verified records to the
//! replica's writer and waits for them to be stored. The stages overlap — the next batch is
//! verified while the last one is written — and keep arrival order, so one author's batches
//! are stored in seq order. Each outcome goes back to the event loop as a [`Command`].

use hashmesh_protocol::{EquivocationProof, Record, ValidationError};
use libp2p::{PeerId, gossipsub};
use serde_bytes::ByteBuf;
use tokio::sync::mpsc;

use super::Command;
use crate::replica::{IngestError, ReplicaHandle, RunOutcome, Verified, verify_run};
use crate::sync::fork::{self, Search};
use crate::sync::{Fetch, FetchResult, wire};

/// Work waiting to be verified. When it is full the event loop drops what comes (gossip goes
/// unforwarded, a fetch is asked again later) rather than wait or grow memory: the stages
/// report back through the event loop, so it must never wait on them.
const QUEUE: usize = 256;

/// Something a peer sent.
pub(crate) enum Job {
    /// A range answer to a catch-up or search fetch.
    Range { peer: PeerId, fetch: Fetch, records: Vec<ByteBuf> },
    /// A proof answer.
    Proof { peer: PeerId, fetch: Fetch, bytes: ByteBuf },
    /// A gossiped record.
    Gossip { peer: PeerId, id: gossipsub::MessageId, bytes: Vec<u8> },
    /// A gossiped proof.
    GossipProof { peer: PeerId, id: gossipsub::MessageId, bytes: Vec<u8> },
}

/// What the second stage must do.
enum Checked {
    Batch { peer: PeerId, fetch: Fetch, verified: Vec<Verified>, error: Option<String> },
    Proof { peer: PeerId, fetch: Fetch, proof: EquivocationProof },
    Gossip { peer: PeerId, id: gossipsub::MessageId, record: Verified },
    GossipProof { peer: PeerId, id: gossipsub::MessageId, proof: EquivocationProof },
    Report(Command),
}

/// Starts both stages; returns where to send jobs.
pub(crate) fn spawn(replica: ReplicaHandle, events: mpsc::Sender<Command>) -> mpsc::Sender<Job> {
    let (jobs_tx, mut jobs) = mpsc::channel::<Job>(QUEUE);
    let (checked_tx, mut checked) = mpsc::channel::<Checked>(2);
    let reader = replica.clone();
    tokio::spawn(async move {
        while let Some(job) = jobs.recv().await {
            let reader = reader.clone();
            let Ok(next) = tokio::task::spawn_blocking(move || check(&reader, job)).await else { continue };
            if checked_tx.send(next).await.is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        while let Some(next) = checked.recv().await {
            let Some(report) = store(&replica, next).await else { break };
            for command in report {
                if events.send(command).await.is_err() {
                    return;
                }
            }
        }
    });
    jobs_tx
}

/// Stage one: decode, check, verify. Blocking work.
fn check(replica: &ReplicaHandle, job: Job) -> Checked {
    match job {
        Job::Range { peer, fetch, records } => {
            let decoded = match wire::decode_range(fetch.author, fetch.from_seq, fetch.limit, &records) {
                Ok(decoded) => decoded,
                Err(e) => return done(peer, fetch, FetchResult::Bad(e.to_string())),
            };
            match fetch.purpose {
                crate::sync::Purpose::Search => {
                    let store = replica.store();
                    let result =
                        match fork::search(&decoded, |seq| store.get_at(&fetch.author, seq).ok().flatten()) {
                            Search::Found(proof) => return Checked::Proof { peer, fetch, proof: *proof },
                            Search::Lower { below } => FetchResult::SearchLower { below },
                            Search::Agree => FetchResult::Nothing,
                            Search::Bad(reason) => FetchResult::Bad(reason),
                        };
                    done(peer, fetch, result)
                }
                _ => {
                    let (verified, error) = verify_run(decoded);
                    Checked::Batch { peer, fetch, verified, error: error.map(|e| e.to_string()) }
                }
            }
        }
        Job::Proof { peer, fetch, bytes } => match EquivocationProof::decode(&bytes) {
            Ok(proof) if proof.author() == fetch.author => Checked::Proof { peer, fetch, proof },
            Ok(_) => {
                done(peer, fetch, FetchResult::Bad("answered with a proof against another author".into()))
            }
            Err(e) => done(peer, fetch, FetchResult::Bad(e.to_string())),
        },
        Job::Gossip { peer, id, bytes } => {
            match Record::decode(&bytes).map_err(Into::into).and_then(Verified::check) {
                Ok(record) => Checked::Gossip { peer, id, record },
                Err(e) => {
                    Checked::Report(Command::Validated { peer, id, verdict: Verdict::Reject(e.to_string()) })
                }
            }
        }
        Job::GossipProof { peer, id, bytes } => match EquivocationProof::decode(&bytes) {
            Ok(proof) => Checked::GossipProof { peer, id, proof },
            Err(e) => {
                Checked::Report(Command::Validated { peer, id, verdict: Verdict::Reject(e.to_string()) })
            }
        },
    }
}

fn done(peer: PeerId, fetch: Fetch, result: FetchResult) -> Checked {
    Checked::Report(Command::Done(peer, fetch, result))
}

/// What to tell gossipsub about a message.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Valid and new: forward it.
    Accept,
    /// Nothing wrong, nothing new: do not forward.
    Ignore,
    /// Invalid: drop it and count it against the sender.
    Reject(String),
    /// Valid, but its author's earlier records are missing: forward it, and catch up.
    Gap,
    /// Valid, but off our copy of its author's log: forward it, and search the sender's log.
    Conflict,
}

/// Stage two: store through the writer. `None` when the writer is gone (shutdown).
async fn store(replica: &ReplicaHandle, checked: Checked) -> Option<Vec<Command>> {
    let mut out = Vec::new();
    match checked {
        Checked::Report(command) => out.push(command),
        Checked::Batch { peer, fetch, verified, error } => {
            let (outcome, proofs) = replica.ingest(verified).await.ok()?;
            publish(&proofs, &mut out);
            match outcome.fetch_result(error) {
                Ok(result) => out.push(Command::Done(peer, fetch, result)),
                Err(e) => {
                    tracing::error!(error = %e, "cannot store synced records");
                    out.push(Command::Failed(peer, fetch));
                }
            }
        }
        Checked::Proof { peer, fetch, proof } => {
            let result = match replica.offer_proof(proof.clone()).await {
                Ok(true) => {
                    publish(std::slice::from_ref(&proof), &mut out);
                    FetchResult::Proven
                }
                Ok(false) => FetchResult::Nothing,
                Err(e) => {
                    tracing::error!(error = %e, "cannot store a proof of equivocation");
                    out.push(Command::Failed(peer, fetch));
                    return Some(out);
                }
            };
            out.push(Command::Done(peer, fetch, result));
        }
        Checked::Gossip { peer, id, record } => {
            let (outcome, proofs) = replica.ingest(vec![record]).await.ok()?;
            publish(&proofs, &mut out);
            let verdict = match outcome {
                // A member this node's epoch does not list yet: the sender may be an epoch
                // ahead. No fault of the sender's; sync brings the record once the epoch does.
                RunOutcome {
                    error: Some(IngestError::Invalid(ValidationError::NotMember(author))), ..
                } => {
                    tracing::debug!(%author, "gossip from a key that is not a member in this node's epoch");
                    Verdict::Ignore
                }
                RunOutcome { error: Some(IngestError::Invalid(e)), .. } => Verdict::Reject(e.to_string()),
                RunOutcome { error: Some(IngestError::Store(e)), .. } => {
                    tracing::error!(error = %e, "cannot store a gossiped record");
                    Verdict::Ignore
                }
                RunOutcome { equivocation: true, .. } | RunOutcome { conflict: Some(_), .. } => {
                    Verdict::Conflict
                }
                RunOutcome { stored, .. } if stored > 0 => Verdict::Accept,
                RunOutcome { buffered, .. } if buffered > 0 => Verdict::Gap,
                _ => Verdict::Ignore,
            };
            out.push(Command::Validated { peer, id, verdict });
        }
        Checked::GossipProof { peer, id, proof } => {
            let verdict = match replica.offer_proof(proof).await {
                Ok(true) => Verdict::Accept,
                Ok(false) | Err(_) => Verdict::Ignore,
            };
            out.push(Command::Validated { peer, id, verdict });
        }
    }
    Some(out)
}

fn publish(proofs: &[EquivocationProof], out: &mut Vec<Command>) {
    out.extend(proofs.iter().map(|p| Command::PublishProof(p.encode())));
}
