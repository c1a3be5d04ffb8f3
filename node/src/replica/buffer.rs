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
    cap: usize,
}

impl Buffer {
    /// An empty buffer holding at most `cap` records.
    pub(crate) fn new(cap: usize) -> Self {
        Self { by_author: HashMap::new(), len: 0, cap }
    }

    /// Keeps `record` until its author's log reaches it.
    pub(crate) fn insert(&mut self, record: Record) {
        let log = self.by_author.entry(record.author()).or_default();
        if log.insert(record.seq(), record).is_none() {
            self.len += 1;
        }
        if self.len > self.cap {
            self.evict_one();
        }
    }

    fn evict_one(&mut self) {
        let furthest = self
            .by_author
            .iter()
            .filter_map(|(author, log)| log.keys().next_back().map(|seq| (*seq, *author)))
            .max();
        if let Some((seq, author)) = furthest
            && let Some(log) = self.by_author.get_mut(&author)
        {
            log.remove(&seq);
            self.len -= 1;
        }
    }

    /// Removes and returns `author`'s record at `seq`, if held; drops any older ones.
    pub(crate) fn take(&mut self, author: &MemberId, seq: u64) -> Option<Record> {
        let log = self.by_author.get_mut(author)?;
        while let Some(entry) = log.first_entry() {
            if *entry.key() >= seq {
                break;
            }
            entry.remove();
            self.len -= 1;
        }
        let record = log.remove(&seq);
        if record.is_some() {
            self.len -= 1;
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
