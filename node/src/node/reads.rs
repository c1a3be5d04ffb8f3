//! Reading entries and the node's status.

use hashmesh_protocol::{MemberId, RecordId};

use super::{NodeError, NodeHandle, now_ms};
use crate::api::{EntryFilter, EntryPage, EntryView, LogHead, StatusView, VoteView};
use crate::replica::{EntryState, Replica};

impl NodeHandle {
    pub(super) fn entry_state<'a>(
        &self,
        replica: &'a Replica,
        id: &RecordId,
    ) -> Result<&'a EntryState, NodeError> {
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
