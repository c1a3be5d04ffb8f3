//! Write benchmark: acknowledged writes per second at 1, 8 and 64 concurrent clients against
//! one node over HTTP. Every write is acknowledged only once it is on disk; concurrent writers
//! share a flush (group commit), so more clients should mean far more writes per second.
//!
//! `cargo bench -p hashmesh-tests --bench writes -- [--seconds N] [--clients 1,8,64]`.
//! Prints figures; asserts nothing.

use std::time::Duration;

use hashmesh_tests::TestNet;
use hashmesh_tests::load::submit_concurrently;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds: u64 = hashmesh_tests::arg("--seconds").and_then(|s| s.parse().ok()).unwrap_or(10);
    let clients: Vec<usize> = hashmesh_tests::arg("--clients")
        .unwrap_or_else(|| "1,8,64".into())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    let net = TestNet::new(1).await?;
    let (rpc, token) = (net.nodes[0].rpc(), net.nodes[0].submitter.clone());
    for n in clients {
        let (rpc, token) = (rpc.clone(), token.clone());
        let report = tokio::task::spawn_blocking(move || {
            submit_concurrently(&rpc, &token, n, Duration::from_secs(seconds), Duration::from_secs(60))
        })
        .await?;
        println!(
            "{n:>3} clients: {:>7.0} acknowledged writes/s ({} in {:.1} s, slowest {:.1} ms, {} failed)",
            report.rate(),
            report.acked,
            report.elapsed.as_secs_f64(),
            report.slowest.as_secs_f64() * 1e3,
            report.failed
        );
    }
    net.shutdown().await;
    Ok(())
}
