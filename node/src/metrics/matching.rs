//! Counters of the matching service: requests by their answer, fingerprints looked up, hits.
//! A match request is one call of `NodeHandle::match_and_act`: one `POST /v1/match`,
//! `/v1/match/hashes`, or HMA lookup (an HMA upload's signal types together).

use hashmesh_protocol::Action;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::Listed;
use crate::api::MatchResult;
use crate::node::action_rank;

/// The answer of a request that matched nothing.
const MISS: &str = "miss";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AnswerLabel {
    answer: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HitLabels {
    kind: &'static str,
    action: &'static str,
}

/// The matching counters.
#[derive(Debug, Clone)]
pub struct MatchMetrics {
    requests: Family<AnswerLabel, Counter>,
    fingerprints: Family<KindLabel, Counter>,
    hits: Family<HitLabels, Counter>,
    suppressed: Counter,
}

impl MatchMetrics {
    pub(super) fn new(registry: &mut Registry) -> Self {
        let metrics = Self {
            requests: Family::default(),
            fingerprints: Family::default(),
            hits: Family::default(),
            suppressed: Counter::default(),
        };
        // Every answer from the start, so a rate over any of them is defined before its first.
        for answer in
            [Action::Remove, Action::Review, Action::None].map(Action::name).into_iter().chain([MISS])
        {
            let _ = metrics.requests.get_or_create(&AnswerLabel { answer });
        }
        registry.register(
            "match_requests",
            "Match requests by `answer`: the strongest action among their hits (remove, review, none), or miss when nothing matched",
            metrics.requests.clone(),
        );
        registry.register(
            "match_fingerprints",
            "Fingerprints looked up, by `kind` (a PDQ hash too low in quality to look up is not counted)",
            Listed(metrics.fingerprints.clone()),
        );
        registry.register(
            "match_hits",
            "Hits (an entry matched by a fingerprint of a request), by the fingerprint's `kind` and the `action` the entry asks for",
            Listed(metrics.hits.clone()),
        );
        registry.register(
            "match_suppressed",
            "Perceptual hits set aside because the content matches a verified allow-list (benign) entry",
            metrics.suppressed.clone(),
        );
        metrics
    }

    /// Counts one match request's results.
    pub fn record(&self, results: &[MatchResult]) {
        let answer = results
            .iter()
            .flat_map(|r| &r.hits)
            .map(|h| h.action)
            .min_by_key(|a| action_rank(*a))
            .map_or(MISS, Action::name);
        self.requests.get_or_create(&AnswerLabel { answer }).inc();
        for result in results {
            if result.skipped.is_none() {
                self.fingerprints.get_or_create(&KindLabel { kind: result.hash.kind().name() }).inc();
            }
            for hit in &result.hits {
                self.hits
                    .get_or_create(&HitLabels { kind: hit.kind.name(), action: hit.action.name() })
                    .inc();
            }
            self.suppressed.inc_by(result.suppressed.len() as u64);
        }
    }
}
