//! Multi-index hashing (MIH) for 256-bit PDQ hashes.
//!
//! [`MihIndex`] answers "every stored hash within Hamming distance `d` of a
//! query" with results identical to a brute-force scan. For `d <= 31` (the
//! PDQ match threshold) it uses multi-index hashing; for larger `d` it falls
//! back to a linear scan.
//!
//! # The pigeonhole argument
//!
//! A hash is cut into 16 *parts* of 16 bits (part `t` is bytes `2t, 2t+1`),
//! grouped into 8 *pairs* of 32 bits (parts `2p` and `2p + 1`). Part `t`'s
//! *partner* is part `t ^ 1`.
//!
//! If `hamming(q, x) <= 31` then, since the 8 pair distances add up to at most
//! 31, some pair differs in at most `floor(31 / 8) = 3` bits. Within that
//! pair the two part distances add up to at most 3, so one of the two parts
//! differs in at most 1 bit. Hence every match `x` satisfies, for at least one
//! part `t`:
//!
//! ```text
//! dist(part t) <= 1   and   dist(part t) + dist(partner of t) <= 3
//! ```
//!
//! (This is the classic "some 16-bit slot is within 1 bit" argument,
//! strengthened by the pair bound so that candidates can be filtered on the
//! partner part without touching the full hash.)
//!
//! # Layout
//!
//! One table per part. Table `t` is a CSR (compressed sparse row) bucket
//! array keyed by part `t` (the top `b` bits of it; `b = 16` for levels of
//! 2^19 hashes or more, fewer for small levels so that buckets hold ~16):
//! `offsets[k]..offsets[k + 1]` is the range of entries whose key is `k`.
//! Each entry has the 16-bit *partner* part, in an array of its own that the
//! query scans with a popcount filter (so few candidates cost a random read
//! of the full hash), and a 24-bit position into the hash array. The hash
//! array itself is sorted by part 0, so table 0 needs no positions: its
//! buckets are ranges of the hash array, with a parallel array of their
//! partners (part 1). When keys are full parts, the odd tables keep no
//! positions either: an entry's key and partner are its whole pair, which
//! locates it in its pair's even table ([`level`] explains how).
//!
//! A query probes, in each of the 16 tables, the bucket of the query's part
//! and the `b` buckets one key bit away (272 buckets in all when `b = 16`).
//! It first looks up all bucket ranges and touches every cache line of them
//! (independent loads, so the misses overlap), then scans: an entry in the
//! query's own bucket may have a partner up to 3 bits off, one in a one-bit
//! bucket up to 2. Survivors (about 1% and 0.2% of the scanned entries) are
//! checked against the full hash. A match can survive in several tables; it
//! is reported only from the *first* table whose condition it meets
//! (computed from the full hash, which also checks the own part exactly when
//! keys are narrower than a part), so every stored item is returned exactly
//! once without a hash set.
//!
//! # Live inserts
//!
//! [`MihIndex::insert`] appends to an unsorted delta buffer (512 entries) scanned by brute
//! force. When the buffer is full it becomes a new immutable *level*. Levels merge on
//! background threads ([`levels`]): tiered merges keep their number logarithmic during a
//! stream of inserts, and a compaction then folds them back into one, so the index answers as
//! fast as a freshly built one. A query reads a snapshot of the level list and never waits for
//! a merge; an insert never rebuilds a level larger than the buffer.
//!
//! A level holds at most [`MAX_LEVEL`] = 2^24 hashes, so positions always fit in 3 bytes and
//! a merge never rebuilds more than 2^24 hashes (a few seconds of one core, and that much
//! memory again while it runs). Larger indexes are several full levels; [`MihIndex::build`]
//! builds them on every core.
//!
//! # Memory
//!
//! Per hash at full key width: 32 bytes of hash, 4 of id, 2 of part-0 partner, 7 even tables
//! of 5 bytes (2 partner + 3 position) and 8 odd tables of 2 (partner) = 89 bytes, plus 15
//! offset arrays of 65 537 `u32` per level (0.4 bytes per hash at 10M, 0.23 at 2^24).
//! Levels under 2^19 hashes keep every position: 113 bytes.
//!
//! This misses the 64-byte goal on purpose. The partner filters are what make a query cheap
//! (they leave ~100 of the ~41 000 entries a query meets at 10M hashes), and at 16 bits for
//! each of 16 tables they are 32 bytes; with the 32-byte hash that is 64 before a single
//! position or id. Seven tables must still name positions, at least log2(2^16 · e) ≈ 17.4
//! bits each however coded, since their buckets scatter over the hash array in an order no
//! other table shares: 83 bytes is the floor for this filter. Halving the filters to fit 64
//! bytes lets ~6 600 candidates through instead of ~100, each a random read of the hash
//! array: about ten times slower, under 2 000 queries a second at 10M. Fewer tables do not
//! fit the pigeonhole: k tables of 16-bit parts probed within r bits find every match within
//! 31 only if k·(r + 1) ≥ 32, so 8 tables must probe 697 buckets each (20 times the entries),
//! and 8 tables of 32-bit slots must look up 5 489 keys each.

mod level;
mod levels;

use std::sync::Arc;

use level::Level;
use levels::Levels;

/// A 256-bit PDQ hash, as its 32 bytes.
pub type Hash256 = [u8; 32];

/// Number of 16-bit parts in a hash (and of tables in a level).
const PARTS: usize = 16;

/// Highest distance for which the multi-index scheme is exact.
const MIH_MAX_DISTANCE: u32 = 31;

/// Largest pair (32-bit) distance a match must have in some pair.
const PAIR_RADIUS: u32 = 3;

/// Default size of the unsorted insert buffer.
const DEFAULT_DELTA_MAX: usize = 512;

/// Most hashes in one level: positions fit in 3 bytes.
const MAX_LEVEL: usize = 1 << 24;

/// Hamming distance between two hashes (popcount of the XOR, 64 bits at a
/// time with `u64::count_ones`).
#[inline]
pub fn hamming(a: &Hash256, b: &Hash256) -> u32 {
    let mut d = 0;
    for i in 0..4 {
        d += (word(a, i) ^ word(b, i)).count_ones();
    }
    d
}

#[inline]
fn word(h: &Hash256, i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&h[i * 8..i * 8 + 8]);
    u64::from_le_bytes(w)
}

#[inline]
fn part(h: &Hash256, t: usize) -> u16 {
    u16::from_le_bytes([h[2 * t], h[2 * t + 1]])
}

#[inline]
fn parts(h: &Hash256) -> [u16; PARTS] {
    let mut p = [0u16; PARTS];
    for (t, v) in p.iter_mut().enumerate() {
        *v = part(h, t);
    }
    p
}

#[inline]
fn pdist(a: u16, b: u16) -> u32 {
    (a ^ b).count_ones()
}

/// The first part `t` whose table reports `x` for query parts `q`, if any.
#[inline]
fn first_reporting_part(q: &[u16; PARTS], x: &Hash256) -> Option<usize> {
    let mut d = [0u32; PARTS];
    for (t, v) in d.iter_mut().enumerate() {
        *v = pdist(q[t], part(x, t));
    }
    (0..PARTS).find(|&t| d[t] <= 1 && d[t] + d[t ^ 1] <= PAIR_RADIUS)
}

/// Bucket-key width for a level of `n` hashes: about `n / 16` buckets, at most
/// 2^16 (the full part).
fn bucket_bits(n: usize) -> u32 {
    let bits = usize::BITS - n.leading_zeros();
    bits.saturating_sub(4).clamp(1, 16)
}

/// An index of 256-bit hashes with exact Hamming range queries.
///
/// See the [module documentation](self) for the design. Ids are opaque to the index: the same
/// hash may be stored under several ids, and the same id under several hashes (each stored
/// pair is reported on its own).
pub struct MihIndex {
    /// Immutable levels, merged in the background.
    levels: Levels,
    /// Unsorted recent inserts, scanned linearly.
    delta: Vec<(Hash256, u32)>,
    /// Size at which `delta` becomes a level.
    delta_max: usize,
}

impl Default for MihIndex {
    fn default() -> Self {
        Self::new()
    }
}

impl MihIndex {
    /// An empty index.
    pub fn new() -> Self {
        MihIndex { levels: Levels::new(), delta: Vec::new(), delta_max: DEFAULT_DELTA_MAX }
    }

    /// Builds an index over `hashes` on every core (linear-time counting sorts; a few seconds
    /// for 10M hashes): one level per 2^24 hashes.
    pub fn build(hashes: &[(Hash256, u32)]) -> Self {
        let index = Self::new();
        index.push_built(hashes);
        index
    }

    /// An empty index for loading many hashes at once, as at start-up: inserts wait unindexed
    /// (queries scan them) until [`Self::loaded`] builds them on every core in one go, rather
    /// than as thousands of small levels merged one after another.
    pub fn loading() -> Self {
        MihIndex { delta_max: usize::MAX, ..Self::new() }
    }

    /// Indexes what was inserted since [`Self::loading`]; inserts are indexed as usual from
    /// then on.
    pub fn loaded(&mut self) {
        let pending = std::mem::take(&mut self.delta);
        self.delta_max = DEFAULT_DELTA_MAX;
        self.push_built(&pending);
    }

    /// Adds `hashes` as new levels of up to 2^24 hashes, built on every core: a single level
    /// shares its tables out among the threads, several levels are built side by side.
    fn push_built(&self, hashes: &[(Hash256, u32)]) {
        let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let chunks: Vec<&[(Hash256, u32)]> = hashes.chunks(self.levels.max_level()).collect();
        if let [chunk] = chunks.as_slice() {
            self.levels.push(Level::build(chunk, self.levels.bits_for(chunk.len()), threads));
            return;
        }
        for batch in chunks.chunks(threads) {
            let built: Vec<Level> = std::thread::scope(|scope| {
                let handles: Vec<_> = batch
                    .iter()
                    .map(|chunk| {
                        let bits = self.levels.bits_for(chunk.len());
                        scope.spawn(move || Level::build(chunk, bits, 1))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                    .collect()
            });
            for level in built {
                self.levels.push(level);
            }
        }
    }

    /// Builds with a fixed bucket width, delta size and level size (tests).
    #[cfg(test)]
    fn build_with(hashes: &[(Hash256, u32)], bits: u32, delta_max: usize, max_level: usize) -> Self {
        let bits = bits.clamp(1, 16);
        let levels = Levels::with(Some(bits), max_level.max(1));
        for chunk in hashes.chunks(levels.max_level()) {
            levels.push(Level::build(chunk, bits, 1));
        }
        MihIndex { levels, delta: Vec::new(), delta_max: delta_max.max(1) }
    }

    /// Adds one hash. The hash goes to a small unsorted buffer, which becomes an indexed
    /// level when full; levels merge in the background.
    pub fn insert(&mut self, hash: Hash256, id: u32) {
        self.delta.push((hash, id));
        if self.delta.len() >= self.delta_max {
            let batch = std::mem::take(&mut self.delta);
            let bits = self.levels.bits_for(batch.len());
            self.levels.push(Level::build(&batch, bits, 1));
        }
    }

    /// Waits for the background merges to end, compacting at once (benchmarks and tests).
    pub fn settle(&self) {
        self.levels.settle();
    }

    /// Number of stored (hash, id) pairs.
    pub fn len(&self) -> usize {
        self.levels.snapshot().iter().map(|level| level.len()).sum::<usize>() + self.delta.len()
    }

    /// Whether the index stores nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every stored `(id, distance)` whose hash is within `max_distance` bits of `hash`, each
    /// stored pair once, in no particular order.
    ///
    /// Exact (equal to a brute-force scan) for every `max_distance`; uses multi-index hashing
    /// up to 31 and a linear scan above.
    pub fn query(&self, hash: &Hash256, max_distance: u32) -> Vec<(u32, u32)> {
        let mut out = Vec::new();
        for level in self.levels.snapshot().iter() {
            if max_distance <= MIH_MAX_DISTANCE {
                level.query_mih(hash, max_distance, &mut out);
            } else {
                level.query_scan(hash, max_distance, &mut out);
            }
        }
        for (h, id) in &self.delta {
            let d = hamming(h, hash);
            if d <= max_distance {
                out.push((*id, d));
            }
        }
        out
    }

    /// Whether an equal hash is stored: one bucket per level and the delta, far cheaper than
    /// a query at distance 0 (which probes every table).
    pub fn contains(&self, hash: &Hash256) -> bool {
        self.levels.snapshot().iter().any(|level| level.contains(hash))
            || self.delta.iter().any(|(h, _)| h == hash)
    }

    /// Estimated heap bytes held by the index (allocated capacities of all arrays; allocator
    /// overhead and levels being built by a merge not included).
    pub fn memory_bytes(&self) -> usize {
        let levels = self.levels.snapshot();
        levels.len() * std::mem::size_of::<Arc<Level>>()
            + levels.iter().map(|level| level.heap_bytes()).sum::<usize>()
            + self.delta.capacity() * std::mem::size_of::<(Hash256, u32)>()
    }

    /// Number of indexed levels (tests).
    #[cfg(test)]
    fn level_count(&self) -> usize {
        self.levels.count()
    }
}

#[cfg(test)]
mod tests;
