//! Abuse benchmark: how a node's RPC holds up beyond loopback, where anyone can connect.
//!
//! A legitimate client matches 10 fingerprints at a time (`POST /v1/match/hashes`, one keep-
//! alive connection) for `--seconds`, alone and then during each attack; printed are its
//! requests per second, p50, p99 and max latency and its failures, and what the attack met:
//! - slow-loris: `--slow` connections each send a request head one byte a second; the node
//!   cuts each off at `rpc.header_timeout` (10 s by default);
//! - body flood: `--flooders` clients without a token each declare a 32 MiB JSON body and
//!   stream it; the node answers 401 before reading it, and the client sees how much it sent;
//! - connection flood: `--idle` idle connections, more than `rpc.max_connections` (1024);
//!   the ones past the cap are closed as they arrive, and counted.
//!
//! `cargo bench -p hashmesh-tests --bench abuse -- [--seconds S] [--slow N] [--flooders N]
//! [--idle N]`. Prints figures; asserts nothing.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hashmesh_tests::TestNet;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds: u64 = hashmesh_tests::arg_or("--seconds", 12);
    let slow: usize = hashmesh_tests::arg_or("--slow", 500);
    let flooders: usize = hashmesh_tests::arg_or("--flooders", 16);
    let idle: usize = hashmesh_tests::arg_or("--idle", 2000);
    let window = Duration::from_secs(seconds);

    let net = TestNet::new(1).await?;
    let node = &net.nodes[0];
    let addr = node.rpc().trim_start_matches("http://").to_owned();
    let (rpc, token) = (node.rpc(), node.matcher.clone());
    let client = move || legitimate(&rpc, &token, window);

    println!("{}", tokio::task::spawn_blocking(client.clone()).await?.line("alone"));

    // Slow-loris.
    let started = Instant::now();
    let cut = Arc::new(AtomicU64::new(0));
    let cut_after = Arc::new(AtomicU64::new(0));
    let lorises: Vec<_> = (0..slow)
        .map(|_| {
            let (addr, cut, cut_after) = (addr.clone(), Arc::clone(&cut), Arc::clone(&cut_after));
            std::thread::spawn(move || {
                let Ok(mut stream) = TcpStream::connect(&addr) else { return };
                let head = b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Slow: ";
                for byte in head.iter().chain(std::iter::repeat(&b'a')).take(60) {
                    if stream.write_all(std::slice::from_ref(byte)).is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
                // Cut off: the next read sees the connection closed.
                let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
                let mut buf = [0u8; 64];
                if matches!(stream.read(&mut buf), Ok(0) | Err(_)) {
                    cut.fetch_add(1, Ordering::Relaxed);
                    cut_after.fetch_max(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                }
            })
        })
        .collect();
    println!(
        "{}",
        tokio::task::spawn_blocking(client.clone())
            .await?
            .line(&format!("during {slow} slow-loris connections"))
    );
    for loris in lorises {
        let _ = loris.join();
    }
    println!(
        "  slow-loris: {} of {slow} connections cut off, the last {:.1} s after they opened (rpc.header_timeout 10 s)",
        cut.load(Ordering::Relaxed),
        cut_after.load(Ordering::Relaxed) as f64 / 1e3
    );

    // Unauthenticated 32 MiB JSON bodies.
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let floods: Vec<_> = (0..flooders)
        .map(|_| {
            let (addr, stop, refused, sent) =
                (addr.clone(), Arc::clone(&stop), Arc::clone(&refused), Arc::clone(&sent));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let (status, bytes) = big_body(&addr);
                    sent.fetch_add(bytes, Ordering::Relaxed);
                    if status == Some(401) {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let during = tokio::task::spawn_blocking(client.clone()).await?;
    stop.store(true, Ordering::Relaxed);
    for flood in floods {
        let _ = flood.join();
    }
    println!("{}", during.line(&format!("during {flooders} clients sending 32 MiB bodies without a token")));
    let refused = refused.load(Ordering::Relaxed).max(1);
    println!(
        "  body flood: {refused} requests refused with 401, each after the client sent {:.0} KiB of its 32 MiB on average",
        sent.load(Ordering::Relaxed) as f64 / refused as f64 / 1024.0
    );

    // More idle connections than rpc.max_connections.
    let before = refused_connections(node).await;
    let held: Vec<TcpStream> = (0..idle).filter_map(|_| TcpStream::connect(&addr).ok()).collect();
    let during = tokio::task::spawn_blocking(client).await?;
    println!("{}", during.line(&format!("with {} idle connections open", held.len())));
    println!(
        "  connection flood: {} connections closed as they arrived (rpc.max_connections 1024)",
        refused_connections(node).await - before
    );
    drop(held);
    net.shutdown().await;
    Ok(())
}

/// What the legitimate client saw.
struct Seen {
    latencies: Vec<Duration>,
    failures: u64,
    elapsed: Duration,
}

impl Seen {
    fn line(mut self, when: &str) -> String {
        self.latencies.sort();
        let n = self.latencies.len();
        let ms = |q: f64| {
            self.latencies
                .get(((n as f64 * q) as usize).min(n.saturating_sub(1)))
                .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
        };
        format!(
            "legitimate client {when}: {:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms, {} failed",
            n as f64 / self.elapsed.as_secs_f64(),
            ms(0.5),
            ms(0.99),
            ms(1.0),
            self.failures
        )
    }
}

/// Matches 10 fingerprints at a time for `window`, one request after another.
fn legitimate(rpc: &str, token: &str, window: Duration) -> Seen {
    let agent: ureq::Agent =
        ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(30))).build().into();
    let url = format!("{rpc}/v1/match/hashes");
    let body = serde_json::json!({ "hashes": (0..10).map(|i| format!("md5:{i:032x}")).collect::<Vec<_>>() });
    let (mut latencies, mut failures) = (Vec::new(), 0);
    let started = Instant::now();
    while started.elapsed() < window {
        let sent = Instant::now();
        match agent.post(&url).header("Authorization", &format!("Bearer {token}")).send_json(&body) {
            Ok(r) if r.status() == 200 => latencies.push(sent.elapsed()),
            _ => failures += 1,
        }
    }
    Seen { latencies, failures, elapsed: started.elapsed() }
}

/// Declares a 32 MiB JSON body without a token and sends it until answered; the status and
/// the bytes of body sent.
fn big_body(addr: &str) -> (Option<u16>, u64) {
    let Ok(mut stream) = TcpStream::connect(addr) else { return (None, 0) };
    let head = "POST /v1/entries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 33554432\r\n\r\n";
    if stream.write_all(head.as_bytes()).is_err() {
        return (None, 0);
    }
    let _ = stream.set_nonblocking(true);
    let chunk = [b' '; 64 * 1024];
    let mut sent = 0u64;
    let mut answer = Vec::new();
    let started = Instant::now();
    while sent < 32 << 20 && started.elapsed() < Duration::from_secs(10) {
        let mut buf = [0u8; 1024];
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                break;
            }
            Err(_) => {}
        }
        match stream.write(&chunk) {
            Ok(n) => sent += n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(_) => break,
        }
    }
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 1024];
    if answer.is_empty()
        && let Ok(n) = stream.read(&mut buf)
    {
        answer.extend_from_slice(&buf[..n]);
    }
    let status = std::str::from_utf8(&answer)
        .ok()
        .and_then(|text| text.strip_prefix("HTTP/1.1 "))
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok());
    (status, sent)
}

/// `hashmesh_rpc_connections_refused_total` from the node's metrics.
async fn refused_connections(node: &hashmesh_tests::TestNode) -> u64 {
    let text = node.metrics().await;
    text.lines()
        .find(|l| l.starts_with("hashmesh_rpc_connections_refused_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
