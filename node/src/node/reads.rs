//! Reading entries, alerts and the node's status. Reads take the replica's view for a moment
//! and never wait on storage.

use hashmesh_protocol::{Body, Manifest, MemberId, RecordId};

use super::{NodeError, NodeHandle, now_ms};
use crate::api::{
    Alert, AlertList, EntryFilter, EntryPage, EntryView, LogHead, RawRecord, StatusView, VoteView,
};
use crate::replica::{EntryState, View};

impl NodeHandle {
    pub(super) fn entry_author(&self, id: &RecordId) -> Result<MemberId, NodeError> {
        let view = self.shared.replica.view();
        view.catalog().get(id).map(|s| s.votes.author()).ok_or(NodeError::UnknownEntry(*id))
    }

    /// One entry with its status.
    pub fn entry(&self, id: &RecordId) -> Result<EntryView, NodeError> {
        let view = self.shared.replica.view();
        let state = view.catalog().get(id).ok_or(NodeError::UnknownEntry(*id))?;
        let mut entry = self.entry_view(&view, state, now_ms());
        self.add_reasons(&mut entry.votes);
        Ok(entry)
    }

    /// A page of entries matching `filter`.
    pub fn entries(&self, filter: &EntryFilter) -> EntryPage {
        let limit = filter.limit.unwrap_or(100).clamp(1, 1000) as usize;
        let now = now_ms();
        let view = self.shared.replica.view();
        let mut entries = Vec::new();
        let mut next_cursor = None;
        for state in view.catalog().after(filter.cursor) {
            if filter.author.is_some_and(|a| a != state.votes.author())
                || filter.category.as_ref().is_some_and(|c| *c != state.entry.category)
                || filter.status.is_some_and(|s| s != state.votes.status(view.policy(), now))
            {
                continue;
            }
            if entries.len() == limit {
                next_cursor = entries.last().map(|e: &EntryView| e.id);
                break;
            }
            entries.push(self.entry_view(&view, state, now));
        }
        EntryPage { entries, next_cursor }
    }

    pub(super) fn entry_view(&self, view: &View, state: &EntryState, now: u64) -> EntryView {
        let name = |m: &MemberId| member_name(view.manifest(), m);
        let status = state.votes.status(view.policy(), now);
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
                .latest()
                .map(|(member, seq, verdict)| VoteView {
                    member,
                    member_name: name(&member),
                    verdict,
                    seq,
                    reason: None,
                    reviewer: None,
                    timestamp: None,
                })
                .collect(),
        }
    }

    /// Fills in each vote's reason, reviewer and time from the voter's log.
    pub(super) fn add_reasons(&self, votes: &mut [VoteView]) {
        for vote in votes {
            let Ok(Some(record)) = self.shared.replica.store().get_at(&vote.member, vote.seq) else {
                continue;
            };
            vote.timestamp = Some(record.timestamp());
            if let Body::Vote(v) = record.body() {
                vote.reason.clone_from(&v.reason);
                vote.reviewer.clone_from(&v.reviewer);
            }
        }
    }

    /// Proofs that members equivocated, with both records.
    pub fn alerts(&self) -> AlertList {
        let view = self.shared.replica.view();
        let alerts = view
            .proofs()
            .values()
            .map(|proof| Alert {
                author: proof.author(),
                author_name: member_name(view.manifest(), &proof.author()),
                seq: proof.seq(),
                records: proof.records().iter().map(|r| RawRecord::of(r)).collect(),
            })
            .collect();
        AlertList { alerts }
    }

    /// The node's status, with the network's view of which peers hold an identical replica.
    /// Everything in it is kept up to date as records are stored, never counted on demand.
    pub async fn status(&self) -> Result<StatusView, NodeError> {
        let peers = self.peers().await;
        let mut status = self.replica_status();
        status.in_sync_with = peers.into_iter().filter(|p| p.in_sync).map(|p| p.peer_id).collect();
        status.refused_connections = self.shared.net.refused_connections().await;
        Ok(status)
    }

    fn replica_status(&self) -> StatusView {
        let view = self.shared.replica.view();
        let manifest = view.manifest();
        let logs = view
            .clock()
            .iter()
            .map(|(author, log)| LogHead {
                author: *author,
                name: member_name(manifest, author),
                seq: log.seq,
                head: log.id,
                forked_at: log.fork.map(|f| f.seq),
            })
            .collect();
        StatusView {
            federation: manifest.name.clone(),
            epoch: manifest.epoch,
            member: self.shared.me,
            member_name: member_name(manifest, &self.shared.me),
            peer_id: Some(self.shared.net.peer_id().to_string()),
            records: view.records() as usize,
            entries: view.catalog().len(),
            buffered: view.buffered(),
            digest: hex::encode(crate::sync::digest(view.clock())),
            logs,
            equivocators: view.proofs().keys().copied().collect(),
            own_log: self.own_log().name().into(),
            in_sync_with: Vec::new(),
            refused_connections: 0,
            follows: self.follows().map(str::to_owned),
        }
    }
}

/// The name of the member a key belongs to, or belonged to (a retired key).
pub(super) fn member_name(manifest: &Manifest, key: &MemberId) -> Option<String> {
    match manifest.member(key) {
        Some(member) => Some(member.name.clone()),
        None => manifest.retired_key(key).map(|r| r.name.clone()),
    }
}
