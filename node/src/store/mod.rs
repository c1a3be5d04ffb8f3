//! The durable replica: every member's append-only log, in sled.
//!
//! Trees (keys are fixed-width binary so prefix scans are ordered):
//!
//! | tree      | key                   | value                                   |
//! |-----------|-----------------------|-----------------------------------------|
//! | `records` | author ‖ seq (u64 BE) | canonical record bytes                  |
//! | `proofs`  | author                | an [`EquivocationProof`], one per author |
//! | `meta`    | name                  | value                                   |
//!
//! Beside the log, the node keeps state of its own that no peer can give back — the webhook
//! outbox, the entries this member matched, its daily counters — in trees of the same
//! database opened with [`Store::local_tree`] (see `actioner`). They are written from async
//! workers with plain inserts (never `flush_async`), and made durable by sled's periodic
//! flush and by every flush of the writer.
//!
//! The log is the only source of truth. Everything else a node knows — heads, the catalog of
//! entries and votes, the matching index, counters — is derived from it in memory when the
//! node starts and kept up to date as records are stored, so there is no second copy on disk
//! that a crash could leave behind the log. Each [`Store::append`] is one sled batch on one
//! tree, which sled applies atomically: after a crash the log holds a batch whole or not at
//! all. Chain rules (gap-free seqs, `prev` links) are checked by the replica before a batch
//! is written, and again by [`Store::load`] when the log is read back.
//!
//! Nothing here flushes on its own: the replica's writer decides when a batch must be durable
//! (own records, before they are acknowledged) and calls [`Store::flush`], a blocking call
//! made only on the writer's thread, never on an async worker.

mod error;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use hashmesh_protocol::{EquivocationProof, MemberId, Record, RecordId};

pub use error::StoreError;

/// The head of one author's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Highest contiguous seq held.
    pub seq: u64,
    /// Id of that record.
    pub id: RecordId,
}

/// The sled-backed store. Cheap to clone; every clone is the same store.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    records: sled::Tree,
    proofs: sled::Tree,
    meta: sled::Tree,
}

const META_FEDERATION: &[u8] = b"federation";
const META_MEMBER: &[u8] = b"member";

/// What [`Store::load`] found besides the records.
#[derive(Debug)]
pub struct Loaded {
    /// Every author's head.
    pub heads: BTreeMap<MemberId, Head>,
    /// The proof of equivocation held against each forked author.
    pub proofs: BTreeMap<MemberId, EquivocationProof>,
}

impl Store {
    /// Opens (or creates) the store in `dir`, and checks it belongs to `federation` and
    /// `member`: a data dir is never silently shared between identities.
    pub fn open(dir: &Path, federation: &str, member: MemberId) -> Result<Self, StoreError> {
        let store = Self::open_unclaimed(dir, federation)?;
        store.claim_member(dir, member, None)?;
        Ok(store)
    }

    /// Opens (or creates) the store in `dir` and checks it belongs to `federation`; the member
    /// it belongs to is checked by [`Store::claim_member`] once the membership is known.
    pub fn open_unclaimed(dir: &Path, federation: &str) -> Result<Self, StoreError> {
        let db = open_db(dir)?;
        let store = Self {
            records: db.open_tree("records")?,
            proofs: db.open_tree("proofs")?,
            meta: db.open_tree("meta")?,
            db,
        };
        store.claim(META_FEDERATION, federation.as_bytes(), |held| StoreError::WrongFederation {
            path: dir.to_owned(),
            held: String::from_utf8_lossy(held).into_owned(),
            wanted: federation.to_owned(),
        })?;
        store.db.flush()?;
        Ok(store)
    }

    /// Checks the store belongs to `member`, and claims it if it belongs to no one yet. A
    /// store of `rotated_from` — the key a membership epoch rotated to `member` — passes to
    /// `member`: the same member, signing with its new key.
    pub fn claim_member(
        &self,
        dir: &Path,
        member: MemberId,
        rotated_from: Option<MemberId>,
    ) -> Result<(), StoreError> {
        if let Some(old) = rotated_from {
            self.pass_to(old, member)?;
        }
        self.claim(META_MEMBER, &member.0, |held| StoreError::WrongIdentity {
            path: dir.to_owned(),
            held: hex::encode(held),
            wanted: member.to_string(),
        })?;
        self.db.flush()?;
        Ok(())
    }

    /// Passes a store of `from` to `to` (an epoch rotated `from`'s key to `to`), durably.
    /// Returns whether the store was `from`'s.
    pub fn pass_to(&self, from: MemberId, to: MemberId) -> Result<bool, StoreError> {
        let swapped = self.meta.compare_and_swap(META_MEMBER, Some(&from.0[..]), Some(&to.0[..]))?.is_ok();
        if swapped {
            self.db.flush()?;
        }
        Ok(swapped)
    }

    /// The member this store belongs to, if it was claimed.
    pub fn member(&self) -> Result<Option<MemberId>, StoreError> {
        Ok(self
            .meta
            .get(META_MEMBER)?
            .and_then(|held| <[u8; 32]>::try_from(held.as_ref()).ok())
            .map(MemberId))
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

    /// Reads back everything: the proofs, then every record in (author, seq) order — handed
    /// to `visit` — checking that each log starts at 1, has no gap and hash-chains. Records at
    /// or past a proven fork are dropped from the log first (a crash between storing a proof
    /// and truncating leaves them).
    pub fn load(&self, mut visit: impl FnMut(Record)) -> Result<Loaded, StoreError> {
        let mut proofs = BTreeMap::new();
        for item in self.proofs.iter() {
            let (_, bytes) = item?;
            let proof = EquivocationProof::decode(&bytes)
                .map_err(|e| StoreError::Corrupt(format!("stored proof does not decode: {e}")))?;
            self.truncate(&proof.author(), proof.seq())?;
            proofs.insert(proof.author(), proof);
        }
        let mut heads: BTreeMap<MemberId, Head> = BTreeMap::new();
        for item in self.records.iter() {
            let (key, bytes) = item?;
            let record = decode(&bytes)?;
            let (author, seq) = (record.author(), record.seq());
            if key.as_ref() != log_key(&author, seq) {
                return Err(StoreError::Corrupt(format!(
                    "record {} is filed under the wrong key",
                    record.id()
                )));
            }
            let head = heads.get(&author).copied();
            if seq != head.map_or(1, |h| h.seq + 1) {
                return Err(StoreError::Corrupt(format!("{author}'s log jumps to seq {seq}")));
            }
            record
                .check_follows(head.map(|h| h.id))
                .map_err(|e| StoreError::Corrupt(format!("{author}'s log does not chain: {e}")))?;
            heads.insert(author, Head { seq, id: record.id() });
            visit(record);
        }
        Ok(Loaded { heads, proofs })
    }

    /// Appends records that the replica has checked to extend their authors' logs, as one
    /// atomic batch. Not durable until [`Store::flush`].
    pub fn append<'a>(&self, records: impl IntoIterator<Item = &'a Record>) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for record in records {
            batch.insert(&log_key(&record.author(), record.seq())[..], record.bytes());
        }
        self.records.apply_batch(batch)?;
        Ok(())
    }

    /// A tree of node-local state (not part of the replicated log), opened or created.
    pub fn local_tree(&self, name: &str) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(format!("local/{name}"))?)
    }

    /// Blocks until everything written so far is on disk. Call it from a thread that may
    /// block (the writer), never from an async worker.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// Keeps `proof` as the author's proof of equivocation and drops the author's records from
    /// its seq on, durably: the author's log now counts up to `proof.seq() - 1`.
    pub fn put_proof(&self, proof: &EquivocationProof) -> Result<(), StoreError> {
        self.proofs.insert(proof.author().0, proof.encode())?;
        self.truncate(&proof.author(), proof.seq())?;
        self.flush()
    }

    /// Drops a retired key's records past the end of its log, durably: an epoch named the last
    /// seq that counts, and records signed after it (before the epoch reached this node) go.
    pub fn cut(&self, author: &MemberId, last_seq: u64) -> Result<(), StoreError> {
        self.truncate(author, last_seq.saturating_add(1))?;
        self.flush()
    }

    fn truncate(&self, author: &MemberId, from_seq: u64) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for item in self.records.range(log_key(author, from_seq)..=log_key(author, u64::MAX)) {
            batch.remove(item?.0);
        }
        self.records.apply_batch(batch)?;
        Ok(())
    }

    /// The record at (author, seq).
    pub fn get_at(&self, author: &MemberId, seq: u64) -> Result<Option<Record>, StoreError> {
        self.records.get(log_key(author, seq))?.map(|b| decode(&b)).transpose()
    }

    /// Up to `limit` records of `author` from `from_seq` to `to_seq`, in order.
    pub fn range(
        &self,
        author: &MemberId,
        from_seq: u64,
        to_seq: u64,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        if from_seq > to_seq {
            return Ok(Vec::new());
        }
        self.records
            .range(log_key(author, from_seq)..=log_key(author, to_seq))
            .take(limit)
            .map(|item| decode(&item?.1))
            .collect()
    }

    /// The canonical bytes of up to `limit` records of `author` from `from_seq` to `to_seq`,
    /// in order, stopping before `max_bytes` would be passed (but always at least one record):
    /// what sync sends, without decoding.
    pub fn range_bytes(
        &self,
        author: &MemberId,
        from_seq: u64,
        to_seq: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut out = Vec::new();
        if from_seq > to_seq {
            return Ok(out);
        }
        let mut size = 0;
        for item in self.records.range(log_key(author, from_seq)..=log_key(author, to_seq)).take(limit) {
            let (_, bytes) = item?;
            size += bytes.len();
            if size > max_bytes && !out.is_empty() {
                break;
            }
            out.push(bytes.to_vec());
        }
        Ok(out)
    }
}

/// How long to wait for sled's file lock. sled releases it from a background thread after the
/// last handle on a store is dropped, so a node restarted in the same process (the test
/// harness, an operator's embedding) can find it still held for a moment. Another process
/// holding it is still reported — after this long.
const LOCK_WAIT: Duration = Duration::from_secs(2);

fn open_db(dir: &Path) -> Result<sled::Db, StoreError> {
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match sled::Config::new().path(dir).open() {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock") && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(source) => return Err(StoreError::Open { path: dir.to_owned(), source }),
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

#[cfg(test)]
mod tests;
