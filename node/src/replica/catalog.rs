//! The in-memory view of every entry: its votes, its status inputs and an exact-fingerprint
//! index; and members' daily counters. Rebuilt from the store at start-up and updated as each record is stored.
//!
//! Votes and retractions may arrive before the entry they name (they come from other authors'
//! logs, which replicate independently); they wait in `early` until the entry shows up, so the
//! final state does not depend on arrival order.

use std::collections::{BTreeMap, HashMap};

use hashmesh_protocol::{Body, Entry, EntryVotes, Fingerprint, MemberId, Record, RecordId, Verdict};

use super::Daily;
use crate::index::PerceptualIndex;

/// One entry and what is known about it.
#[derive(Debug, Clone)]
pub struct EntryState {
    /// The entry record's id.
    pub id: RecordId,
    /// Its seq in the author's log.
    pub seq: u64,
    /// The author's timestamp (unix ms).
    pub timestamp: u64,
    /// What the entry says.
    pub entry: Entry,
    /// Votes, retraction, author and expiry: the policy's inputs.
    pub votes: EntryVotes,
    /// Where every vote and retraction naming it sits, (author, seq), as they arrived: the
    /// entry's history, read back from the logs on demand.
    pub events: Vec<(MemberId, u64)>,
}

#[derive(Clone, Copy)]
enum Early {
    Vote { voter: MemberId, seq: u64, verdict: Verdict },
    Retract { by: MemberId, seq: u64 },
}

/// Every entry by id, with exact and perceptual indexes.
#[derive(Default)]
pub struct Catalog {
    entries: BTreeMap<RecordId, EntryState>,
    exact: HashMap<Fingerprint, Vec<RecordId>>,
    perceptual: PerceptualIndex,
    early: HashMap<RecordId, Vec<Early>>,
    daily: Daily,
}

impl Catalog {
    /// An empty catalog for loading the store at start-up: call [`Self::loaded`] once every
    /// record is applied ([`PerceptualIndex::loading`]).
    pub fn loading() -> Self {
        Catalog { perceptual: PerceptualIndex::loading(), ..Self::default() }
    }

    /// Ends loading: builds the perceptual indexes over everything applied so far.
    pub fn loaded(&mut self) {
        self.perceptual.loaded();
    }

    /// Takes a stored record into account.
    pub fn apply(&mut self, record: &Record) {
        match record.body() {
            Body::Entry(entry) => self.add_entry(record, entry),
            Body::Vote(vote) => self.add(
                vote.entry,
                Early::Vote { voter: record.author(), seq: record.seq(), verdict: vote.verdict },
            ),
            Body::Retract(retract) => {
                self.add(retract.entry, Early::Retract { by: record.author(), seq: record.seq() });
            }
            Body::Stats(stats) => self.daily.apply(record.author(), record.seq(), stats),
            Body::Membership(_) => {}
        }
    }

    fn add_entry(&mut self, record: &Record, entry: &Entry) {
        let id = record.id();
        let mut votes = EntryVotes::new(record.author(), entry.expires_at);
        let mut events = Vec::new();
        for early in self.early.remove(&id).unwrap_or_default() {
            events.push(apply_to(&mut votes, early));
        }
        for fp in &entry.fingerprints {
            if fp.kind().is_perceptual() {
                self.perceptual.insert(fp, id);
            } else {
                self.exact.entry(fp.clone()).or_default().push(id);
            }
        }
        self.entries.insert(
            id,
            EntryState {
                id,
                seq: record.seq(),
                timestamp: record.timestamp(),
                entry: entry.clone(),
                votes,
                events,
            },
        );
    }

    fn add(&mut self, target: RecordId, event: Early) {
        match self.entries.get_mut(&target) {
            Some(state) => {
                let at = apply_to(&mut state.votes, event);
                state.events.push(at);
            }
            None => self.early.entry(target).or_default().push(event),
        }
    }

    /// The entry with this id.
    pub fn get(&self, id: &RecordId) -> Option<&EntryState> {
        self.entries.get(id)
    }

    /// Entries holding exactly this fingerprint.
    pub fn exact(&self, fp: &Fingerprint) -> &[RecordId] {
        self.exact.get(fp).map_or(&[], Vec::as_slice)
    }

    /// Members' daily counters.
    pub fn daily(&self) -> &Daily {
        &self.daily
    }

    /// The perceptual index.
    pub fn perceptual(&self) -> &PerceptualIndex {
        &self.perceptual
    }

    /// Entries with ids after `cursor`, in id order.
    pub fn after(&self, cursor: Option<RecordId>) -> impl Iterator<Item = &EntryState> {
        use std::ops::Bound;
        let start = cursor.map_or(Bound::Unbounded, Bound::Excluded);
        self.entries.range((start, Bound::Unbounded)).map(|(_, s)| s)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Applies `event` and returns where its record sits.
fn apply_to(votes: &mut EntryVotes, event: Early) -> (MemberId, u64) {
    match event {
        Early::Vote { voter, seq, verdict } => {
            votes.add_vote(voter, seq, verdict);
            (voter, seq)
        }
        Early::Retract { by, seq } => {
            votes.add_retraction(by);
            (by, seq)
        }
    }
}
