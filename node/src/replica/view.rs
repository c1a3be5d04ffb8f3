//! What readers see of the replica: the catalog, the vector clock, counters and proofs. The
//! writer updates it only after a batch is stored, holding the lock for in-memory work alone,
//! so a long write never keeps a reader waiting.

use std::collections::BTreeMap;

use hashmesh_protocol::{EquivocationProof, Governance, Manifest, MemberId, Policy};

use super::Catalog;
use crate::sync::Clock;

/// The replica as readers see it. Every field is derived from the stored log and proofs.
pub struct View {
    pub(super) catalog: Catalog,
    pub(super) clock: Clock,
    pub(super) records: u64,
    pub(super) proofs: BTreeMap<MemberId, EquivocationProof>,
    pub(super) buffered: usize,
    pub(super) policy: Policy,
    pub(super) governance: Governance,
}

impl View {
    /// Every entry with its votes, and the matching indexes.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Every author's log as stored and durable (own records) — what sync offers peers.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Records held in the logs (up to each forked author's fork point).
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Proofs of equivocation held, one per author.
    pub fn proofs(&self) -> &BTreeMap<MemberId, EquivocationProof> {
        &self.proofs
    }

    /// Out-of-order records waiting for a gap to fill.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// The policy in force: the manifest's numbers and the forked members.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The membership epochs and pending proposals.
    pub fn governance(&self) -> &Governance {
        &self.governance
    }

    /// The manifest in force.
    pub fn manifest(&self) -> &Manifest {
        self.governance.current()
    }
}
