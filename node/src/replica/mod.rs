//! The replica: the store plus the in-memory catalog, and the one path every record takes to
//! get in — verified, checked against the membership, chained, stored, indexed.
//!
//! Records from the network may arrive out of order; one whose author's log has a gap waits
//! in a bounded buffer until the gap is filled (by gossip or by catch-up sync).

mod buffer;
mod catalog;

use std::collections::BTreeSet;

use ed25519_dalek::SigningKey;
use hashmesh_protocol::{Body, Manifest, MemberId, Record, UnsignedRecord, ValidationError};

use crate::store::{Appended, Head, Store, StoreError};
use buffer::Buffer;
pub use catalog::{Catalog, EntryState};

/// Most out-of-order records held while waiting for a gap to fill.
pub const MAX_BUFFERED: usize = 16_384;

/// What became of a record offered to the replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingested {
    /// Stored; `also` more buffered records were stored after it, in order.
    Stored {
        /// Buffered records that followed it into the store.
        also: Vec<Record>,
    },
    /// Already held.
    Duplicate,
    /// Waiting for the author's earlier records.
    Buffered {
        /// The author's seq the store needs next.
        next: u64,
    },
    /// Conflicts with a record already held at the same (author, seq).
    Equivocation,
}

/// What became of a run of records offered to [`Replica::ingest_run`].
#[derive(Debug)]
pub struct RunOutcome {
    /// Records stored (buffered ones that followed included).
    pub stored: u64,
    /// Seq of the last record taken in without error.
    pub last_seq: Option<u64>,
    /// Why the run stopped early, if it did.
    pub error: Option<IngestError>,
}

/// Why a record was refused.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The record is not valid.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for IngestError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(v) => Self::Invalid(v),
            other => Self::Store(other),
        }
    }
}

/// Store, catalog, out-of-order buffer and the set of equivocating authors.
pub struct Replica {
    store: Store,
    manifest: Manifest,
    catalog: Catalog,
    buffer: Buffer,
    equivocators: BTreeSet<MemberId>,
}

impl Replica {
    /// Loads the catalog from the store.
    pub fn load(store: Store, manifest: Manifest) -> Result<Self, StoreError> {
        let mut catalog = Catalog::default();
        for record in store.iter() {
            catalog.apply(&record?);
        }
        let equivocators = store.evidence()?.iter().map(Record::author).collect();
        Ok(Self { store, manifest, catalog, buffer: Buffer::new(MAX_BUFFERED), equivocators })
    }

    /// Checks a record that came from outside: signature, then [`Self::ingest_verified`].
    pub fn ingest(&mut self, record: Record) -> Result<Ingested, IngestError> {
        record.verify_signature()?;
        self.ingest_verified(record)
    }

    /// Takes in a record whose signature was already verified (in a batch, by sync).
    pub fn ingest_verified(&mut self, record: Record) -> Result<Ingested, IngestError> {
        self.check_rules(&record)?;
        match self.store.append(&record)? {
            Appended::New => {
                self.catalog.apply(&record);
                let also = self.drain_buffer(record.author());
                Ok(Ingested::Stored { also })
            }
            Appended::Duplicate => Ok(Ingested::Duplicate),
            Appended::Gap { next } => {
                self.buffer.insert(record);
                Ok(Ingested::Buffered { next })
            }
            Appended::Equivocation { existing } => {
                tracing::warn!(author = %record.author(), seq = record.seq(), %existing, conflicting = %record.id(),
                    "equivocation: two different records at the same position; both kept as evidence");
                self.equivocators.insert(record.author());
                Ok(Ingested::Equivocation)
            }
        }
    }

    /// Takes in signature-checked records, one author's in seq order (a sync batch, a bulk
    /// import): the part that extends the log is stored in one transaction, anything else
    /// goes the one-by-one way. Stops at the first refused record.
    pub fn ingest_run(&mut self, records: Vec<Record>) -> RunOutcome {
        let mut outcome = RunOutcome { stored: 0, last_seq: None, error: None };
        let mut valid = Vec::with_capacity(records.len());
        for record in records {
            if let Err(e) = self.check_rules(&record) {
                outcome.error = Some(e.into());
                break;
            }
            valid.push(record);
        }
        let run = match self.store.append_run(&valid) {
            Ok(run) => run,
            Err(e) => {
                outcome.error = Some(e.into());
                return outcome;
            }
        };
        let mut rest = valid.split_off(run);
        for record in &valid {
            self.catalog.apply(record);
            outcome.last_seq = Some(record.seq());
        }
        outcome.stored += run as u64;
        if let Some(author) = valid.first().map(Record::author) {
            outcome.stored += self.drain_buffer(author).len() as u64;
        }
        let pending_error = outcome.error.take();
        for record in rest.drain(..) {
            let seq = record.seq();
            match self.ingest_verified(record) {
                Ok(Ingested::Stored { also }) => outcome.stored += 1 + also.len() as u64,
                Ok(_) => {}
                Err(e) => {
                    outcome.error = Some(e);
                    return outcome;
                }
            }
            outcome.last_seq = Some(seq);
        }
        outcome.error = pending_error;
        outcome
    }

    /// Writes many new records in `key`'s own log with one store transaction.
    pub fn author_many(
        &mut self,
        key: &SigningKey,
        bodies: Vec<Body>,
        timestamp: u64,
    ) -> Result<Vec<Record>, AuthorError> {
        let author = MemberId::from_key(&key.verifying_key());
        let mut head = self.store.head(&author)?;
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
        let run = self.store.append_run(&records)?;
        if run != records.len() {
            return Err(AuthorError::Store(StoreError::Corrupt(format!(
                "only {run} of {} new own records extended the log",
                records.len()
            ))));
        }
        for record in &records {
            self.catalog.apply(record);
        }
        Ok(records)
    }

    fn check_rules(&self, record: &Record) -> Result<(), ValidationError> {
        if !self.manifest.is_member(&record.author()) {
            return Err(ValidationError::NotMember(record.author()));
        }
        if let Body::Entry(entry) = record.body()
            && !self.manifest.allows_category(&entry.category)
        {
            return Err(ValidationError::UnknownCategory(entry.category.to_string()));
        }
        Ok(())
    }

    fn drain_buffer(&mut self, author: MemberId) -> Vec<Record> {
        let mut stored = Vec::new();
        loop {
            let next = self.store.head(&author).ok().flatten().map_or(1, |h| h.seq + 1);
            let Some(record) = self.buffer.take(&author, next) else { break };
            match self.store.append(&record) {
                Ok(Appended::New) => {
                    self.catalog.apply(&record);
                    stored.push(record);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(author = %author, seq = next, error = %e, "dropping buffered record");
                    break;
                }
            }
        }
        stored
    }

    /// Writes a new record in `key`'s own log, after its current head.
    pub fn author(&mut self, key: &SigningKey, body: Body, timestamp: u64) -> Result<Record, AuthorError> {
        let mut written = self.author_many(key, vec![body], timestamp)?;
        written.pop().ok_or_else(|| AuthorError::Store(StoreError::Corrupt("no record was written".into())))
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The manifest in force.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Authors caught equivocating.
    pub fn equivocators(&self) -> &BTreeSet<MemberId> {
        &self.equivocators
    }

    /// Records waiting for a gap to fill.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Every author's head: the vector clock compared during sync.
    pub fn heads(&self) -> Result<Vec<(MemberId, Head)>, StoreError> {
        self.store.heads()
    }
}

/// Why a local record could not be written.
#[derive(Debug, thiserror::Error)]
pub enum AuthorError {
    /// The record breaks a rule.
    #[error(transparent)]
    Invalid(ValidationError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[cfg(test)]
mod tests;
