//! Writing to this member's own log: entries, votes, retractions. Each is acknowledged only
//! once it is on disk (the writer commits concurrent writes together, with one flush), then
//! gossiped.

use hashmesh_protocol::{Body, Entry, RecordId, Retract, Verdict, Vote};

use super::{NodeError, NodeHandle, now_ms};
use crate::api::{CastVote, RetractEntry, SubmitEntry, Written};
use crate::sync::OwnLog;

impl NodeHandle {
    /// Refuses own writes until the own log is confirmed by peers, so a node restored from an
    /// old backup never reuses a seq.
    pub(super) fn check_may_author(&self) -> Result<(), NodeError> {
        if let Some(node) = self.follows() {
            return Err(NodeError::Follower(format!(
                "this node is a read-only follower of {node}: send submissions, votes, retractions, imports and membership changes to that node"
            )));
        }
        let epoch = {
            let view = self.shared.replica.view();
            let manifest = view.manifest();
            (!manifest.is_member(&self.shared.me)).then_some(manifest.epoch)
        };
        if let Some(epoch) = epoch {
            return Err(NodeError::NotMember(format!(
                "this node's member key {} is not a member of the federation in epoch {epoch}: it replicates, but cannot write until an epoch adds it (a member proposes it with `hashmesh member propose`)",
                self.shared.me
            )));
        }
        if let Some((proposal, cut)) = self.own_cut()
            && self.shared.replica.view().clock().get(&self.shared.me).map_or(0, |c| c.seq) >= cut
        {
            return Err(NodeError::Conflict(format!(
                "this member chose proposal {proposal}, which ends this key's log at seq {cut} (a key rotation or removal): a write past it would be dropped once the proposal takes effect; when it does, restart the node with the member's new key"
            )));
        }
        match self.own_log() {
            OwnLog::Confirmed | OwnLog::Unconfirmed => Ok(()),
            OwnLog::Waiting => Err(NodeError::NotReady(
                "this node is still checking with its peers that it holds its member's whole log (so it never reuses a sequence number); writes are accepted once that is done — retry shortly".into(),
            )),
            OwnLog::Stuck => Err(NodeError::NotReady(
                "no peer could be reached to confirm this node holds its member's whole log, so writes are refused to avoid forking it; check p2p connectivity, or set p2p.start_unconfirmed = true if this data dir is known to be current".into(),
            )),
        }
    }

    async fn write(&self, bodies: Vec<Body>) -> Result<Vec<Written>, NodeError> {
        let _shared = self.shared.authoring.read().await;
        self.write_unshared(bodies).await
    }

    /// [`Self::write`] for a caller that holds `authoring` alone already.
    pub(super) async fn write_unshared(&self, bodies: Vec<Body>) -> Result<Vec<Written>, NodeError> {
        self.check_may_author()?;
        let records = self.shared.replica.author(bodies, now_ms()).await?;
        for record in &records {
            self.shared.net.publish(record.bytes().to_vec());
        }
        Ok(records.iter().map(|r| Written { id: r.id(), seq: r.seq() }).collect())
    }

    pub(super) async fn write_one(&self, body: Body) -> Result<Written, NodeError> {
        let mut written = self.write(vec![body]).await?;
        written.pop().ok_or_else(|| NodeError::Invalid("no record was written".into()))
    }

    /// Submits a new entry in this member's log.
    pub async fn submit(&self, req: SubmitEntry) -> Result<Written, NodeError> {
        self.write_one(entry_body(req, now_ms())?).await
    }

    /// Submits many entries in chunks, each stored with one flush (bulk import): far faster
    /// than one `submit` each, and just as durable once it returns. If an entry is refused,
    /// the chunks before it stay written and the error is returned.
    pub async fn submit_batch(&self, entries: Vec<SubmitEntry>) -> Result<Vec<Written>, NodeError> {
        let mut written = Vec::with_capacity(entries.len());
        let mut entries = entries.into_iter().peekable();
        while entries.peek().is_some() {
            // Chunks keep each writer round short, so other writers and readers are not starved.
            let now = now_ms();
            let chunk =
                entries.by_ref().take(4096).map(|e| entry_body(e, now)).collect::<Result<Vec<_>, _>>()?;
            written.extend(self.write(chunk).await?);
        }
        Ok(written)
    }

    /// Votes on another member's entry. `reviewer` is the admin's token name.
    pub async fn vote(
        &self,
        entry: RecordId,
        req: CastVote,
        reviewer: Option<String>,
    ) -> Result<Written, NodeError> {
        let author = self.entry_author(&entry)?;
        if author == self.shared.me {
            return Err(NodeError::OwnEntry(entry));
        }
        if req.verdict == Verdict::Dispute && req.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
            return Err(NodeError::Invalid(
                "a dispute needs a reason (why the entry is wrong: not illegal, wrong category, a false positive …), for the other members' reviewers".into(),
            ));
        }
        self.write_one(Body::Vote(Vote { entry, verdict: req.verdict, reason: req.reason, reviewer })).await
    }

    /// Retracts one of this member's entries.
    pub async fn retract(&self, entry: RecordId, req: RetractEntry) -> Result<Written, NodeError> {
        {
            let view = self.shared.replica.view();
            let state = view.catalog().get(&entry).ok_or(NodeError::UnknownEntry(entry))?;
            if state.votes.author() != self.shared.me {
                return Err(NodeError::NotAuthor(entry));
            }
            if state.votes.is_retracted() {
                return Err(NodeError::AlreadyRetracted(entry));
            }
        }
        self.write_one(Body::Retract(Retract { entry, reason: req.reason })).await
    }
}

/// The entry `req` asks for, checked at `now` (this node's clock, unix ms).
fn entry_body(req: SubmitEntry, now: u64) -> Result<Body, NodeError> {
    if req.fingerprints.is_empty() {
        return Err(NodeError::Invalid("an entry needs at least one fingerprint".into()));
    }
    if let Some(at) = req.expires_at
        && at <= now
    {
        return Err(NodeError::Invalid(format!(
            "expires_at {at} is not in the future (this node's clock reads {now}, unix ms): an entry that has already lapsed would never apply"
        )));
    }
    Ok(Body::Entry(Entry {
        fingerprints: req.fingerprints,
        category: req.category,
        links: req.links,
        note: req.note,
        expires_at: req.expires_at,
    }))
}
