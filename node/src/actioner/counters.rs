//! Daily counters: this node's own, and those its followers report.
//!
//! A member's matching may run on followers (`run --follow`), which cannot sign records; each
//! reports its counters to the member node, which publishes them with its own. A report holds
//! each day's counts so far, so a repeated or late report never counts twice: the member node
//! keeps the higher of what it holds and what came, per follower.

use std::collections::BTreeMap;

use hashmesh_protocol::{Category, DailyCount, Stats};

use super::{Actioner, counts_of};
use crate::store::StoreError;

/// Matches and removals by category name (byte order is the order `stats` records need).
type Day = BTreeMap<String, (u64, u64)>;

fn encode(matches: u64, removals: u64) -> Vec<u8> {
    let mut out = matches.to_be_bytes().to_vec();
    out.extend_from_slice(&removals.to_be_bytes());
    out
}

impl Actioner {
    pub(super) fn count(&self, day: u32, category: &Category, removed: bool) -> Result<(), StoreError> {
        let mut key = day.to_be_bytes().to_vec();
        key.extend_from_slice(category.as_str().as_bytes());
        self.counters.update_and_fetch(key, |held| {
            let (matches, removals) = held.map_or((0, 0), counts_of);
            Some(encode(matches + 1, removals + u64::from(removed)))
        })?;
        Ok(())
    }

    /// Takes a follower's report: for each day and category, the higher of the counts held
    /// for `follower` and the counts reported.
    pub fn merge_follower(&self, follower: &str, days: &[Stats]) -> Result<(), StoreError> {
        for stats in days {
            for count in &stats.counts {
                let mut key = stats.day.to_be_bytes().to_vec();
                key.extend_from_slice(count.category.as_str().as_bytes());
                key.push(0); // category names hold no NUL: the follower id follows it
                key.extend_from_slice(follower.as_bytes());
                self.followers.update_and_fetch(key, |held| {
                    let (matches, removals) = held.map_or((0, 0), counts_of);
                    Some(encode(matches.max(count.matches), removals.max(count.removals)))
                })?;
            }
        }
        Ok(())
    }

    /// The counters of each day this member publishes: this node's, plus those its followers
    /// reported; in day, then category order.
    pub fn counters(&self) -> Result<BTreeMap<u32, Vec<DailyCount>>, StoreError> {
        let mut days: BTreeMap<u32, Day> = BTreeMap::new();
        for (tree, followers) in [(&self.counters, false), (&self.followers, true)] {
            for item in tree.iter() {
                let (key, value) = item?;
                let Some((day, rest)) = key.split_first_chunk::<4>() else { continue };
                let name = if followers { rest.split(|b| *b == 0).next().unwrap_or_default() } else { rest };
                let Ok(name) = std::str::from_utf8(name) else { continue };
                let (matches, removals) = counts_of(&value);
                let sum =
                    days.entry(u32::from_be_bytes(*day)).or_default().entry(name.to_owned()).or_default();
                sum.0 = sum.0.saturating_add(matches);
                sum.1 = sum.1.saturating_add(removals);
            }
        }
        Ok(days
            .into_iter()
            .map(|(day, sums)| {
                let counts = sums
                    .into_iter()
                    .filter_map(|(name, (matches, removals))| {
                        Some(DailyCount { category: name.parse().ok()?, matches, removals })
                    })
                    .collect();
                (day, counts)
            })
            .collect())
    }
}
