//! The replica: the store plus what is derived from it, and the one path every record takes
//! to get in — checked against the membership, chained, staged, stored, indexed.
//!
//! [`Replica`] is owned by one writer (the group-commit thread in [`writer`], or a simulator
//! in tests): records are *staged* — checked against the logs as they will be once everything
//! staged is stored — and then *committed* together as one atomic store batch, flushed when
//! the batch holds records that must be durable before they are acknowledged. Readers see the
//! [`View`], updated after each commit.
//!
//! Records may arrive out of order; one whose author's log has a gap waits in a bounded buffer
//! until the gap is filled. A record that conflicts with one held at the same position is
//! equivocation: when both extend the same predecessor they form a minimal
//! [`EquivocationProof`], which is stored (one per author, the least by rank), cuts the
//! author's log back to before the fork, and marks the author forked in the policy. A conflict
//! further back is reported so that sync can search for the fork point.

mod buffer;
mod catalog;
mod daily;
mod serve;
mod verified;
mod view;
pub mod writer;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use ed25519_dalek::SigningKey;
use hashmesh_protocol::{
    Body, Changes, EquivocationProof, Governance, Manifest, MemberId, Record, RecordId, UnsignedRecord,
    ValidationError,
};

use crate::store::{Head, Loaded, Store, StoreError};
use crate::sync::{Clock, FetchResult, ForkMark, LogClock};
use buffer::Buffer;
pub use catalog::{Catalog, EntryState};
pub use daily::Daily;
pub use verified::{Verified, verify_run};
pub use view::View;
pub use writer::ReplicaHandle;

/// Most out-of-order records held while waiting for a gap to fill.
pub const MAX_BUFFERED: usize = 16_384;

/// What became of a record offered to the replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    /// Staged; `also` buffered records followed it.
    Stored {
        /// Buffered records that followed it, in order.
        also: u64,
    },
    /// Already held.
    Duplicate,
    /// Waiting for the author's earlier records.
    Buffered {
        /// The author's seq the replica needs next.
        next: u64,
    },
    /// Conflicts with the record held at its position, and both extend the same predecessor:
    /// a proof of equivocation, kept.
    Equivocation,
    /// Conflicts with what is held at or before `seq`: the author forked further back, and
    /// only a search of the sender's log can find where.
    Conflict {
        /// The highest seq at which the two histories are known to differ.
        seq: u64,
    },
    /// At or past its author's proven fork point, or past the end of a retired key's log:
    /// such records no longer count.
    PastFork,
}

/// What became of a run of records offered to [`Replica::ingest_run`].
#[derive(Debug, Default)]
pub struct RunOutcome {
    /// Records staged (buffered ones that followed included).
    pub stored: u64,
    /// Records already held.
    pub duplicates: u64,
    /// Records buffered until their author's earlier records arrive.
    pub buffered: u64,
    /// Whether a proof of equivocation was found.
    pub equivocation: bool,
    /// A conflict further back, if the run met one (the run stops there).
    pub conflict: Option<u64>,
    /// Why the run stopped early, if it did.
    pub error: Option<IngestError>,
}

impl RunOutcome {
    /// What a sync batch came to, for the sync engine. `verify_error` is why signature checks
    /// stopped the batch early, if they did. `Err` when storage failed: not the peer's fault.
    pub fn fetch_result(self, verify_error: Option<String>) -> Result<FetchResult, StoreError> {
        Ok(match (self, verify_error) {
            (RunOutcome { error: Some(IngestError::Store(e)), .. }, _) => return Err(e),
            (RunOutcome { error: Some(IngestError::Invalid(e)), .. }, _) => FetchResult::Bad(e.to_string()),
            (RunOutcome { equivocation: true, .. }, _) => FetchResult::Proven,
            (RunOutcome { conflict: Some(seq), .. }, _) => FetchResult::Conflict { seq },
            (_, Some(e)) => FetchResult::Bad(e),
            (RunOutcome { stored, duplicates, .. }, None) => FetchResult::Stored { new: stored, duplicates },
        })
    }
}

/// Why a record was refused.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The record is not valid.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a local record could not be written.
#[derive(Debug, thiserror::Error)]
pub enum AuthorError {
    /// The record breaks a rule.
    #[error(transparent)]
    Invalid(ValidationError),
    /// This member's own key is proven to have signed two histories.
    #[error(
        "this member is proven to have equivocated at seq {0} (two nodes wrote with its key, e.g. a copied data dir): its records no longer count until the federation clears it in a new membership epoch"
    )]
    Forked(u64),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a commit stored.
#[derive(Debug, Default)]
pub struct Committed {
    /// Proofs of equivocation that took effect.
    pub proofs: Vec<EquivocationProof>,
    /// Membership epochs that took effect, oldest first.
    pub epochs: Vec<Manifest>,
    /// Entries whose votes or retraction changed: their status may have.
    pub touched: Vec<RecordId>,
}

impl Committed {
    /// Whether the commit may have changed the status of entries it did not touch (a new
    /// epoch changes who counts; a proof of equivocation discounts a member's votes).
    pub fn changed_all(&self) -> bool {
        !self.proofs.is_empty() || !self.epochs.is_empty()
    }
}

/// Store, heads, proofs, the out-of-order buffer, what is staged, and the readers' view.
pub struct Replica {
    store: Store,
    genesis: Manifest,
    governance: Governance,
    heads: HashMap<MemberId, Head>,
    proofs: BTreeMap<MemberId, EquivocationProof>,
    buffer: Buffer,
    /// Records checked to extend `heads`, in order per author, not yet stored.
    staged: BTreeMap<MemberId, Vec<Record>>,
    /// Proofs found while staging, applied at commit.
    found: BTreeMap<MemberId, EquivocationProof>,
    view: Arc<RwLock<View>>,
}

impl Replica {
    /// Loads the logs and proofs from the store and derives the view, with the membership
    /// epochs the stored records make on top of `genesis`.
    pub fn open(store: Store, genesis: Manifest) -> Result<Self, StoreError> {
        let Derived { view, heads, proofs, governance } = derive(&store, &genesis)?;
        Ok(Self {
            store,
            genesis,
            governance,
            heads: heads.into_iter().collect(),
            proofs,
            buffer: Buffer::new(MAX_BUFFERED),
            staged: BTreeMap::new(),
            found: BTreeMap::new(),
            view: Arc::new(RwLock::new(view)),
        })
    }

    /// The readers' view (shared).
    pub fn view(&self) -> Arc<RwLock<View>> {
        Arc::clone(&self.view)
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The membership epochs and proposals.
    pub fn governance(&self) -> &Governance {
        &self.governance
    }

    /// The head of `author`'s log, staged records included.
    pub fn head(&self, author: &MemberId) -> Option<Head> {
        match self.staged.get(author).and_then(|s| s.last()) {
            Some(r) => Some(Head { seq: r.seq(), id: r.id() }),
            None => self.heads.get(author).copied(),
        }
    }

    fn fork_seq(&self, author: &MemberId) -> Option<u64> {
        let held = self.proofs.get(author).map(EquivocationProof::seq);
        let found = self.found.get(author).map(EquivocationProof::seq);
        held.into_iter().chain(found).min()
    }

    /// The record at (author, seq), staged ones included.
    pub fn record_at(&self, author: &MemberId, seq: u64) -> Result<Option<Record>, StoreError> {
        let committed = self.heads.get(author).map_or(0, |h| h.seq);
        if seq > committed {
            let staged = self.staged.get(author).and_then(|s| s.get((seq - committed - 1) as usize));
            return Ok(staged.cloned());
        }
        self.store.get_at(author, seq)
    }

    /// Signs and stages new records in `key`'s own log.
    pub fn author(
        &mut self,
        key: &SigningKey,
        bodies: Vec<Body>,
        timestamp: u64,
    ) -> Result<Vec<Record>, AuthorError> {
        let author = MemberId::from_key(&key.verifying_key());
        if let Some(seq) = self.fork_seq(&author) {
            return Err(AuthorError::Forked(seq));
        }
        let mut head = self.head(&author);
        let mut records = Vec::with_capacity(bodies.len());
        for body in bodies {
            let record = UnsignedRecord {
                author,
                seq: head.map_or(1, |h| h.seq + 1),
                prev: head.map(|h| h.id).unwrap_or_default(),
                timestamp,
                body,
            }
            .sign(key)
            .map_err(|e| AuthorError::Invalid(e.into()))?;
            self.check_rules(&record).map_err(AuthorError::Invalid)?;
            head = Some(Head { seq: record.seq(), id: record.id() });
            records.push(record);
        }
        self.staged.entry(author).or_default().extend(records.iter().cloned());
        Ok(records)
    }

    /// Checks one record from outside against the logs and stages it (or buffers it).
    pub fn ingest(&mut self, record: Verified) -> Result<Ingested, IngestError> {
        let record = record.into_record();
        match self.check_rules(&record) {
            // Signed by a retired key after its log ended: the peer has not seen that epoch.
            Err(ValidationError::Retired { .. }) => return Ok(Ingested::PastFork),
            checked => checked?,
        }
        let (author, seq) = (record.author(), record.seq());
        if self.fork_seq(&author).is_some_and(|f| seq >= f) {
            return Ok(Ingested::PastFork);
        }
        let head = self.head(&author);
        let held = head.map_or(0, |h| h.seq);
        if seq == 0 {
            return Err(ValidationError::ZeroSeq.into());
        }
        if seq <= held {
            let Some(ours) = self.record_at(&author, seq)? else {
                return Err(StoreError::Corrupt(format!(
                    "{author}'s record {seq} is missing below its head"
                ))
                .into());
            };
            if ours.id() == record.id() {
                return Ok(Ingested::Duplicate);
            }
            if ours.prev() != record.prev() {
                return Ok(Ingested::Conflict { seq });
            }
            let proof = EquivocationProof::new(ours, record).map_err(|e| {
                StoreError::Corrupt(format!("two verified records at one position did not make a proof: {e}"))
            })?;
            tracing::warn!(%author, seq, "equivocation: the author signed two records at one position");
            self.offer_proof(proof);
            return Ok(Ingested::Equivocation);
        }
        if seq > held + 1 {
            self.buffer.insert(record);
            return Ok(Ingested::Buffered { next: held + 1 });
        }
        match record.check_follows(head.map(|h| h.id)) {
            Ok(()) => {}
            Err(ValidationError::BrokenChain { seq, .. }) => return Ok(Ingested::Conflict { seq: seq - 1 }),
            Err(e) => return Err(e.into()),
        }
        self.staged.entry(author).or_default().push(record);
        Ok(Ingested::Stored { also: self.drain_buffer(author) })
    }

    /// Takes in one author's verified records in seq order (a sync batch): stops at the first
    /// refused record or conflict.
    pub fn ingest_run(&mut self, records: Vec<Verified>) -> RunOutcome {
        let mut outcome = RunOutcome::default();
        for record in records {
            match self.ingest(record) {
                Ok(Ingested::Stored { also }) => outcome.stored += 1 + also,
                Ok(Ingested::Duplicate) => outcome.duplicates += 1,
                Ok(Ingested::Buffered { .. }) => outcome.buffered += 1,
                Ok(Ingested::PastFork) => {}
                Ok(Ingested::Equivocation) => {
                    outcome.equivocation = true;
                    break;
                }
                Ok(Ingested::Conflict { seq }) => {
                    outcome.conflict = Some(seq);
                    break;
                }
                Err(e) => {
                    outcome.error = Some(e);
                    break;
                }
            }
        }
        outcome
    }

    /// Keeps `proof` (to apply at the next commit) if it ranks before the one held for its
    /// author. Returns whether it did.
    pub fn offer_proof(&mut self, proof: EquivocationProof) -> bool {
        let author = proof.author();
        let best =
            [self.proofs.get(&author), self.found.get(&author)].into_iter().flatten().map(|p| p.rank()).min();
        if best.is_some_and(|b| b <= proof.rank()) {
            return false;
        }
        // Staged records at or past the fork will not count: drop them before they are stored.
        if let Some(staged) = self.staged.get_mut(&author) {
            staged.retain(|r| r.seq() < proof.seq());
        }
        self.found.insert(author, proof);
        true
    }

    /// The proof held against `author`, if any.
    pub fn proof(&self, author: &MemberId) -> Option<&EquivocationProof> {
        self.proofs.get(author)
    }

    /// Stores everything staged as one atomic batch — flushed first if `durable` — then applies
    /// any new proofs, and updates the view.
    pub fn commit(&mut self, durable: bool) -> Result<Committed, StoreError> {
        let staged = std::mem::take(&mut self.staged);
        let found = std::mem::take(&mut self.found);
        let result = self.store.append(staged.values().flatten()).and_then(|()| match durable {
            true => self.store.flush(),
            false => Ok(()),
        });
        // On failure nothing staged counts; the view still shows what is stored.
        result?;
        for (author, records) in &staged {
            if let Some(last) = records.last() {
                self.heads.insert(*author, Head { seq: last.seq(), id: last.id() });
            }
        }
        let mut committed = Committed::default();
        let mut proposals = false;
        for record in staged.values().flatten() {
            match record.body() {
                Body::Membership(_) => {
                    proposals = true;
                    committed.epochs.extend(self.governance.add(record));
                }
                body => committed.touched.extend(body.target()),
            }
        }
        for proof in found.into_values() {
            let author = proof.author();
            if self.proofs.get(&author).is_some_and(|held| held.rank() <= proof.rank()) {
                continue;
            }
            self.store.put_proof(&proof)?;
            committed.proofs.push(proof.clone());
            self.proofs.insert(author, proof);
        }
        if committed.proofs.is_empty() && committed.epochs.is_empty() {
            let mut view = self.write_view();
            for (author, records) in &staged {
                for record in records {
                    view.catalog.apply(record);
                }
                view.records += records.len() as u64;
                if let Some(head) = self.heads.get(author) {
                    let fork = view.clock.get(author).and_then(|c| c.fork);
                    view.clock.insert(*author, LogClock { seq: head.seq, id: head.id, fork });
                }
            }
            view.buffered = self.buffer.len();
            if proposals {
                view.governance = self.governance.clone();
            }
        } else {
            // A fork or a retired key cuts records out of a log, and an epoch changes who
            // counts: rebuild what is derived from the logs. Both are rare, so simplicity wins.
            let Derived { view, heads, proofs, governance } = derive(&self.store, &self.genesis)?;
            self.heads = heads.into_iter().collect();
            self.proofs = proofs;
            self.governance = governance;
            *self.write_view() = view;
        }
        Ok(committed)
    }

    fn write_view(&self) -> RwLockWriteGuard<'_, View> {
        // The view is only written here, with in-memory work that does not panic mid-way.
        self.view.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reads the view.
    pub fn read_view(&self) -> RwLockReadGuard<'_, View> {
        self.view.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn check_rules(&self, record: &Record) -> Result<(), ValidationError> {
        let manifest = self.governance.current();
        manifest.accepts(&record.author(), record.seq())?;
        match record.body() {
            Body::Entry(entry) if !manifest.allows_category(&entry.category) => {
                Err(ValidationError::UnknownCategory(entry.category.to_string()))
            }
            // Text that is not changes would make no proposal: refuse it where it is signed.
            Body::Membership(m) => Changes::from_toml(&m.changes)
                .map(drop)
                .map_err(|e| ValidationError::BadChanges(e.to_string())),
            _ => Ok(()),
        }
    }

    fn drain_buffer(&mut self, author: MemberId) -> u64 {
        let mut stored = 0;
        while let Some(head) = self.head(&author) {
            let Some(record) = self.buffer.take(&author, head.seq + 1) else { break };
            if self.fork_seq(&author).is_some_and(|f| record.seq() >= f)
                || record.check_follows(Some(head.id)).is_err()
                || self.check_rules(&record).is_err()
            {
                // Off the chain held, or no longer counting (an epoch ended its key's log
                // while it waited): the buffer must not keep it; sync finds out the rest.
                break;
            }
            self.staged.entry(author).or_default().push(record);
            stored += 1;
        }
        stored
    }
}

/// What is derived from the stored logs and proofs.
struct Derived {
    view: View,
    heads: BTreeMap<MemberId, Head>,
    proofs: BTreeMap<MemberId, EquivocationProof>,
    governance: Governance,
}

/// Reads the logs and proofs and derives the view from them, with the epochs their membership
/// records make on top of `genesis`. Records a retired key signed past the end of its log
/// (stored before the epoch that retired it took effect, and not yet cut) are cut first.
fn derive(store: &Store, genesis: &Manifest) -> Result<Derived, StoreError> {
    let mut catalog = Catalog::loading();
    let mut records = 0u64;
    let mut membership = Vec::new();
    let Loaded { heads, proofs } = store.load(|record| {
        catalog.apply(&record);
        records += 1;
        if matches!(record.body(), Body::Membership(_)) {
            membership.push(record);
        }
    })?;
    catalog.loaded();
    let mut governance = Governance::new(genesis.clone());
    for record in &membership {
        governance.add(record);
    }
    let manifest = governance.current();
    let overlong: Vec<_> =
        manifest.retired.iter().filter(|r| heads.get(&r.key).is_some_and(|h| h.seq > r.last_seq)).collect();
    if !overlong.is_empty() {
        for retired in overlong {
            tracing::info!(key = %retired.key, last_seq = retired.last_seq, "cutting a retired key's log where its epoch ended it");
            store.cut(&retired.key, retired.last_seq)?;
        }
        return derive(store, genesis);
    }
    let mut clock: Clock = heads
        .iter()
        .map(|(author, head)| (*author, LogClock { seq: head.seq, id: head.id, fork: None }))
        .collect();
    for (author, proof) in &proofs {
        clock.entry(*author).or_insert(LogClock { seq: 0, id: RecordId::ZERO, fork: None }).fork =
            Some(ForkMark::of(proof));
    }
    let mut policy = manifest.policy();
    // A forked member is cleared by an epoch that rotates its key or removes it.
    policy.forked = proofs.keys().filter(|k| manifest.is_member(k)).copied().collect();
    let view = View {
        catalog,
        clock,
        records,
        proofs: proofs.clone(),
        buffered: 0,
        policy,
        governance: governance.clone(),
    };
    Ok(Derived { view, heads, proofs, governance })
}

#[cfg(test)]
mod tests;
