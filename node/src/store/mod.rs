//! The durable replica: every member's append-only log, in sled.
//!
//! Trees (keys are fixed-width binary so prefix scans are ordered):
//!
//! | tree       | key                                  | value                     |
//! |------------|--------------------------------------|---------------------------|
//! | `records`  | author ‖ seq (u64 BE)                | record bytes              |
//! | `ids`      | record id                            | author ‖ seq              |
//! | `heads`    | author                               | seq ‖ record id           |
//! | `by_fp`    | kind tag ‖ value ‖ entry id (exact)  | —                         |
//! | `targets`  | entry id ‖ vote/retract record id    | —                         |
//! | `evidence` | author ‖ seq ‖ record id             | conflicting record bytes  |
//! | `meta`     | name                                 | value                     |
//!
//! A record and all its index rows are written in one sled transaction, so a crash never
//! leaves an index pointing at nothing. Chain rules are checked here too: the store is the
//! last line of defence and refuses a record that does not extend its author's log.

mod error;

use std::path::Path;

use hashmesh_protocol::{Body, MemberId, Record, RecordId};
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

pub use error::StoreError;

/// What happened to a record offered to [`Store::append`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Stored as the author's new head.
    New,
    /// Already held.
    Duplicate,
    /// Its author's log does not reach `seq - 1` yet; keep it and offer it again later.
    Gap {
        /// The seq the store needs next from this author.
        next: u64,
    },
    /// A different record already holds this (author, seq): kept as evidence.
    Equivocation {
        /// The record we hold at that position.
        existing: RecordId,
    },
}

/// The head of one author's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Highest contiguous seq held.
    pub seq: u64,
    /// Id of that record.
    pub id: RecordId,
}

/// The sled-backed store.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    records: sled::Tree,
    ids: sled::Tree,
    heads: sled::Tree,
    by_fp: sled::Tree,
    targets: sled::Tree,
    evidence: sled::Tree,
    meta: sled::Tree,
}

const META_FEDERATION: &[u8] = b"federation";
const META_MEMBER: &[u8] = b"member";

impl Store {
    /// Opens (or creates) the store in `dir`, and checks it belongs to `federation` and
    /// `member`: a data dir is never silently shared between identities.
    pub fn open(dir: &Path, federation: &str, member: MemberId) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .open()
            .map_err(|e| StoreError::Open { path: dir.to_owned(), source: e })?;
        let tree = |name: &str| db.open_tree(name);
        let store = Self {
            records: tree("records")?,
            ids: tree("ids")?,
            heads: tree("heads")?,
            by_fp: tree("by_fp")?,
            targets: tree("targets")?,
            evidence: tree("evidence")?,
            meta: tree("meta")?,
            db,
        };
        store.claim(META_FEDERATION, federation.as_bytes(), |held| StoreError::WrongFederation {
            path: dir.to_owned(),
            held: String::from_utf8_lossy(held).into_owned(),
            wanted: federation.to_owned(),
        })?;
        store.claim(META_MEMBER, &member.0, |held| StoreError::WrongIdentity {
            path: dir.to_owned(),
            held: hex::encode(held),
            wanted: member.to_string(),
        })?;
        store.db.flush()?;
        Ok(store)
    }

    fn claim(
        &self,
        key: &[u8],
        value: &[u8],
        mismatch: impl FnOnce(&[u8]) -> StoreError,
    ) -> Result<(), StoreError> {
        match self.meta.compare_and_swap(key, None as Option<&[u8]>, Some(value))? {
            Ok(()) => Ok(()),
            Err(cas) => match cas.current {
                Some(held) if held.as_ref() == value => Ok(()),
                Some(held) => Err(mismatch(&held)),
                None => Ok(()),
            },
        }
    }

    /// Stores `record` if it extends its author's log. The signature and membership must have
    /// been checked by the caller; the chain is checked here.
    pub fn append(&self, record: &Record) -> Result<Appended, StoreError> {
        if self.ids.contains_key(record.id().0)? {
            return Ok(Appended::Duplicate);
        }
        let author = record.author();
        let head = self.head(&author)?;
        let held = head.map_or(0, |h| h.seq);
        if record.seq() != 0 && record.seq() <= held {
            let existing = self.get_at(&author, record.seq())?.map(|r| r.id()).unwrap_or_default();
            let mut key = log_key(&author, record.seq()).to_vec();
            key.extend_from_slice(&record.id().0);
            self.evidence.insert(key, record.bytes())?;
            return Ok(Appended::Equivocation { existing });
        }
        if record.seq() > held + 1 {
            return Ok(Appended::Gap { next: held + 1 });
        }
        record.check_follows(head.map(|h| h.id))?;
        self.write(std::slice::from_ref(record))?;
        Ok(Appended::New)
    }

    /// Stores the longest prefix of `records` that extends its author's log seq by seq, in
    /// one transaction, and returns how many were stored. Much faster than one `append` per
    /// record (each sled transaction writes its log buffer out), which is what catch-up sync
    /// and bulk imports need. Records that do not continue the run are left to `append`.
    pub fn append_run(&self, records: &[Record]) -> Result<usize, StoreError> {
        let Some(first) = records.first() else { return Ok(0) };
        let author = first.author();
        let mut head = self.head(&author)?;
        let mut run = 0;
        for record in records {
            let expected = head.map_or(1, |h| h.seq + 1);
            if record.author() != author
                || record.seq() != expected
                || record.check_follows(head.map(|h| h.id)).is_err()
                || self.ids.contains_key(record.id().0)?
            {
                break;
            }
            head = Some(Head { seq: record.seq(), id: record.id() });
            run += 1;
        }
        self.write(&records[..run])?;
        Ok(run)
    }

    fn write(&self, records: &[Record]) -> Result<(), StoreError> {
        let Some(last) = records.last() else { return Ok(()) };
        let author = last.author();
        let mut head = [0u8; 40];
        head[..8].copy_from_slice(&last.seq().to_be_bytes());
        head[8..].copy_from_slice(&last.id().0);
        let rows: Vec<Rows> = records.iter().map(Rows::of).collect();
        (&self.records, &self.ids, &self.heads, &self.by_fp, &self.targets)
            .transaction(|(log, ids, heads, by_fp, targets)| {
                for (record, row) in records.iter().zip(&rows) {
                    log.insert(&row.key[..], record.bytes())?;
                    ids.insert(&record.id().0[..], &row.key[..])?;
                    for k in &row.fingerprints {
                        by_fp.insert(k.as_slice(), &[][..])?;
                    }
                    if let Some(k) = &row.target {
                        targets.insert(k.as_slice(), &[][..])?;
                    }
                }
                heads.insert(&author.0[..], &head[..])?;
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                sled::transaction::TransactionError::Storage(e) => StoreError::Sled(e),
                sled::transaction::TransactionError::Abort(()) => {
                    StoreError::Corrupt("transaction aborted".into())
                }
            })
    }

    /// Waits until everything written so far is on disk.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.db.flush_async().await?;
        Ok(())
    }

    /// The head of `author`'s log.
    pub fn head(&self, author: &MemberId) -> Result<Option<Head>, StoreError> {
        let Some(raw) = self.heads.get(author.0)? else { return Ok(None) };
        let raw: &[u8] = &raw;
        let (seq, id) = raw.split_at_checked(8).ok_or_else(|| corrupt("head", raw))?;
        Ok(Some(Head {
            seq: u64::from_be_bytes(seq.try_into().map_err(|_| corrupt("head", raw))?),
            id: RecordId(id.try_into().map_err(|_| corrupt("head", raw))?),
        }))
    }

    /// Every author's head.
    pub fn heads(&self) -> Result<Vec<(MemberId, Head)>, StoreError> {
        let mut out = Vec::new();
        for item in self.heads.iter() {
            let (k, _) = item?;
            let author = MemberId(k.as_ref().try_into().map_err(|_| corrupt("heads key", &k))?);
            if let Some(head) = self.head(&author)? {
                out.push((author, head));
            }
        }
        Ok(out)
    }

    /// The record at (author, seq).
    pub fn get_at(&self, author: &MemberId, seq: u64) -> Result<Option<Record>, StoreError> {
        self.records.get(log_key(author, seq))?.map(|b| decode(&b)).transpose()
    }

    /// The record with this id.
    pub fn get(&self, id: &RecordId) -> Result<Option<Record>, StoreError> {
        let Some(key) = self.ids.get(id.0)? else { return Ok(None) };
        self.records.get(key)?.map(|b| decode(&b)).transpose()
    }

    /// Up to `limit` records of `author` from `from_seq` on, in order.
    pub fn range(&self, author: &MemberId, from_seq: u64, limit: usize) -> Result<Vec<Record>, StoreError> {
        let start = log_key(author, from_seq);
        let end = log_key(author, u64::MAX);
        self.records.range(start..=end).take(limit).map(|item| decode(&item?.1)).collect()
    }

    /// The canonical bytes of up to `limit` records of `author` from `from_seq`, in order,
    /// stopping before `max_bytes` would be passed: what sync sends, without decoding.
    pub fn range_bytes(
        &self,
        author: &MemberId,
        from_seq: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let start = log_key(author, from_seq);
        let end = log_key(author, u64::MAX);
        let mut out = Vec::new();
        let mut size = 0;
        for item in self.records.range(start..=end).take(limit) {
            let (_, bytes) = item?;
            size += bytes.len();
            if size > max_bytes {
                break;
            }
            out.push(bytes.to_vec());
        }
        Ok(out)
    }

    /// Every record, author by author in log order: how the in-memory state is rebuilt.
    pub fn iter(&self) -> impl Iterator<Item = Result<Record, StoreError>> + '_ {
        self.records.iter().map(|item| decode(&item?.1))
    }

    /// Ids of entries holding this exact fingerprint (kind tag ‖ value).
    pub fn entries_with(&self, kind_tag: u8, value: &[u8]) -> Result<Vec<RecordId>, StoreError> {
        let prefix = [&[kind_tag][..], value].concat();
        self.by_fp
            .scan_prefix(&prefix)
            .map(|item| {
                let (k, _) = item?;
                let id = k.get(prefix.len()..).and_then(|s| <[u8; 32]>::try_from(s).ok());
                id.map(RecordId).ok_or_else(|| corrupt("by_fp key", &k))
            })
            .collect()
    }

    /// Ids of the votes and retractions that name `entry`.
    pub fn targeting(&self, entry: &RecordId) -> Result<Vec<RecordId>, StoreError> {
        self.targets
            .scan_prefix(entry.0)
            .map(|item| {
                let (k, _) = item?;
                let id = k.get(32..).and_then(|s| <[u8; 32]>::try_from(s).ok());
                id.map(RecordId).ok_or_else(|| corrupt("targets key", &k))
            })
            .collect()
    }

    /// Conflicting records kept as evidence of equivocation: (author, seq, record).
    pub fn evidence(&self) -> Result<Vec<Record>, StoreError> {
        self.evidence.iter().map(|item| decode(&item?.1)).collect()
    }

    /// How many records are held.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no records are held.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// The index rows of one record, computed outside the transaction (which may retry).
struct Rows {
    key: [u8; 40],
    fingerprints: Vec<Vec<u8>>,
    target: Option<Vec<u8>>,
}

impl Rows {
    fn of(record: &Record) -> Self {
        let id = record.id().0;
        let fingerprints = match record.body() {
            Body::Entry(e) => e
                .fingerprints
                .iter()
                .filter(|fp| !fp.kind().is_perceptual())
                .map(|fp| [&[fp.kind().tag()][..], fp.value(), &id].concat())
                .collect(),
            _ => Vec::new(),
        };
        Self {
            key: log_key(&record.author(), record.seq()),
            fingerprints,
            target: record.body().target().map(|t| [t.0, id].concat()),
        }
    }
}

fn log_key(author: &MemberId, seq: u64) -> [u8; 40] {
    let mut key = [0u8; 40];
    key[..32].copy_from_slice(&author.0);
    key[32..].copy_from_slice(&seq.to_be_bytes());
    key
}

fn decode(bytes: &[u8]) -> Result<Record, StoreError> {
    Record::decode(bytes).map_err(|e| StoreError::Corrupt(format!("stored record does not decode: {e}")))
}

fn corrupt(what: &str, raw: &[u8]) -> StoreError {
    StoreError::Corrupt(format!("{what} has unexpected bytes {}", hex::encode(raw)))
}

#[cfg(test)]
mod tests;
