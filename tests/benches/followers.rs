//! Followers benchmark: what `hashmesh run --follow` gives a member whose matching outgrows
//! one node.
//!
//! One member node holds `--entries` PDQ entries (imported as a list). Then, printed:
//! - catch-up: how fast a fresh follower pulls and verifies the whole replica over HTTP;
//! - freshness: for entries submitted one at a time at the member node, the time until each
//!   is in the follower's replica (its long poll carries it);
//! - matching throughput: `--clients` HTTP clients send batches of `--batch` PDQ hashes
//!   (a tenth of them listed) to `/v1/match/hashes` for `--seconds`, spread round robin over
//!   the member node alone, over one follower, and over two followers.
//!
//! Every node runs in this process, on this machine's cores: the throughput lines show what
//! followers cost and how requests spread, not the scale-out of followers on their own
//! machines. `cargo bench -p hashmesh-tests --bench followers -- [--entries N] [--clients N]
//! [--batch N] [--seconds S]`. Prints figures; asserts nothing.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hashmesh_tests::{TestNet, TestNode, start_follower};
use rand::{RngExt, SeedableRng};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let entries: usize = hashmesh_tests::arg_or("--entries", 200_000);
    let clients: usize = hashmesh_tests::arg_or("--clients", 8);
    let batch: usize = hashmesh_tests::arg_or("--batch", 100);
    let seconds: u64 = hashmesh_tests::arg_or("--seconds", 10);

    let net = TestNet::new(1).await?;
    let member = &net.nodes[0];
    let listed = import(member, entries).await?;
    let records = member.status().await.records;

    let started = Instant::now();
    let first = start_follower(&member.rpc(), &member.matcher, &net.manifest).await?;
    caught_up(member, &first).await?;
    let took = started.elapsed().as_secs_f64();
    println!(
        "catch-up: a fresh follower pulled and verified {records} records in {took:.1} s = {:.0} records/s",
        records as f64 / took
    );

    let mut delays = Vec::new();
    for n in 0..200u32 {
        let written = Instant::now();
        member.submit(&[&format!("md5:{n:032x}")], "csam").await;
        caught_up(member, &first).await?;
        delays.push(written.elapsed());
    }
    delays.sort();
    let ms = |q: f64| delays[((delays.len() as f64 * q) as usize).min(delays.len() - 1)].as_secs_f64() * 1e3;
    println!(
        "freshness: an entry acknowledged at the member node is in the follower's replica after p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} entries)",
        ms(0.5),
        ms(0.99),
        ms(1.0),
        delays.len()
    );

    let second = start_follower(&member.rpc(), &member.matcher, &net.manifest).await?;
    caught_up(member, &second).await?;
    for (what, targets) in [
        ("the member node alone", vec![member]),
        ("one follower", vec![&first]),
        ("two followers", vec![&first, &second]),
    ] {
        let (hashes, hits, failed) = load(&targets, &listed, clients, batch, Duration::from_secs(seconds));
        println!(
            "matching over {what}: {:.0} hashes/s ({:.0} requests/s of {batch}), {hits} hits, {failed} failed requests",
            hashes as f64 / seconds as f64,
            hashes as f64 / batch as f64 / seconds as f64,
        );
    }
    Ok(())
}

/// Imports `n` random PDQ entries at `node`; returns their hashes.
async fn import(node: &TestNode, n: usize) -> anyhow::Result<Vec<String>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let hashes: Vec<String> = (0..n).map(|_| hex::encode(rng.random::<[u8; 32]>())).collect();
    let mut list = Vec::new();
    for h in &hashes {
        writeln!(list, "pdq:{h}")?;
    }
    let reply = node
        .call_raw("POST", "/v1/import?format=plain&category=csam", Some(&node.submitter), Some(list), None)
        .await;
    anyhow::ensure!(reply.status == 200, "import failed: {reply:?}");
    Ok(hashes.into_iter().map(|h| format!("pdq:{h}")).collect())
}

/// Waits until `follower` holds what `member` holds.
async fn caught_up(member: &TestNode, follower: &TestNode) -> anyhow::Result<()> {
    let want = member.handle().replica().clock();
    let deadline = Instant::now() + Duration::from_secs(600);
    while follower.handle().replica().clock() != want {
        anyhow::ensure!(Instant::now() < deadline, "the follower did not catch up in 10 minutes");
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    Ok(())
}

/// `clients` threads send batches round robin over `targets` for `duration`: (hashes matched,
/// hits, failed requests).
fn load(
    targets: &[&TestNode],
    listed: &[String],
    clients: usize,
    batch: usize,
    duration: Duration,
) -> (u64, u64, u64) {
    let endpoints: Vec<(String, String)> =
        targets.iter().map(|t| (format!("{}/v1/match/hashes", t.rpc()), t.matcher.clone())).collect();
    let (hashes, hits, failed) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let start = Instant::now();
    std::thread::scope(|scope| {
        for c in 0..clients {
            let (endpoints, hashes, hits, failed) = (&endpoints, &hashes, &hits, &failed);
            scope.spawn(move || {
                let mut rng = rand::rngs::StdRng::seed_from_u64(c as u64);
                let mut turn = c;
                while start.elapsed() < duration {
                    // A tenth listed (each with a random bit flipped: a near match), the rest random.
                    let query: Vec<String> = (0..batch)
                        .map(|i| {
                            if i % 10 == 0 {
                                flip(&listed[rng.random_range(0..listed.len())], rng.random_range(0..256))
                            } else {
                                format!("pdq:{}", hex::encode(rng.random::<[u8; 32]>()))
                            }
                        })
                        .collect();
                    let (url, token) = &endpoints[turn % endpoints.len()];
                    turn += 1;
                    let answer = ureq::post(url)
                        .header("Authorization", format!("Bearer {token}"))
                        .send_json(serde_json::json!({ "hashes": query }))
                        .ok()
                        .and_then(|mut r| r.body_mut().read_to_string().ok());
                    match answer {
                        Some(text) => {
                            hashes.fetch_add(batch as u64, Ordering::Relaxed);
                            hits.fetch_add(text.matches("\"entry\"").count() as u64, Ordering::Relaxed);
                        }
                        None => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
    });
    (hashes.into_inner(), hits.into_inner(), failed.into_inner())
}

/// `pdq:HEX` with bit `bit` flipped.
fn flip(fingerprint: &str, bit: usize) -> String {
    let mut bytes = hex::decode(&fingerprint[4..]).unwrap_or_default();
    if let Some(b) = bytes.get_mut(bit / 8) {
        *b ^= 1 << (bit % 8);
    }
    format!("pdq:{}", hex::encode(bytes))
}
