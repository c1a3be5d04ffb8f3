//! Members' daily counters from their `stats` records: the highest-seq record of each member
//! for each day counts, so a member that republishes its counters during the day replaces
//! them, never adds to them.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use hashmesh_protocol::{DailyCount, MemberId, Stats};

/// Every member's counters of every day.
#[derive(Default)]
pub struct Daily {
    days: BTreeMap<(u32, MemberId), (u64, Vec<DailyCount>)>,
}

impl Daily {
    /// Takes a member's `stats` record at `seq` into account.
    pub fn apply(&mut self, author: MemberId, seq: u64, stats: &Stats) {
        let held = self.days.entry((stats.day, author)).or_insert((0, Vec::new()));
        if seq > held.0 {
            *held = (seq, stats.counts.clone());
        }
    }

    /// The counters of the days in `days`: each member's for each day, by day.
    pub fn range(&self, days: RangeInclusive<u32>) -> impl Iterator<Item = (u32, MemberId, &[DailyCount])> {
        let (from, to) = (*days.start(), *days.end());
        self.days
            .range((from, MemberId([0; 32]))..=(to, MemberId([0xff; 32])))
            .map(|((day, member), (_, counts))| (*day, *member, counts.as_slice()))
    }
}
