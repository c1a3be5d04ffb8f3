//! Import benchmark: rows per second of `POST /v1/import` (what `hashmesh import` calls) on
//! one node, streaming a generated list of distinct PDQ hashes, each row a signed, stored
//! entry. Then an export of everything imported, for its rate.
//!
//! With `--matchers N`, N clients match the list's first hash (a hit once it is imported)
//! over HTTP one request after another for the whole import, and their latencies are printed:
//! the node must stay responsive.
//!
//! Last, the node restarts, timed until it serves again: start-up reads every record back.
//!
//! `cargo bench -p hashmesh-tests --bench import -- [--rows N] [--format plain|csv|te|jsonl]
//! [--matchers N]`. Prints figures; asserts nothing but that the restarted node still matches.

use std::io::Write;
use std::time::Instant;

use hashmesh_node::lists::Format;
use hashmesh_tests::TestNet;
use rand::{RngExt, SeedableRng};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rows: usize = hashmesh_tests::arg("--rows").and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let format: Format = hashmesh_tests::arg("--format")
        .map(|f| f.parse())
        .transpose()
        .map_err(anyhow::Error::msg)?
        .unwrap_or(Format::Csv);
    let file = tempfile::NamedTempFile::new()?;
    // The matching clients look up the list's first hash: a hit from the first batch on, so
    // every request also does the actioner's work (matched entries, daily counters).
    let mut first = String::new();
    {
        let mut out = std::io::BufWriter::new(file.as_file());
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        if matches!(format, Format::Csv) {
            writeln!(out, "hash,kind,category,link")?;
        }
        for i in 0..rows {
            let hash = hex::encode(rng.random::<[u8; 32]>());
            if i == 0 {
                first = format!("pdq:{hash}");
            }
            match format {
                Format::Csv => writeln!(out, "{hash},pdq,csam,https://example.com/p/{i}")?,
                Format::Plain => writeln!(out, "pdq:{hash}")?,
                Format::Te => writeln!(out, "pdq {hash}")?,
                Format::Jsonl => {
                    writeln!(out, "{{\"fingerprints\":[\"pdq:{hash}\"],\"category\":\"csam\"}}")?
                }
                Format::Hma => writeln!(out, "pdq,{hash},CSAM,POSITIVE_CLASS,")?,
            }
        }
        out.flush()?;
    }
    let size = file.as_file().metadata()?.len();
    let mut net = TestNet::new(1).await?;
    let node = &net.nodes[0];
    let url = format!("{}/v1/import?format={format}&category=csam", node.rpc());
    let token = node.submitter.clone();
    let path = file.path().to_owned();
    let matchers: usize = hashmesh_tests::arg("--matchers").and_then(|s| s.parse().ok()).unwrap_or(0);
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..matchers)
        .map(|_| {
            let (url, token, done) =
                (format!("{}/v1/match/hashes", node.rpc()), node.matcher.clone(), done.clone());
            let body = serde_json::json!({ "hashes": [first.clone()] });
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    let t = Instant::now();
                    let answer = ureq::post(&url)
                        .header("Authorization", format!("Bearer {token}"))
                        .send_json(&body)
                        .ok()
                        .and_then(|mut r| r.body_mut().read_to_string().ok());
                    // (latency, answered, the answer held a hit)
                    let hit = answer.as_deref().is_some_and(|a| a.contains("\"hits\":[{"));
                    latencies.push((t.elapsed(), answer.is_some(), hit));
                }
                latencies
            })
        })
        .collect();
    let started = Instant::now();
    let report: serde_json::Value = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let mut reader = std::fs::File::open(path)?;
        let mut resp = ureq::post(&url)
            .header("Authorization", format!("Bearer {token}"))
            .send(ureq::SendBody::from_reader(&mut reader))?;
        Ok(serde_json::from_str(&resp.body_mut().read_to_string()?)?)
    })
    .await??;
    let took = started.elapsed().as_secs_f64();
    println!(
        "import {format}: {rows} rows ({:.0} MiB) in {took:.1} s = {:.0} rows/s; imported {}, duplicates {}, errors {}",
        size as f64 / 1048576.0,
        rows as f64 / took,
        report["imported"],
        report["duplicates"],
        report["errors"]
    );

    done.store(true, std::sync::atomic::Ordering::Relaxed);
    if matchers > 0 {
        let mut all: Vec<(std::time::Duration, bool, bool)> =
            clients.into_iter().flat_map(|c| c.join().unwrap_or_default()).collect();
        all.sort();
        let failed = all.iter().filter(|(_, ok, _)| !ok).count();
        let hits = all.iter().filter(|(_, _, hit)| *hit).count();
        let at = |q: f64| {
            all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1)))
                .map_or(0.0, |l| l.0.as_secs_f64() * 1e3)
        };
        println!(
            "{matchers} matching clients during the import: {} requests ({:.0}/s), p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {failed} failed",
            all.len(),
            all.len() as f64 / took,
            at(0.5),
            at(0.99),
            at(1.0)
        );
        // Every hit is counted once: the day's counters must hold each request that hit.
        node.handle().publish_stats().await?;
        let stats = node.handle().stats(&Default::default())?;
        let counted: u64 = stats.totals.iter().map(|c| c.matches).sum();
        println!("  {hits} answers held a hit; today's stats counted {counted} matches");
    }
    let url = format!("{}/v1/export?format=csv", node.rpc());
    let token = node.matcher.clone();
    let started = Instant::now();
    let bytes = tokio::task::spawn_blocking(move || -> anyhow::Result<u64> {
        let mut resp = ureq::get(&url).header("Authorization", format!("Bearer {token}")).call()?;
        Ok(std::io::copy(&mut resp.body_mut().as_reader(), &mut std::io::sink())?)
    })
    .await??;
    let took = started.elapsed().as_secs_f64();
    println!(
        "export csv: {:.0} MiB in {took:.1} s = {:.0} entries/s",
        bytes as f64 / 1048576.0,
        rows as f64 / took
    );

    // Start-up: the node reads every record back from the store and rebuilds its catalog and
    // indexes (the PDQ multi-index in one build on every core) before it answers.
    let node = &mut net.nodes[0];
    node.stop().await;
    let started = Instant::now();
    node.start().await?;
    let took = started.elapsed().as_secs_f64();
    let (url, token) = (format!("{}/v1/match/hashes", node.rpc()), node.matcher.clone());
    let body = serde_json::json!({ "hashes": [first] });
    let answer = tokio::task::spawn_blocking(move || -> anyhow::Result<String> {
        let mut resp =
            ureq::post(&url).header("Authorization", format!("Bearer {token}")).send_json(&body)?;
        Ok(resp.body_mut().read_to_string()?)
    })
    .await??;
    anyhow::ensure!(
        answer.contains("\"hits\":[{"),
        "after the restart the first hash must still match: {answer}"
    );
    println!(
        "restart with {rows} entries: serving in {took:.1} s = {:.0} entries/s, first hash still matched",
        rows as f64 / took
    );
    net.shutdown().await;
    Ok(())
}
