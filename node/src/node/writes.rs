//! Writing to this member's own log: entries, votes, retractions. Each is acknowledged only
//! once it is on disk, then gossiped.

use hashmesh_protocol::{Body, Entry, RecordId, Retract, Status, Vote};

use super::{NodeError, NodeHandle, now_ms};
use crate::api::{CastVote, RetractEntry, SubmitEntry, Written};

impl NodeHandle {
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
}
