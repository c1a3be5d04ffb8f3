//! Records that arrived before their author's earlier ones, waiting for the gap to fill.

use std::collections::{BTreeMap, HashMap};

use hashmesh_protocol::{MemberId, Record};

/// A bounded buffer of out-of-order records, by author and seq.
///
/// When full, the record furthest ahead of its author's log is dropped first: it is the one
/// catch-up sync will fetch last anyway, so losing it costs nothing but a later re-fetch.
pub(crate) struct Buffer {
    by_author: HashMap<MemberId, BTreeMap<u64, Record>>,
    len: usize,
    bytes: usize,
    cap: usize,
}

/// Most bytes of records held, whatever their count.
const MAX_BYTES: usize = 64 * 1024 * 1024;

impl Buffer {
    /// An empty buffer holding at most `cap` records.
    pub(crate) fn new(cap: usize) -> Self {
        Self { by_author: HashMap::new(), len: 0, bytes: 0, cap }
    }

    /// Keeps `record` until its author's log reaches it. A second, different record at a
    /// position already held is not kept here: once the first is stored, sync finds the
    /// conflict and the store keeps it as evidence.
    pub(crate) fn insert(&mut self, record: Record) {
        let log = self.by_author.entry(record.author()).or_default();
        let size = record.bytes().len();
        if let std::collections::btree_map::Entry::Vacant(slot) = log.entry(record.seq()) {
            slot.insert(record);
            self.len += 1;
            self.bytes += size;
        }
        while self.len > self.cap || self.bytes > MAX_BYTES {
            self.evict_one();
        }
    }

    fn evict_one(&mut self) {
        let furthest = self
            .by_author
            .iter()
            .filter_map(|(author, log)| log.keys().next_back().map(|seq| (*seq, *author)))
            .max();
        let Some((seq, author)) = furthest else {
            // Nothing left to evict; the counters are already zero.
            self.len = 0;
            self.bytes = 0;
            return;
        };
        if let Some(log) = self.by_author.get_mut(&author)
            && let Some(record) = log.remove(&seq)
        {
            self.len -= 1;
            self.bytes -= record.bytes().len();
            if log.is_empty() {
                self.by_author.remove(&author);
            }
        }
    }

    /// Removes and returns `author`'s record at `seq`, if held; drops any older ones.
    pub(crate) fn take(&mut self, author: &MemberId, seq: u64) -> Option<Record> {
        let log = self.by_author.get_mut(author)?;
        while let Some(entry) = log.first_entry() {
            if *entry.key() >= seq {
                break;
            }
            let old = entry.remove();
            self.len -= 1;
            self.bytes -= old.bytes().len();
        }
        let record = log.remove(&seq);
        if let Some(r) = &record {
            self.len -= 1;
            self.bytes -= r.bytes().len();
        }
        if log.is_empty() {
            self.by_author.remove(author);
        }
        record
    }

    /// Records held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}
