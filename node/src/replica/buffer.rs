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
    /// position already held is not kept here: once the first is stored, gossip or sync
    /// brings the second again, and the replica turns the pair into a proof of equivocation.
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

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;
    use hashmesh_protocol::{Body, Entry, Fingerprint, FingerprintKind, RecordId, UnsignedRecord};

    use super::*;

    fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    /// A record of member `n` at `seq` (the buffer looks at neither chain nor signature);
    /// `links` of 2 KiB each make it large.
    fn record(n: u8, seq: u64, variant: u8, links: usize) -> Record {
        let body = Body::Entry(Entry {
            fingerprints: vec![Fingerprint::new(FingerprintKind::Sha1, vec![variant; 20]).expect("valid")],
            category: "drugs".parse().expect("valid"),
            links: (0..links).map(|i| format!("https://example.com/{i}/{}", "x".repeat(2000))).collect(),
            note: None,
            expires_at: None,
        });
        let author = MemberId::from_key(&key(n).verifying_key());
        UnsignedRecord { author, seq, prev: RecordId::ZERO, timestamp: 0, body }
            .sign(&key(n))
            .expect("within limits")
    }

    fn held(buffer: &Buffer, n: u8) -> Vec<u64> {
        let author = MemberId::from_key(&key(n).verifying_key());
        buffer.by_author.get(&author).map(|log| log.keys().copied().collect()).unwrap_or_default()
    }

    fn bytes(records: &[&Record]) -> usize {
        records.iter().map(|r| r.bytes().len()).sum()
    }

    #[test]
    fn when_full_the_record_furthest_ahead_goes_first() {
        let mut buffer = Buffer::new(3);
        let records: Vec<Record> = (2..=6).map(|seq| record(1, seq, 0, 0)).collect();
        for r in &records {
            buffer.insert(r.clone());
        }
        assert_eq!(buffer.len(), 3);
        assert_eq!(held(&buffer, 1), vec![2, 3, 4]);
        assert_eq!(buffer.bytes, bytes(&[&records[0], &records[1], &records[2]]));
        // Across authors too: member 2's seq 9 is the furthest ahead.
        buffer.insert(record(2, 9, 0, 0));
        assert_eq!(held(&buffer, 2), Vec::<u64>::new(), "dropped at once: it is the furthest ahead");
        buffer.insert(record(2, 3, 0, 0));
        assert_eq!((held(&buffer, 1), held(&buffer, 2)), (vec![2, 3], vec![3]));
        assert_eq!(buffer.len(), 3);
    }

    #[test]
    fn a_second_record_at_a_held_position_is_not_kept() {
        let mut buffer = Buffer::new(10);
        let first = record(1, 4, 1, 0);
        buffer.insert(first.clone());
        buffer.insert(record(1, 4, 2, 0));
        assert_eq!((buffer.len(), buffer.bytes), (1, first.bytes().len()));
        let author = first.author();
        assert_eq!(buffer.take(&author, 4), Some(first));
        assert_eq!((buffer.len(), buffer.bytes), (0, 0));
        assert!(buffer.by_author.is_empty(), "an emptied author's log is removed");
    }

    #[test]
    fn take_returns_the_record_asked_for_and_drops_older_ones() {
        let mut buffer = Buffer::new(10);
        let records: Vec<Record> = [2, 3, 5, 7].iter().map(|seq| record(1, *seq, 0, 0)).collect();
        for r in &records {
            buffer.insert(r.clone());
        }
        let other = record(2, 2, 0, 0);
        buffer.insert(other.clone());
        let author = records[0].author();
        assert_eq!(buffer.take(&author, 4), None, "not held");
        assert_eq!(held(&buffer, 1), vec![5, 7], "older than 4: can never be used");
        assert_eq!(buffer.len(), 3);
        assert_eq!(buffer.take(&author, 5), Some(records[2].clone()));
        assert_eq!(held(&buffer, 1), vec![7]);
        assert_eq!((buffer.len(), buffer.bytes), (2, bytes(&[&records[3], &other])));
        assert_eq!(buffer.take(&other.author(), 3), None);
        assert_eq!(held(&buffer, 2), Vec::<u64>::new());
        assert_eq!((buffer.len(), buffer.bytes), (1, bytes(&[&records[3]])));
        assert_eq!(buffer.take(&MemberId([9; 32]), 1), None, "an author never seen");
    }

    /// A record of member 1 at `seq` of exactly 32 KiB, so that a whole number fill the cap.
    fn sized(seq: u64) -> Record {
        const SIZE: usize = 32 * 1024;
        let with_note = |len: usize| {
            let mut r = record(1, seq, 0, 15);
            let Body::Entry(mut entry) = r.body().clone() else { unreachable!("an entry") };
            entry.note = Some("n".repeat(len));
            r = UnsignedRecord {
                author: r.author(),
                seq,
                prev: RecordId::ZERO,
                timestamp: 0,
                body: Body::Entry(entry),
            }
            .sign(&key(1))
            .expect("within limits");
            r
        };
        let base = with_note(0).bytes().len();
        let r = with_note(SIZE - base);
        assert_eq!(r.bytes().len(), SIZE);
        r
    }

    #[test]
    fn the_byte_cap_holds_whatever_the_count() {
        let mut buffer = Buffer::new(usize::MAX);
        let size = sized(2).bytes().len();
        let fit = MAX_BYTES / size;
        assert_eq!(fit * size, MAX_BYTES, "records that fill the cap exactly");
        for seq in 2..(fit as u64 + 4) {
            buffer.insert(sized(seq));
        }
        assert_eq!(buffer.len(), fit, "as many as fit in {MAX_BYTES} bytes, the cap included");
        assert_eq!(buffer.bytes, MAX_BYTES);
        assert_eq!(held(&buffer, 1).last(), Some(&(fit as u64 + 1)), "the furthest ahead went");
    }
}
