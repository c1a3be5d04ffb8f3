//! Federation statistics: this member signs its daily counters as `stats` records (see
//! [`crate::actioner`] for what is counted), and every node sums the members' records by day
//! and category — the figures members today compile and publish by hand.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use hashmesh_protocol::{Body, Category, DailyCount, Stats, codec};

use super::{NodeError, NodeHandle, now_ms};
use crate::actioner::day_of;
use crate::api::{CategoryStats, DayStats, FollowerCounters, StatsQuery, StatsView, Written};

/// Matches and removals of each category.
type Sums = BTreeMap<Category, (u64, u64)>;

/// Days summed when a query names no start.
const DEFAULT_DAYS: u32 = 30;
/// Most days one follower report may hold (a follower reports in chunks of this many).
const MAX_REPORT_DAYS: usize = 31;

impl NodeHandle {
    /// Signs a `stats` record for each day whose counters changed since they were last
    /// published (the whole day so far, which replaces what was published for it).
    pub async fn publish_stats(&self) -> Result<Vec<Written>, NodeError> {
        let _shared = self.shared.authoring.read().await;
        self.check_may_author()?;
        let counters = self.shared.actioner.counters()?;
        let published = self.published_stats();
        let mut bodies = Vec::new();
        for (day, mut counts) in counters {
            if published.get(&day) == Some(&counts) {
                continue;
            }
            if counts.len() > codec::MAX_STAT_CATEGORIES {
                tracing::warn!(
                    day,
                    categories = counts.len(),
                    "more categories than a stats record holds; the first {} are published",
                    codec::MAX_STAT_CATEGORIES
                );
                counts.truncate(codec::MAX_STAT_CATEGORIES);
            }
            bodies.push(Body::Stats(Stats { day, counts }));
        }
        if bodies.is_empty() {
            return Ok(Vec::new());
        }
        let records = self.shared.replica.author(bodies, now_ms()).await?;
        for record in &records {
            self.shared.net.publish(record.bytes().to_vec());
        }
        Ok(records.iter().map(|r| Written { id: r.id(), seq: r.seq() }).collect())
    }

    /// At a member node: takes a follower's counters, published with this member's own from
    /// the next publication on (see `actioner/counters.rs` for why a report never counts twice).
    pub fn merge_follower_counters(&self, report: &FollowerCounters) -> Result<(), NodeError> {
        if let Some(node) = self.follows() {
            return Err(NodeError::Follower(format!(
                "this node is a follower of {node}: followers report their counters to their member node"
            )));
        }
        let id = &report.follower;
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(NodeError::Invalid(format!(
                "follower {id:?} is not a follower id (1 to 64 letters, digits or dashes)"
            )));
        }
        if report.days.len() > MAX_REPORT_DAYS {
            return Err(NodeError::Invalid(format!(
                "a report holds at most {MAX_REPORT_DAYS} days, not {}",
                report.days.len()
            )));
        }
        for day in &report.days {
            // The rules of a `stats` record: categories ascending and once, removals ≤ matches.
            codec::check_body(&Body::Stats(day.clone()))
                .map_err(|e| NodeError::Invalid(format!("day {}: {e}", date(day.day))))?;
        }
        self.shared.actioner.merge_follower(id, &report.days)?;
        Ok(())
    }

    /// At a follower: sends its member node the days whose counters changed since the last
    /// report that was taken. Returns how many days were sent.
    pub async fn report_counters(&self) -> Result<usize, NodeError> {
        let Some(follow) = self.shared.follow.clone() else {
            return Err(NodeError::Invalid(
                "only a follower reports its counters; a member node publishes them".into(),
            ));
        };
        let counters = self.shared.actioner.counters()?;
        let changed: Vec<Stats> = {
            let reported = self.shared.reported.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            counters
                .into_iter()
                .filter(|(day, counts)| reported.get(day) != Some(counts))
                .map(|(day, counts)| Stats { day, counts })
                .collect()
        };
        let follower = self.follower_id()?;
        for chunk in changed.chunks(MAX_REPORT_DAYS) {
            let report = FollowerCounters { follower: follower.clone(), days: chunk.to_vec() };
            let follow = follow.clone();
            tokio::task::spawn_blocking(move || send_report(&follow, &report))
                .await
                .map_err(|e| NodeError::NotReady(e.to_string()))??;
            let mut reported = self.shared.reported.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            reported.extend(chunk.iter().map(|s| (s.day, s.counts.clone())));
        }
        Ok(changed.len())
    }

    /// This follower's id, made at its first report and kept in its store.
    fn follower_id(&self) -> Result<String, NodeError> {
        let tree = self.shared.replica.store().local_tree("follower")?;
        let made = hex::encode(rand::random::<[u8; 16]>());
        let id = tree
            .compare_and_swap(b"id", None as Option<&[u8]>, Some(made.as_bytes()))
            .map_err(crate::store::StoreError::from)?;
        Ok(match id {
            Ok(()) => made,
            Err(held) => held.current.map(|v| String::from_utf8_lossy(&v).into_owned()).unwrap_or(made),
        })
    }

    /// What this member last published for each day, as the replica holds it.
    fn published_stats(&self) -> BTreeMap<u32, Vec<DailyCount>> {
        let view = self.shared.replica.view();
        view.catalog()
            .daily()
            .range(0..=u32::MAX)
            .filter(|(_, member, _)| *member == self.shared.me)
            .map(|(day, _, counts)| (day, counts.to_vec()))
            .collect()
    }

    /// Members' counters summed by day and category over the days `query` names.
    pub fn stats(&self, query: &StatsQuery) -> Result<StatsView, NodeError> {
        let to = match &query.to {
            Some(text) => parse_day(text)?,
            None => day_of(now_ms()),
        };
        let from = match &query.from {
            Some(text) => parse_day(text)?,
            None => to.saturating_sub(DEFAULT_DAYS - 1),
        };
        if from > to {
            return Err(NodeError::Invalid(format!("from {} is after to {}", date(from), date(to))));
        }
        let mut days: BTreeMap<u32, (usize, Sums)> = BTreeMap::new();
        let mut totals = Sums::new();
        {
            let view = self.shared.replica.view();
            for (day, _, counts) in view.catalog().daily().range(from..=to) {
                let (members, sums) = days.entry(day).or_default();
                *members += 1;
                for c in counts {
                    for sum in [
                        sums.entry(c.category.clone()).or_default(),
                        totals.entry(c.category.clone()).or_default(),
                    ] {
                        sum.0 = sum.0.saturating_add(c.matches);
                        sum.1 = sum.1.saturating_add(c.removals);
                    }
                }
            }
        }
        let list = |sums: Sums| {
            sums.into_iter()
                .map(|(category, (matches, removals))| CategoryStats { category, matches, removals })
                .collect()
        };
        Ok(StatsView {
            from: date(from),
            to: date(to),
            days: days
                .into_iter()
                .map(|(day, (members, sums))| DayStats { day: date(day), members, categories: list(sums) })
                .collect(),
            totals: list(totals),
        })
    }
}

/// Posts `report` to the follower's member node.
fn send_report(follow: &crate::config::FollowConfig, report: &FollowerCounters) -> Result<(), NodeError> {
    let url = format!("{}/v1/stats/followers", follow.node.trim_end_matches('/'));
    let unreachable = |e: String| NodeError::NotReady(format!("cannot report counters to {url}: {e}"));
    let tls = crate::tls::client(Some(&follow.ca_file)).map_err(unreachable)?;
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(tls)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .new_agent();
    let mut response = agent
        .post(&url)
        .header("Authorization", format!("Bearer {}", follow.token))
        .send_json(report)
        .map_err(|e| unreachable(e.to_string()))?;
    if response.status().is_success() {
        return Ok(());
    }
    let status = response.status();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    Err(unreachable(format!("answered {status}: {}", text.trim())))
}

/// `YYYY-MM-DD` of a day number.
pub fn date(day: u32) -> String {
    let at = UNIX_EPOCH + Duration::from_secs(u64::from(day) * 86_400);
    humantime::format_rfc3339(at).to_string().chars().take(10).collect()
}

/// The day number of `YYYY-MM-DD`.
pub fn parse_day(text: &str) -> Result<u32, NodeError> {
    let bad =
        || NodeError::Invalid(format!("{text:?} is not a day: write YYYY-MM-DD (UTC), e.g. 2026-11-28"));
    if text.len() != 10 {
        return Err(bad());
    }
    let at = humantime::parse_rfc3339(&format!("{text}T00:00:00Z")).map_err(|_| bad())?;
    let since = at.duration_since(UNIX_EPOCH).map_err(|_| bad())?;
    Ok(day_of(since.as_millis() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_dates() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(20_420), "2025-11-28");
        assert_eq!(parse_day("2025-11-28").ok(), Some(20_420));
        assert_eq!(parse_day("2024-02-29").map(date).ok().as_deref(), Some("2024-02-29"));
        for bad in ["2025-13-01", "2025-11-28T00:00:00Z", "28.11.2025", "", "2025-02-30"] {
            assert!(parse_day(bad).is_err(), "{bad}");
        }
    }
}
