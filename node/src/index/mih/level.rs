//! One immutable, fully indexed batch of hashes: the layout the module documentation
//! describes, its build and its queries.
//!
//! # Pair lookups
//!
//! Parts `2p` and `2p + 1` form pair `p`, and each table's entries hold the other part of
//! their pair. An entry of the odd table `2p + 1` with key `k` and partner `a` therefore
//! names both halves of its pair: the item has part `2p` = `a` and part `2p + 1` = `k`. The
//! even table `2p` holds the same item in its bucket `a`, with partner `k` and a position.
//! So odd tables keep no positions: a candidate found in one is located by scanning bucket
//! `a` of its even table for partner `k` (bucket 0's partners are `partners0`, and its
//! positions are the hash array's own). That saves 3 of 5 bytes per entry in 8 of the 15
//! tables, 24 bytes a hash, for one more bucket read per candidate of an odd table.
//!
//! It needs the full key, so only levels with 16-bit keys (2^19 hashes or more) drop the odd
//! tables' positions; smaller levels keep them. Items with the same pair are told apart
//! by rank: an odd table's entry is located only if no earlier entry of its bucket has the
//! same partner, and then every match in the even bucket is a candidate, each item once.

use super::{Hash256, MAX_LEVEL, PAIR_RADIUS, PARTS, first_reporting_part, hamming, part, parts};

/// A position in a level's hash array, little-endian in 24 bits (levels hold at most
/// [`MAX_LEVEL`] = 2^24 hashes).
type Pos = [u8; 3];

#[inline]
fn get_pos(e: &Pos) -> usize {
    u32::from_le_bytes([e[0], e[1], e[2], 0]) as usize
}

#[inline]
fn make_pos(pos: u32) -> Pos {
    let [a, b, c, _] = pos.to_le_bytes();
    [a, b, c]
}

/// The CSR table of one part (parts 1..16; part 0 is implicit).
#[derive(Debug)]
struct Table {
    /// `offsets[k]..offsets[k + 1]` are the entries with bucket key `k`.
    offsets: Vec<u32>,
    /// Partner part of each entry (scanned).
    partners: Vec<u16>,
    /// Hash-array position of each entry (read only for candidates); empty for odd parts
    /// when keys are full parts, whose entries are located through their pair.
    positions: Vec<Pos>,
}

impl Table {
    /// Fills the table of part `t`: a stable counting-sort scatter by bucket key, so each
    /// bucket lists its items in hash-array order.
    fn build(hashes: &[Hash256], t: usize, shift: u32, offsets: Vec<u32>) -> Self {
        let with_positions = t.is_multiple_of(2) || shift > 0;
        let mut cursor: Vec<u32> = offsets[..offsets.len() - 1].to_vec();
        let mut partners = vec![0u16; hashes.len()];
        let mut positions = if with_positions { vec![[0u8; 3]; hashes.len()] } else { Vec::new() };
        for (pos, h) in (0u32..).zip(hashes) {
            let c = &mut cursor[(part(h, t) >> shift) as usize];
            partners[*c as usize] = part(h, t ^ 1);
            if let Some(slot) = positions.get_mut(*c as usize) {
                *slot = make_pos(pos);
            }
            *c += 1;
        }
        Table { offsets, partners, positions }
    }

    fn heap_bytes(&self) -> usize {
        self.offsets.capacity() * 4 + self.partners.capacity() * 2 + self.positions.capacity() * 3
    }
}

/// Offsets from bucket counts: `out[k]` is the start of bucket `k`, and a trailing entry
/// holds the total.
fn prefix_offsets(counts: &[u32]) -> Vec<u32> {
    let mut offsets = Vec::with_capacity(counts.len() + 1);
    let mut sum = 0u32;
    offsets.push(0);
    for &c in counts {
        sum += c;
        offsets.push(sum);
    }
    offsets
}

/// Calls `found(lo + i)` for each `partners[i]` within `limit` bits (2 or 3) of `qp`.
///
/// Survivors are rare (about 1 entry in 100), so the test runs branch-free over blocks of 16
/// entries, which the compiler turns into SSE2 vector code, and only a block with a survivor
/// branches.
#[inline]
fn scan(partners: &[u16], lo: usize, qp: u16, limit: u32, mut found: impl FnMut(usize)) {
    let three = limit >= 3;
    let blocks = partners.chunks_exact(16);
    let rest = blocks.remainder();
    for (b, block) in blocks.enumerate() {
        let mut mask = 0u32;
        for (j, &p) in block.iter().enumerate() {
            mask |= u32::from(within(p ^ qp, three)) << j;
        }
        while mask != 0 {
            found(lo + 16 * b + mask.trailing_zeros() as usize);
            mask &= mask - 1;
        }
    }
    let base = lo + partners.len() - rest.len();
    for (j, &p) in rest.iter().enumerate() {
        if within(p ^ qp, three) {
            found(base + j);
        }
    }
}

/// Whether `x` has at most 3 set bits (`three`) or at most 2: clearing the lowest set bit
/// that many times leaves 0. Plain integer operations, unlike popcount, vectorise on SSE2.
#[inline]
fn within(x: u16, three: bool) -> bool {
    let x = x & x.wrapping_sub(1);
    let x = x & x.wrapping_sub(1);
    let cleared = x & x.wrapping_sub(1);
    (if three { cleared } else { x }) == 0
}

/// One immutable, fully indexed batch of hashes.
#[derive(Debug)]
pub(super) struct Level {
    /// Bucket-key width (top bits of a part).
    pub(super) bits: u32,
    /// Hashes sorted by the bucket key of part 0.
    hashes: Vec<Hash256>,
    /// Caller ids, parallel to `hashes`.
    ids: Vec<u32>,
    /// CSR offsets of part 0 into `hashes`.
    offsets0: Vec<u32>,
    /// Part 1 (the partner of part 0) of each hash, parallel to `hashes`, so that scanning
    /// table 0 reads 2 bytes per entry instead of 32.
    partners0: Vec<u16>,
    /// Tables for parts 1..16.
    tables: Vec<Table>,
}

impl Level {
    /// Builds a level from `items` (non-empty, at most [`MAX_LEVEL`]) with `bits`-bit bucket
    /// keys, filling the 15 tables on up to `threads` threads.
    pub(super) fn build(items: &[(Hash256, u32)], bits: u32, threads: usize) -> Self {
        let n = items.len();
        assert!(n <= MAX_LEVEL, "a level holds at most {MAX_LEVEL} hashes");
        let shift = 16 - bits;
        let nbuckets = 1usize << bits;

        // Sort by the bucket key of part 0 (stable counting sort).
        let mut counts = vec![0u32; nbuckets];
        for (h, _) in items {
            counts[(part(h, 0) >> shift) as usize] += 1;
        }
        let offsets0 = prefix_offsets(&counts);
        let mut cursor: Vec<u32> = offsets0[..nbuckets].to_vec();
        let mut hashes = vec![[0u8; 32]; n];
        let mut ids = vec![0u32; n];
        for (h, id) in items {
            let c = &mut cursor[(part(h, 0) >> shift) as usize];
            hashes[*c as usize] = *h;
            ids[*c as usize] = *id;
            *c += 1;
        }
        let partners0: Vec<u16> = hashes.iter().map(|h| part(h, 1)).collect();

        // Histograms of all other parts in one pass, then one scatter per table: the
        // scatters are independent, so they are shared out among the threads.
        let mut hist = vec![0u32; (PARTS - 1) * nbuckets];
        for h in &hashes {
            for t in 1..PARTS {
                hist[(t - 1) * nbuckets + (part(h, t) >> shift) as usize] += 1;
            }
        }
        let offsets: Vec<Vec<u32>> = hist.chunks(nbuckets).map(prefix_offsets).collect();
        drop(hist);
        let mut jobs: Vec<(usize, Vec<u32>, Option<Table>)> =
            (1..PARTS).zip(offsets).map(|(t, offsets)| (t, offsets, None)).collect();
        let fill = |share: &mut [(usize, Vec<u32>, Option<Table>)]| {
            for (t, offsets, table) in share {
                *table = Some(Table::build(&hashes, *t, shift, std::mem::take(offsets)));
            }
        };
        let threads = threads.clamp(1, PARTS - 1);
        if threads == 1 {
            fill(&mut jobs);
        } else {
            std::thread::scope(|scope| {
                for share in jobs.chunks_mut((PARTS - 1).div_ceil(threads)) {
                    scope.spawn(|| fill(share));
                }
            });
        }
        let tables = jobs.into_iter().filter_map(|(_, _, table)| table).collect();
        Level { bits, hashes, ids, offsets0, partners0, tables }
    }

    pub(super) fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether `hash` is stored: equal hashes share part 0, so one bucket holds it if any does.
    pub(super) fn contains(&self, hash: &Hash256) -> bool {
        let key = (part(hash, 0) >> (16 - self.bits)) as usize;
        match (self.offsets0.get(key), self.offsets0.get(key + 1)) {
            (Some(&lo), Some(&hi)) => self.hashes[lo as usize..hi as usize].contains(hash),
            _ => false,
        }
    }

    pub(super) fn heap_bytes(&self) -> usize {
        self.hashes.capacity() * 32
            + self.ids.capacity() * 4
            + self.offsets0.capacity() * 4
            + self.partners0.capacity() * 2
            + self.tables.capacity() * std::mem::size_of::<Table>()
            + self.tables.iter().map(Table::heap_bytes).sum::<usize>()
    }

    /// Every stored (hash, id), in level order.
    pub(super) fn items(&self) -> impl Iterator<Item = (Hash256, u32)> + '_ {
        self.hashes.iter().copied().zip(self.ids.iter().copied())
    }

    /// Reports `pos` if it is within `max_distance` and `t` is the first part whose table
    /// reports it.
    #[inline]
    fn verify(
        &self,
        pos: usize,
        t: usize,
        query: &Hash256,
        q: &[u16; PARTS],
        max_distance: u32,
        out: &mut Vec<(u32, u32)>,
    ) {
        let h = &self.hashes[pos];
        let d = hamming(h, query);
        if d <= max_distance && first_reporting_part(q, h) == Some(t) {
            out.push((self.ids[pos], d));
        }
    }

    /// Multi-index search; exact for `max_distance <= 31`.
    ///
    /// Runs in two phases: first the bucket ranges of all 16 tables are looked up and every
    /// cache line of them touched (independent loads, so their misses overlap instead of
    /// being paid one after another), then the buckets are scanned.
    pub(super) fn query_mih(&self, query: &Hash256, max_distance: u32, out: &mut Vec<(u32, u32)>) {
        let q = parts(query);
        let shift = 16 - self.bits;
        let nprobes = self.bits as usize + 1;
        // ranges[t][j]: entry range of probe j of table t. Probe 0 is the query's own
        // bucket (key distance 0), probe j > 0 flips key bit j - 1.
        let mut ranges = [[(0usize, 0usize); 17]; PARTS];
        let mut touched = 0u16;
        for (t, row) in ranges.iter_mut().enumerate() {
            let offsets = if t == 0 { &self.offsets0 } else { &self.tables[t - 1].offsets };
            let k = (q[t] >> shift) as usize;
            for (j, r) in row.iter_mut().enumerate().take(nprobes) {
                let key = if j == 0 { k } else { k ^ (1 << (j - 1)) };
                *r = (offsets[key] as usize, offsets[key + 1] as usize);
            }
        }
        for &(lo, hi) in &ranges[0][..nprobes] {
            for &p in self.partners0[lo..hi].iter().step_by(32) {
                touched ^= p;
            }
        }
        for (row, table) in ranges[1..].iter().zip(&self.tables) {
            for &(lo, hi) in &row[..nprobes] {
                for &p in table.partners[lo..hi].iter().step_by(32) {
                    touched ^= p;
                }
            }
        }
        std::hint::black_box(touched);

        // Scan. An entry in probe j has key distance kd = (j > 0), so its own part is at
        // least kd bits off and the pair bound leaves at most 3 - kd bits for the partner.
        // When keys are narrower than a part (small levels) the own part may be further
        // off; `verify` checks the exact condition through `first_reporting_part`.
        //
        // Candidates: (entry index, table), or (position, 0) for table 0, whose buckets
        // are ranges of the hash array with their partners in `partners0`.
        let mut candidates: Vec<(usize, usize)> = Vec::with_capacity(256);
        for (j, &(lo, hi)) in ranges[0][..nprobes].iter().enumerate() {
            let limit = if j == 0 { PAIR_RADIUS } else { PAIR_RADIUS - 1 };
            scan(&self.partners0[lo..hi], lo, q[1], limit, |pos| candidates.push((pos, 0)));
        }
        // Candidates of odd tables without positions: (bucket key, bucket start, entry, table).
        let mut paired: Vec<(usize, usize, usize, usize)> = Vec::new();
        for (t, table) in (1..PARTS).zip(&self.tables) {
            let qp = q[t ^ 1];
            let located = !table.positions.is_empty();
            let k = (q[t] >> shift) as usize;
            for (j, &(lo, hi)) in ranges[t][..nprobes].iter().enumerate() {
                let limit = if j == 0 { PAIR_RADIUS } else { PAIR_RADIUS - 1 };
                let key = if j == 0 { k } else { k ^ (1 << (j - 1)) };
                scan(&table.partners[lo..hi], lo, qp, limit, |i| {
                    if located {
                        candidates.push((i, t));
                    } else {
                        paired.push((key, lo, i, t));
                    }
                });
            }
        }

        // Resolve positions, then verify. Done in tight loops after the scan so that the
        // (random) loads of different candidates overlap.
        for (i, t) in &mut candidates {
            if *t != 0 {
                *i = get_pos(&self.tables[*t - 1].positions[*i]);
            }
        }
        self.locate_pairs(&paired, &mut candidates);
        for &(pos, t) in &candidates {
            self.verify(pos, t, query, &q, max_distance, out);
        }
    }

    /// Adds as `(position, t)` candidates the items of the odd tables' entries `paired`
    /// (bucket key, bucket start, entry, table `t`), found in the buckets of their pairs' even
    /// tables (see the module documentation): keys are full parts here, so an entry's bucket
    /// key is its items' part `t`. In three passes, each of independent loads: the even
    /// buckets' ranges, their partners, the positions.
    fn locate_pairs(&self, paired: &[(usize, usize, usize, usize)], candidates: &mut Vec<(usize, usize)>) {
        let even = |t: usize| {
            if t == 1 {
                (&self.offsets0, &self.partners0)
            } else {
                let table = &self.tables[t - 2];
                (&table.offsets, &table.partners)
            }
        };
        let mut buckets: Vec<(usize, usize, usize, usize)> = Vec::with_capacity(paired.len());
        for &(k, lo, i, t) in paired {
            let partners = &self.tables[t - 1].partners;
            let a = partners[i];
            if partners[lo..i].contains(&a) {
                continue; // an earlier entry of the bucket names the same pair and locates them all
            }
            let (offsets, _) = even(t);
            buckets.push((offsets[a as usize] as usize, offsets[a as usize + 1] as usize, k, t));
        }
        // Touch every cache line of the buckets first: independent loads whose misses
        // overlap, where the scan below would wait for each bucket in turn.
        let mut touched = 0u16;
        for &(start, end, _, t) in &buckets {
            let (_, partners) = even(t);
            for &p in partners[start..end].iter().step_by(32) {
                touched ^= p;
            }
        }
        std::hint::black_box(touched);
        let mut found: Vec<(usize, usize)> = Vec::new();
        for &(start, end, k, t) in &buckets {
            let (_, partners) = even(t);
            for (e, &p) in (start..).zip(&partners[start..end]) {
                if usize::from(p) == k {
                    found.push((e, t));
                }
            }
        }
        candidates.extend(found.into_iter().map(|(e, t)| {
            let pos = if t == 1 { e } else { get_pos(&self.tables[t - 2].positions[e]) };
            (pos, t)
        }));
    }

    /// Linear scan; exact for any distance.
    pub(super) fn query_scan(&self, query: &Hash256, max_distance: u32, out: &mut Vec<(u32, u32)>) {
        for (h, &id) in self.hashes.iter().zip(&self.ids) {
            let d = hamming(h, query);
            if d <= max_distance {
                out.push((id, d));
            }
        }
    }
}

#[cfg(test)]
impl Level {
    /// Whether the odd tables locate their items through their pairs.
    pub(super) fn odd_tables_unpositioned(&self) -> bool {
        self.tables.iter().enumerate().all(|(i, table)| table.positions.is_empty() == (i % 2 == 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The branch-free filter is exactly the popcount bound, both ways: looser would only
    /// cost speed, which no query result shows, and stricter would lose matches.
    #[test]
    fn within_is_the_popcount_bound() {
        for x in 0..=u16::MAX {
            assert_eq!(within(x, true), x.count_ones() <= 3, "{x:#018b}");
            assert_eq!(within(x, false), x.count_ones() <= 2, "{x:#018b}");
        }
    }

    /// The scan reports exactly the entries within the limit, at their indexes from `lo`,
    /// across whole blocks of 16 and the remainder.
    #[test]
    fn scan_finds_exactly_the_survivors() {
        let partners: Vec<u16> = (0..53u16).map(|i| i.wrapping_mul(40_503) ^ 0x0f0f).collect();
        for (qp, limit) in [(0x0f0f, 3), (0x0f0f, 2), (0xffff, 3), (0, 2)] {
            let mut found = Vec::new();
            scan(&partners, 100, qp, limit, |i| found.push(i));
            let expected: Vec<usize> = (100..)
                .zip(&partners)
                .filter(|&(_, &p)| (p ^ qp).count_ones() <= limit)
                .map(|(i, _)| i)
                .collect();
            assert_eq!(found, expected, "qp={qp:#x} limit={limit}");
        }
    }

    #[test]
    fn positions_round_trip() {
        for pos in [0u32, 1, 0x00ab_cdef, (1 << 24) - 1] {
            assert_eq!(get_pos(&make_pos(pos)), pos as usize);
        }
    }
}
