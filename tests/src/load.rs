//! Concurrent writers against a node's RPC, over real HTTP: what a platform's upload pipeline
//! does when many uploads are flagged at once. Used by the load scenario (which fails on any
//! stalled or refused request) and by the `writes` benchmark (which prints the rate).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What a run of concurrent writers saw.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Writes acknowledged (201).
    pub acked: u64,
    /// Requests answered with anything else, or not at all within the per-request limit.
    pub failed: u64,
    /// Ids of the acknowledged entries.
    pub ids: Vec<String>,
    /// The slowest acknowledged write.
    pub slowest: Duration,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// The first failure, as a message.
    pub first_failure: Option<String>,
}

impl LoadReport {
    /// Acknowledged writes per second.
    pub fn rate(&self) -> f64 {
        self.acked as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs `clients` threads, each submitting entries one after another for `duration`, every
/// request allowed at most `patience`. Each entry is unique (md5 from a shared counter).
pub fn submit_concurrently(
    rpc: &str,
    token: &str,
    clients: usize,
    duration: Duration,
    patience: Duration,
) -> LoadReport {
    let counter = AtomicU64::new(0);
    let start = Instant::now();
    let reports: Vec<LoadReport> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..clients)
            .map(|_| {
                let counter = &counter;
                scope.spawn(move || {
                    let agent: ureq::Agent = ureq::Agent::config_builder()
                        .http_status_as_error(false)
                        .timeout_global(Some(patience))
                        .build()
                        .new_agent();
                    let mut report = LoadReport::default();
                    while start.elapsed() < duration {
                        let n = counter.fetch_add(1, Ordering::Relaxed);
                        let body = format!(r#"{{"fingerprints":["md5:{n:032x}"],"category":"csam"}}"#);
                        let t = Instant::now();
                        let reply = agent
                            .post(format!("{rpc}/v1/entries"))
                            .header("Authorization", format!("Bearer {token}"))
                            .content_type("application/json")
                            .send(body.as_bytes());
                        let failure = match reply {
                            Ok(mut r) if r.status().as_u16() == 201 => {
                                let text = r.body_mut().read_to_string().unwrap_or_default();
                                let id = serde_json::from_str::<serde_json::Value>(&text)
                                    .ok()
                                    .and_then(|v| v["id"].as_str().map(str::to_owned));
                                match id {
                                    Some(id) => {
                                        report.acked += 1;
                                        report.ids.push(id);
                                        report.slowest = report.slowest.max(t.elapsed());
                                        None
                                    }
                                    None => Some(format!("201 without an id: {text}")),
                                }
                            }
                            Ok(mut r) => Some(format!(
                                "{}: {}",
                                r.status(),
                                r.body_mut().read_to_string().unwrap_or_default()
                            )),
                            Err(e) => Some(format!("no answer within {patience:?}: {e}")),
                        };
                        if let Some(f) = failure {
                            report.failed += 1;
                            report.first_failure.get_or_insert(f);
                        }
                    }
                    report
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or_default()).collect()
    });
    let mut total = LoadReport { elapsed: start.elapsed(), ..LoadReport::default() };
    for r in reports {
        total.acked += r.acked;
        total.failed += r.failed;
        total.ids.extend(r.ids);
        total.slowest = total.slowest.max(r.slowest);
        if total.first_failure.is_none() {
            total.first_failure = r.first_failure;
        }
    }
    total
}
