//! Membership epochs through the RPC: proposing changes, approving them, and reading the chain.
//! A proposal or an approval is a record in this member's own log, like a vote; which epoch
//! is in force is decided by every node alike from the records (`hashmesh_protocol::governance`).

use hashmesh_protocol::{
    Body, Changes, Governance, Manifest, MemberId, Membership, ProposalId, Removal, Rotation,
};

use super::{NodeError, NodeHandle};
use crate::api::{
    ApprovalView, EpochView, MembershipView, ProposalView, ProposalWritten, ProposeChanges, RemoveMember,
};

impl NodeHandle {
    /// Proposes changes for the next epoch; this member's record is its approval.
    ///
    /// A rotation or removal ends a key's log at `last_seq`, by default the last record held.
    /// For this member's own key the default is the proposal's own seq: a proposal cut off
    /// below itself would undo the epoch it makes. Own writes wait meanwhile, so that seq is
    /// the one the proposal gets.
    pub async fn propose(&self, req: ProposeChanges) -> Result<ProposalWritten, NodeError> {
        let _alone = self.shared.authoring.write().await;
        let me = self.shared.me;
        let (current, changes) = {
            let view = self.shared.replica.view();
            let current = view.manifest().clone();
            let held = |key: &MemberId| view.clock().get(key).map_or(0, |c| c.seq);
            let head = |key: &MemberId| if *key == me { held(key) + 1 } else { held(key) };
            let changes = Changes {
                add: req.add,
                remove: req
                    .remove
                    .into_iter()
                    .map(|RemoveMember { key, last_seq, votes_count }| Removal {
                        key,
                        last_seq: last_seq.unwrap_or_else(|| head(&key)),
                        votes_count,
                    })
                    .collect(),
                rotate: req
                    .rotate
                    .into_iter()
                    .map(|r| Rotation {
                        last_seq: r.key.map(|_| r.last_seq.unwrap_or_else(|| head(&r.member))),
                        ..r
                    })
                    .collect(),
                policy: req.policy,
            };
            (current, changes)
        };
        let epoch = current.epoch + 1;
        if let Some(asked) = req.epoch
            && asked != epoch
        {
            return Err(NodeError::Conflict(format!(
                "epoch {asked} is not the next one: epoch {} is in force, so a proposal makes epoch {epoch} (read GET /v1/membership and propose again)",
                current.epoch
            )));
        }
        current.apply(&changes).map_err(|e| NodeError::Invalid(format!("the proposal cannot apply: {e}")))?;
        self.sign_membership(&current, epoch, &changes, changes.to_toml()).await
    }

    /// Approves a pending proposal for the next epoch.
    pub async fn approve(&self, id: ProposalId) -> Result<ProposalWritten, NodeError> {
        let _alone = self.shared.authoring.write().await;
        let (current, proposal) = {
            let view = self.shared.replica.view();
            let proposal = view.governance().proposal(&id).cloned().ok_or(NodeError::UnknownProposal(id))?;
            (view.manifest().clone(), proposal)
        };
        if proposal.epoch <= current.epoch {
            return Err(NodeError::Conflict(format!(
                "proposal {id} is for epoch {}, which is already decided (epoch {} is in force)",
                proposal.epoch, current.epoch
            )));
        }
        if proposal.epoch > current.epoch + 1 {
            return Err(NodeError::Conflict(format!(
                "proposal {id} is for epoch {}: epoch {} must take effect first",
                proposal.epoch,
                current.epoch + 1
            )));
        }
        current.apply(&proposal.changes).map_err(|e| {
            NodeError::Invalid(format!("proposal {id} cannot apply to epoch {}: {e}", current.epoch))
        })?;
        self.sign_membership(&current, proposal.epoch, &proposal.changes, proposal.text).await
    }

    /// Writes this member's membership record for `epoch`, once it is sure the record will
    /// count: the member belongs to `current`, has not chosen another proposal for the epoch
    /// already (a member's first choice for an epoch is the one that counts), and `changes` do
    /// not end its own log before the record. Called holding `authoring` alone.
    async fn sign_membership(
        &self,
        current: &Manifest,
        epoch: u64,
        changes: &Changes,
        text: String,
    ) -> Result<ProposalWritten, NodeError> {
        let me = self.shared.me;
        if !current.is_member(&me) {
            return Err(NodeError::NotMember(format!(
                "this node's member key {me} is not a member in epoch {}: only members propose and approve",
                current.epoch
            )));
        }
        let proposal = ProposalId::of(epoch, &text);
        if let Some(chosen) = self.chosen(epoch)
            && chosen != proposal
        {
            return Err(NodeError::Conflict(format!(
                "this member already chose proposal {chosen} for epoch {epoch}; a member's first choice for an epoch is the one that counts"
            )));
        }
        let next = self.shared.replica.view().clock().get(&me).map_or(0, |c| c.seq) + 1;
        if let Some(cut) = cut_of(changes, &me)
            && cut < next
        {
            return Err(NodeError::Conflict(format!(
                "this proposal ends this member's key's log at seq {cut}, but this member's record for it would be seq {next}: the proposal would cut itself off and undo the epoch it makes; propose it with last_seq {next} (or leave last_seq out)"
            )));
        }
        let mut written =
            self.write_unshared(vec![Body::Membership(Membership { epoch, changes: text })]).await?;
        let record = written.pop().ok_or_else(|| NodeError::Invalid("no record was written".into()))?;
        Ok(ProposalWritten { proposal, epoch, record })
    }

    /// The proposal this member chose for the next epoch and the seq at which it ends this
    /// member's key's log, if it does: own records past that seq would be dropped once it
    /// takes effect.
    pub(super) fn own_cut(&self) -> Option<(ProposalId, u64)> {
        let next = self.shared.replica.view().manifest().epoch + 1;
        let chosen = self.chosen(next)?;
        let view = self.shared.replica.view();
        let proposal = view.governance().proposal(&chosen)?;
        cut_of(&proposal.changes, &self.shared.me).map(|cut| (chosen, cut))
    }

    /// The proposal this member signed first for `epoch`, if any.
    fn chosen(&self, epoch: u64) -> Option<ProposalId> {
        let view = self.shared.replica.view();
        let governance = view.governance();
        governance
            .pending()
            .into_iter()
            .filter(|(p, _)| p.epoch == epoch)
            .filter_map(|(p, signers)| {
                signers.iter().find(|a| a.member == self.shared.me).map(|a| (a.seq, p.id))
            })
            .min()
            .map(|(_, id)| id)
    }

    /// The epoch in force, its manifest, pending proposals and the chain.
    pub fn membership(&self) -> MembershipView {
        let view = self.shared.replica.view();
        let governance = view.governance();
        let manifest = governance.current();
        let approvals = |list: Vec<hashmesh_protocol::Approval>| {
            list.into_iter()
                .map(|a| ApprovalView {
                    member: a.member,
                    name: name_of(governance, &a.member),
                    seq: a.seq,
                    record: a.record,
                })
                .collect()
        };
        MembershipView {
            epoch: manifest.epoch,
            digest: hex::encode(manifest.digest()),
            manifest: manifest.clone(),
            majority: manifest.members.len() / 2 + 1,
            pending: governance
                .pending()
                .into_iter()
                .map(|(p, signers)| ProposalView {
                    id: p.id,
                    epoch: p.epoch,
                    changes: p.changes.clone(),
                    approvals: approvals(signers),
                })
                .collect(),
            history: governance
                .epochs()
                .iter()
                .enumerate()
                .map(|(i, e)| EpochView {
                    epoch: e.manifest.epoch,
                    proposal: e.proposal,
                    approvals: approvals(governance.approvals(i)),
                })
                .collect(),
        }
    }
}

/// Where `changes` end `key`'s log (a removal, or a rotation to a new key), if they do.
fn cut_of(changes: &Changes, key: &MemberId) -> Option<u64> {
    let removed = changes.remove.iter().filter(|r| r.key == *key).map(|r| r.last_seq);
    let rotated =
        changes.rotate.iter().filter(|r| r.member == *key && r.key.is_some()).filter_map(|r| r.last_seq);
    removed.chain(rotated).min()
}

/// A key's member name in any epoch.
fn name_of(governance: &Governance, key: &MemberId) -> Option<String> {
    governance.epochs().iter().rev().find_map(|e| {
        e.manifest
            .member(key)
            .map(|m| m.name.clone())
            .or_else(|| e.manifest.retired_key(key).map(|r| r.name.clone()))
    })
}
