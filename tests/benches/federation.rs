//! Replication benchmark: catch-up throughput between two nodes, bytes on the wire per
//! record, and the time until a new entry is matchable at every node of a 10-node federation.
//!
//! `cargo bench -p hashmesh-tests --bench federation -- [--records N] [--nodes N] [--rounds N]`
//! (defaults: 1,000,000 records, 10 nodes, 100 rounds). Prints figures; asserts nothing.

use std::time::{Duration, Instant};

use hashmesh_node::api::SubmitEntry;
use hashmesh_tests::TestNet;

/// Bytes received on the loopback interface so far (Linux), to measure what crossed the wire.
fn loopback_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/dev").ok()?;
    let line = text.lines().find(|l| l.trim_start().starts_with("lo:"))?;
    line.split_once(':')?.1.split_whitespace().next()?.parse().ok()
}

fn entry(n: usize) -> SubmitEntry {
    SubmitEntry {
        fingerprints: vec![
            format!("md5:{n:032x}").parse().expect("valid"),
            format!("pdq:{:064x}", n * 7919).parse().expect("valid"),
        ],
        category: "csam".parse().expect("valid"),
        links: vec![format!("https://example.com/removed/{n}")],
        note: None,
        expires_at: None,
    }
}

async fn catch_up(records: usize) -> anyhow::Result<()> {
    let mut net = TestNet::new(2).await?;
    net.nodes[1].stop().await;
    let t = Instant::now();
    for start in (0..records).step_by(50_000) {
        let batch = (start..(start + 50_000).min(records)).map(entry).collect();
        net.nodes[0].handle().submit_batch(batch).await?;
    }
    println!("authored {records} records in {:.1} s", t.elapsed().as_secs_f64());
    verify_ceiling(&net)?;
    let before = loopback_bytes();
    let t = Instant::now();
    net.nodes[1].start().await?;
    net.introduce_all().await?;
    let deadline = Instant::now() + Duration::from_secs(3600);
    loop {
        let held = net.nodes[1].handle().replica().view().records() as usize;
        if held >= records {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "catch-up did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let secs = t.elapsed().as_secs_f64();
    println!("catch-up: {records} records in {secs:.1} s = {:.0} records/s", records as f64 / secs);
    if let (Some(a), Some(b)) = (before, loopback_bytes()) {
        println!(
            "wire: {:.0} bytes per record (all loopback traffic during catch-up / records)",
            (b - a) as f64 / records as f64
        );
    }
    // GET /v1/status over HTTP at this size: counters are kept, never scanned.
    let node = &net.nodes[1];
    let mut samples = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        let reply = node.call("GET", "/v1/status", Some(&node.matcher), None).await;
        anyhow::ensure!(reply.status == 200, "status failed: {reply:?}");
        samples.push(t.elapsed());
    }
    samples.sort();
    println!(
        "GET /v1/status at {} records: median {:.2} ms, max {:.2} ms (50 calls)",
        node.status().await.records,
        samples[samples.len() / 2].as_secs_f64() * 1e3,
        samples[samples.len() - 1].as_secs_f64() * 1e3
    );
    net.shutdown().await;
    Ok(())
}

/// What `verify_strict` alone costs per record on one core, and so the most records per second
/// this machine's cores could check if they did nothing else — the ceiling for catch-up.
fn verify_ceiling(net: &TestNet) -> anyhow::Result<()> {
    let node = net.nodes[0].handle();
    let mut sample = Vec::new();
    while sample.len() < 20_000 {
        let batch = node.records(&node.member(), sample.len() as u64 + 1, 1000)?;
        if batch.is_empty() {
            break;
        }
        sample.extend(batch);
    }
    let key = node.member().verifying_key().ok_or_else(|| anyhow::anyhow!("member key"))?;
    let t = Instant::now();
    for record in &sample {
        record.verify_signature_with(&key)?;
    }
    let per = t.elapsed().as_secs_f64() / sample.len().max(1) as f64;
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    println!(
        "verify_strict: {:.1} µs per record on one core; {cores} cores checking nothing else: at most {:.0} records/s",
        per * 1e6,
        cores as f64 / per
    );
    Ok(())
}

async fn time_to_match(nodes: usize, rounds: usize) -> anyhow::Result<()> {
    let net = TestNet::new(nodes).await?;
    let mut samples = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let author = &net.nodes[round % nodes];
        let fp: hashmesh_protocol::Fingerprint = format!("sha1:{:040x}", round + 1).parse()?;
        let t = Instant::now();
        author.handle().submit(SubmitEntry { fingerprints: vec![fp.clone()], ..entry(round) }).await?;
        for node in &net.nodes {
            while node.handle().match_fingerprints(std::slice::from_ref(&fp))[0].hits.is_empty() {
                anyhow::ensure!(t.elapsed() < Duration::from_secs(60), "entry never arrived");
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
        }
        samples.push(t.elapsed());
    }
    samples.sort();
    let pct = |p: f64| {
        samples[((samples.len() as f64 * p).ceil() as usize).saturating_sub(1).min(samples.len() - 1)]
    };
    println!(
        "time until matchable at all {nodes} nodes over {rounds} entries: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        samples[samples.len() - 1].as_secs_f64() * 1e3
    );
    net.shutdown().await;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let records: usize = hashmesh_tests::arg_or("--records", 1_000_000);
    let nodes: usize = hashmesh_tests::arg_or("--nodes", 10);
    let rounds: usize = hashmesh_tests::arg_or("--rounds", 100);
    time_to_match(nodes, rounds).await?;
    catch_up(records).await
}
