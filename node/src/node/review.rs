//! What admins review: the queue of entries awaiting this member's vote, an entry's signed
//! history, and a proof of its status that can be checked offline.

use hashmesh_protocol::{Body, EntryVotes, MemberId, Record, RecordId, Status, Verdict};

use super::{NodeError, NodeHandle, now_ms};
use crate::api::{HistoryEvent, HistoryView, QueueItem, QueueQuery, QueueView};
use crate::audit::{FORMAT, ProofBundle};

impl NodeHandle {
    /// Entries awaiting this member's vote, oldest first: other members' entries that are
    /// pending or disputed and that this member has not voted on.
    pub fn queue(&self, query: &QueueQuery) -> QueueView {
        let limit = query.limit.unwrap_or(100).clamp(1, 1000) as usize;
        let now = now_ms();
        let me = self.shared.me;
        let (total, entries) = {
            let view = self.shared.replica.view();
            let policy = view.policy();
            // Oldest first by the author's clock; one author's entries in its log's order.
            let mut waiting: Vec<(u64, MemberId, u64, RecordId)> = view
                .catalog()
                .after(None)
                .filter(|s| {
                    let mine = policy.identity(&s.votes.author()) == policy.identity(&me);
                    let voted = s.votes.votes().any(|(voter, _)| voter == me);
                    let open = matches!(s.votes.status(policy, now), Status::Pending | Status::Disputed);
                    !mine && !voted && open
                })
                .map(|s| (s.timestamp, s.votes.author(), s.seq, s.id))
                .collect();
            waiting.sort_unstable();
            let total = waiting.len();
            let entries: Vec<_> = waiting
                .iter()
                .take(limit)
                .filter_map(|(_, _, _, id)| view.catalog().get(id))
                .map(|s| self.entry_view(&view, s, now))
                .collect();
            (total, entries)
        };
        let entries = entries
            .into_iter()
            .map(|mut entry| {
                self.add_reasons(&mut entry.votes);
                let count = |v: Verdict| entry.votes.iter().filter(|x| x.verdict == v).count();
                let (confirms, disputes) = (count(Verdict::Confirm), count(Verdict::Dispute));
                QueueItem { entry, confirms, disputes }
            })
            .collect();
        QueueView { entries, total }
    }

    /// The entry and every vote and retraction naming it, read back from the logs.
    fn entry_records(&self, id: &RecordId) -> Result<(Record, Vec<Record>), NodeError> {
        let (author, seq, events) = {
            let view = self.shared.replica.view();
            let state = view.catalog().get(id).ok_or(NodeError::UnknownEntry(*id))?;
            (state.votes.author(), state.seq, state.events.clone())
        };
        let store = self.shared.replica.store();
        let missing = |what: String| NodeError::Store(crate::store::StoreError::Corrupt(what));
        let entry =
            store.get_at(&author, seq)?.ok_or_else(|| missing(format!("entry {id} is not in its log")))?;
        let mut records = Vec::with_capacity(events.len());
        for (author, seq) in events {
            // A record cut since (a fork, a retired key's end) no longer counts.
            if let Some(record) = store.get_at(&author, seq)? {
                records.push(record);
            }
        }
        // The order their authors signed them in (their clocks), then by log position.
        records.sort_by_key(|r| (r.timestamp(), r.author(), r.seq()));
        Ok((entry, records))
    }

    /// An entry's history: its record, each vote and retraction, and the status after each.
    pub fn history(&self, id: &RecordId) -> Result<HistoryView, NodeError> {
        let (entry, records) = self.entry_records(id)?;
        let Body::Entry(body) = entry.body() else { return Err(NodeError::UnknownEntry(*id)) };
        let now = now_ms();
        let view = self.shared.replica.view();
        let policy = view.policy();
        let name = |r: &Record| super::reads::member_name(view.manifest(), &r.author());
        let mut votes = EntryVotes::new(entry.author(), body.expires_at);
        let event = |r: &Record, kind: &str, status: Status| HistoryEvent {
            kind: kind.into(),
            author: r.author(),
            author_name: name(r),
            seq: r.seq(),
            id: r.id(),
            timestamp: r.timestamp(),
            verdict: None,
            reason: None,
            reviewer: None,
            status,
            signature: hex::encode(r.signature()),
        };
        let mut events = vec![event(&entry, "entry", votes.status(policy, now))];
        for r in &records {
            let e = match r.body() {
                Body::Vote(v) => {
                    votes.add_vote(r.author(), r.seq(), v.verdict);
                    HistoryEvent {
                        verdict: Some(v.verdict),
                        reason: v.reason.clone(),
                        reviewer: v.reviewer.clone(),
                        ..event(r, "vote", votes.status(policy, now))
                    }
                }
                Body::Retract(x) => {
                    votes.add_retraction(r.author());
                    HistoryEvent {
                        reason: x.reason.clone(),
                        ..event(r, "retract", votes.status(policy, now))
                    }
                }
                Body::Entry(_) | Body::Membership(_) | Body::Stats(_) => continue,
            };
            events.push(e);
        }
        Ok(HistoryView { entry: *id, status: votes.status(policy, now), events })
    }

    /// A proof of the entry's status, checkable offline with `hashmesh verify`.
    pub fn export_proof(&self, id: &RecordId) -> Result<ProofBundle, NodeError> {
        let (entry, records) = self.entry_records(id)?;
        let status = self.entry(id)?.status;
        let view = self.shared.replica.view();
        let governance = view.governance();
        let store = self.shared.replica.store();
        let mut membership = Vec::new();
        for (author, seq) in governance.records() {
            if let Some(r) = store.get_at(&author, seq)? {
                membership.push(hex::encode(r.bytes()));
            }
        }
        Ok(ProofBundle {
            format: FORMAT.into(),
            genesis: governance.epochs()[0].manifest.to_toml(),
            membership,
            entry: hex::encode(entry.bytes()),
            events: records.iter().map(|r| hex::encode(r.bytes())).collect(),
            proofs: view.proofs().values().map(|p| hex::encode(p.encode())).collect(),
            status,
            exported_at: now_ms(),
        })
    }
}
