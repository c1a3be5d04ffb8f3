//! Membership epochs without a central authority: proposals, approvals, and the chain of
//! manifests every node derives from them identically.
//!
//! A member proposes [`Changes`] for epoch n+1 by signing a [`Membership`] record whose text
//! is the changes as TOML; another member approves by signing a record with the same epoch
//! and the same text. The proposal is named by the hash of both ([`ProposalId`]).
//!
//! **The rule** (a pure function of the records held, so every node computes the same chain):
//! for each member of epoch n, its *choice* for epoch n+1 is its lowest-seq membership record
//! for n+1 whose changes apply to epoch n's manifest. A proposal takes effect when the choices
//! of a strict majority of epoch n's members name it. A member chooses once per epoch, so at
//! most one proposal can reach a majority: competing proposals cannot both win, and which one
//! wins does not depend on arrival order. Records for an epoch already decided change nothing.
//!
//! What an epoch does is computed, not copied: [`Manifest::apply`] turns epoch n's manifest and
//! the changes into epoch n+1's, so a proposal cannot smuggle in anything but its changes.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::manifest::RetiredKey;
use crate::{Body, Manifest, ManifestError, MemberId, MemberInfo, PolicyParams, Record, RecordId};

/// Changes to the federation that make its next epoch. The text form is TOML:
///
/// ```toml
/// [[add]]                        # a new member
/// name = "zeta"
/// key = "<64 hex digits>"
/// peers = ["12D3KooW…"]
/// addresses = ["/ip4/192.0.2.9/tcp/7700"]
///
/// [[remove]]                     # a member leaves; its log ends at last_seq everywhere
/// key = "<64 hex digits>"
/// last_seq = 1042
/// votes_count = false            # whether its past votes keep counting
///
/// [[rotate]]                     # a member's new key (its old log ends at last_seq) or nodes
/// member = "<its current key>"
/// key = "<its new key>"
/// last_seq = 77
/// peers = ["12D3KooW…"]
///
/// [policy]                       # replaces the policy numbers
/// confirmations_required = 3
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Changes {
    /// Members to add.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add: Vec<MemberInfo>,
    /// Members to remove.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<Removal>,
    /// Members whose key, peer ids or addresses change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rotate: Vec<Rotation>,
    /// New policy numbers (all of them: an absent number takes its default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyParams>,
}

/// A member to remove.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Removal {
    /// Its key.
    pub key: MemberId,
    /// The last seq of its log that counts: every node cuts the log there.
    pub last_seq: u64,
    /// Whether its votes up to `last_seq` keep counting.
    pub votes_count: bool,
}

/// A member's new key, peer ids or addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    /// The member, by its current key.
    pub member: MemberId,
    /// Its new signing key; its old key's log ends at `last_seq` and stays valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<MemberId>,
    /// The last seq of the old key's log (required with `key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seq: Option<u64>,
    /// Its nodes' peer ids, replacing the list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peers: Option<Vec<String>>,
    /// Its nodes' addresses, replacing the list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Vec<String>>,
}

impl Changes {
    /// Parses the TOML text of a membership record.
    pub fn from_toml(text: &str) -> Result<Self, ManifestError> {
        toml::from_str(text).map_err(|e| ManifestError::Syntax(e.to_string()))
    }

    /// The TOML text, as a membership record carries it.
    pub fn to_toml(&self) -> String {
        // Serialising plain strings, integers and lists cannot fail.
        toml::to_string_pretty(self).unwrap_or_default()
    }

    fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty() && self.rotate.is_empty() && self.policy.is_none()
    }
}

impl Manifest {
    /// The manifest of the next epoch: this one with `changes` applied, checked.
    pub fn apply(&self, changes: &Changes) -> Result<Manifest, ManifestError> {
        let rule = |m: String| Err(ManifestError::Rule(m));
        if changes.is_empty() {
            return rule("a proposal must add, remove or rotate a member, or change the policy".into());
        }
        let mut next = self.clone();
        next.epoch += 1;
        let epoch = next.epoch;
        for removal in &changes.remove {
            let Some(at) = next.members.iter().position(|m| m.key == removal.key) else {
                return rule(format!("cannot remove {}: not a member in epoch {}", removal.key, self.epoch));
            };
            let gone = next.members.remove(at);
            // The member's earlier keys now stand for a removed member.
            for old in next.retired.iter_mut().filter(|r| r.successor == Some(gone.key)) {
                old.votes_count &= removal.votes_count;
            }
            next.retired.push(RetiredKey {
                key: gone.key,
                name: gone.name,
                last_seq: removal.last_seq,
                epoch,
                successor: None,
                votes_count: removal.votes_count,
            });
        }
        let mut rotated = std::collections::BTreeSet::new();
        for rotation in &changes.rotate {
            let Some(member) = next.members.iter_mut().find(|m| m.key == rotation.member) else {
                return rule(format!(
                    "cannot rotate {}: not a member in epoch {}",
                    rotation.member, self.epoch
                ));
            };
            // One rotation per member and epoch: each of a member's keys then retires in an
            // epoch of its own, which orders its votes by key without ties.
            if !rotated.insert(member.name.clone()) {
                return rule(format!("member {:?} is rotated twice in one proposal", member.name));
            }
            if let Some(peers) = &rotation.peers {
                member.peers.clone_from(peers);
            }
            if let Some(addresses) = &rotation.addresses {
                member.addresses.clone_from(addresses);
            }
            let Some(key) = rotation.key else { continue };
            let Some(last_seq) = rotation.last_seq else {
                return rule(format!("rotating {}'s key needs the old key's last_seq", member.name));
            };
            let old = std::mem::replace(&mut member.key, key);
            let name = member.name.clone();
            for earlier in next.retired.iter_mut().filter(|r| r.successor == Some(old)) {
                earlier.successor = Some(key);
            }
            next.retired.push(RetiredKey {
                key: old,
                name,
                last_seq,
                epoch,
                successor: Some(key),
                votes_count: true,
            });
        }
        for member in &changes.add {
            if next.retired_key(&member.key).is_some() {
                return rule(format!("key {} was retired and cannot join again; use a new key", member.key));
            }
            next.members.push(member.clone());
        }
        if let Some(policy) = &changes.policy {
            next.policy = policy.clone();
        }
        next.check()?;
        Ok(next)
    }
}

/// A proposal's name: blake3 of its epoch and text.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct ProposalId(pub [u8; 32]);

impl ProposalId {
    /// The id of the proposal for `epoch` with this text.
    pub fn of(epoch: u64, text: &str) -> Self {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"hashmesh proposal\0");
        hasher.update(&epoch.to_be_bytes());
        hasher.update(text.as_bytes());
        Self(*hasher.finalize().as_bytes())
    }
}

impl fmt::Display for ProposalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for ProposalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProposalId({})", hex::encode(&self.0[..4]))
    }
}

impl FromStr for ProposalId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out)
            .map_err(|_| format!("a proposal id is 64 hex digits, got {s:?}"))?;
        Ok(Self(out))
    }
}

impl From<ProposalId> for String {
    fn from(id: ProposalId) -> Self {
        id.to_string()
    }
}

impl TryFrom<String> for ProposalId {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// A proposal seen in some membership record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// Its id.
    pub id: ProposalId,
    /// The epoch it would make.
    pub epoch: u64,
    /// Its text, as the records carry it.
    pub text: String,
    /// The changes.
    pub changes: Changes,
}

/// A member's signed record for a proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// The member's key.
    pub member: MemberId,
    /// The seq of its record.
    pub seq: u64,
    /// The record's id.
    pub record: RecordId,
}

/// One epoch of the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Epoch {
    /// Its manifest.
    pub manifest: Manifest,
    /// The proposal that made it (none for genesis).
    pub proposal: Option<ProposalId>,
}

/// The chain of epochs and the proposals not yet in effect, derived from membership records.
#[derive(Debug, Clone)]
pub struct Governance {
    epochs: Vec<Epoch>,
    proposals: BTreeMap<ProposalId, Proposal>,
    /// Every membership record held: (epoch, author) → seq → (proposal, record id).
    records: BTreeMap<(u64, MemberId), BTreeMap<u64, (ProposalId, RecordId)>>,
}

impl Governance {
    /// The chain at its genesis.
    pub fn new(genesis: Manifest) -> Self {
        Self {
            epochs: vec![Epoch { manifest: genesis, proposal: None }],
            proposals: BTreeMap::new(),
            records: BTreeMap::new(),
        }
    }

    /// The manifest in force.
    pub fn current(&self) -> &Manifest {
        // The chain always holds genesis.
        &self.epochs[self.epochs.len() - 1].manifest
    }

    /// Every epoch from genesis.
    pub fn epochs(&self) -> &[Epoch] {
        &self.epochs
    }

    /// Where every membership record taken in sits: (author, seq).
    pub fn records(&self) -> impl Iterator<Item = (MemberId, u64)> + '_ {
        self.records.iter().flat_map(|((_, author), by_seq)| by_seq.keys().map(move |seq| (*author, *seq)))
    }

    /// A proposal by id.
    pub fn proposal(&self, id: &ProposalId) -> Option<&Proposal> {
        self.proposals.get(id)
    }

    /// Proposals for epochs not yet in effect, oldest epoch first, each with the members who
    /// signed a record for it.
    pub fn pending(&self) -> Vec<(&Proposal, Vec<Approval>)> {
        let current = self.current().epoch;
        let mut pending: Vec<_> =
            self.proposals.values().filter(|p| p.epoch > current).map(|p| (p, self.signers(p))).collect();
        pending.sort_by_key(|(p, _)| (p.epoch, p.id));
        pending
    }

    /// Everyone who signed a record for `proposal`, by member key.
    pub fn signers(&self, proposal: &Proposal) -> Vec<Approval> {
        self.records
            .range((proposal.epoch, MemberId([0; 32]))..=(proposal.epoch, MemberId([0xff; 32])))
            .filter_map(|((_, member), by_seq)| {
                by_seq.iter().find(|(_, (id, _))| *id == proposal.id).map(|(seq, (_, record))| Approval {
                    member: *member,
                    seq: *seq,
                    record: *record,
                })
            })
            .collect()
    }

    /// Takes in a membership record its author's log holds (others are ignored). Returns the
    /// epochs that took effect because of it, oldest first.
    pub fn add(&mut self, record: &Record) -> Vec<Manifest> {
        let Body::Membership(m) = record.body() else { return Vec::new() };
        let Ok(changes) = Changes::from_toml(&m.changes) else { return Vec::new() };
        let id = ProposalId::of(m.epoch, &m.changes);
        self.proposals.entry(id).or_insert_with(|| Proposal {
            id,
            epoch: m.epoch,
            text: m.changes.clone(),
            changes,
        });
        self.records.entry((m.epoch, record.author())).or_default().insert(record.seq(), (id, record.id()));
        let mut took_effect = Vec::new();
        while let Some(epoch) = self.decide_next() {
            took_effect.push(epoch.manifest.clone());
            self.epochs.push(epoch);
        }
        took_effect
    }

    /// The approvals held for the proposal that made epoch `index` of the chain: the choices
    /// of the previous epoch's members that name it (a majority, and any that came later).
    pub fn approvals(&self, index: usize) -> Vec<Approval> {
        let (Some(prev), Some(Epoch { proposal: Some(id), .. })) =
            (index.checked_sub(1).and_then(|i| self.epochs.get(i)), self.epochs.get(index))
        else {
            return Vec::new();
        };
        self.choices(&prev.manifest).remove(id).map(|(_, approvals)| approvals).unwrap_or_default()
    }

    /// The next epoch, if a proposal for it has a majority of the current members' choices.
    fn decide_next(&self) -> Option<Epoch> {
        let current = self.current();
        let majority = current.members.len() / 2 + 1;
        self.choices(current)
            .into_iter()
            .find(|(_, (_, approvals))| approvals.len() >= majority)
            .map(|(id, (manifest, _))| Epoch { manifest, proposal: Some(id) })
    }

    /// The choices of `prev`'s members for the epoch after it, by proposal, with the manifest
    /// each proposal makes.
    fn choices(&self, prev: &Manifest) -> BTreeMap<ProposalId, (Manifest, Vec<Approval>)> {
        let next = prev.epoch + 1;
        let mut tally: BTreeMap<ProposalId, (Manifest, Vec<Approval>)> = BTreeMap::new();
        let mut applies: BTreeMap<ProposalId, Option<Manifest>> = BTreeMap::new();
        for member in &prev.members {
            let Some(by_seq) = self.records.get(&(next, member.key)) else { continue };
            // The member's choice: its first record for this epoch whose changes apply.
            let choice = by_seq.iter().find_map(|(seq, (id, record))| {
                let manifest = applies
                    .entry(*id)
                    .or_insert_with(|| self.proposals.get(id).and_then(|p| prev.apply(&p.changes).ok()))
                    .clone()?;
                Some((*id, manifest, Approval { member: member.key, seq: *seq, record: *record }))
            });
            if let Some((id, manifest, approval)) = choice {
                tally.entry(id).or_insert_with(|| (manifest, Vec::new())).1.push(approval);
            }
        }
        tally
    }
}

#[cfg(test)]
mod tests;
