//! Starting from a data dir that is not what the node left: the node refuses to start and says
//! what is wrong and what to do, rather than serving a replica it cannot trust.

use hashmesh_node::config::Config;
use hashmesh_node::store::Store;
use hashmesh_protocol::{Body, Entry, RecordId, UnsignedRecord};
use hashmesh_tests::{TestNet, seeded_key, wait_until};

fn md5(n: u32) -> String {
    format!("md5:{n:032x}")
}

/// A record that does not extend node0's log: a gap after its head, appended behind the
/// replica's back through the store API, as a damaged disk or a bad restore could leave it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_does_not_chain_stops_the_node_at_start_with_what_to_do() {
    let mut net = TestNet::new(1).await.expect("testnet");
    for n in 0..3 {
        net.nodes[0].submit(&[&md5(n)], "drugs").await;
    }
    net.nodes[0].stop().await;
    let dir = net.nodes[0].dir.path().to_owned();
    let config = Config::load(&dir).expect("config");
    {
        let store =
            Store::open(&dir.join(&config.db), &net.manifest.name, net.nodes[0].member).expect("store");
        let body = Body::Entry(Entry {
            fingerprints: vec![md5(9).parse().expect("valid")],
            category: "drugs".parse().expect("valid"),
            links: vec![],
            note: None,
            expires_at: None,
        });
        let stray =
            UnsignedRecord { author: net.nodes[0].member, seq: 5, prev: RecordId::ZERO, timestamp: 0, body }
                .sign(&seeded_key(0))
                .expect("signs");
        store.append([&stray]).expect("append");
        store.flush().expect("flush");
    }
    let err = net.nodes[0].start().await.expect_err("must refuse a log with a gap");
    let message = format!("{err:#}");
    assert!(message.contains("the store is corrupt"), "{message}");
    assert!(message.contains("jumps to seq 5"), "says where: {message}");
    assert!(message.contains("restore the data dir from a backup or resync it from peers"), "{message}");
    assert!(net.nodes[0].node.is_none());
}

/// `GET /readyz` without a token: status, `ready` and `reason`.
async fn readyz(node: &hashmesh_tests::TestNode) -> (u16, Option<bool>, String) {
    let r = node.call("GET", "/readyz", None, None).await;
    (r.status, r.body["ready"].as_bool(), r.body["reason"].as_str().unwrap_or_default().to_owned())
}

/// `/readyz` tells a load balancer when to send a node traffic, with no token: not while a
/// restarted node that missed records has no peer to catch up from (503, saying so), yes once
/// it holds what a peer holds; the only member of a federation at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_answers_once_the_node_has_caught_up_with_a_peer_and_says_why_not_before() {
    let mut net = TestNet::new(2).await.expect("testnet");
    for node in &net.nodes {
        wait_until(&format!("{} ready", node.name), || async { readyz(node).await.0 == 200 })
            .await
            .expect("a fresh federation is ready once clocks are compared");
    }
    // node0 misses a record while down, then comes back while node1 is down.
    net.nodes[0].stop().await;
    let missed = net.nodes[1].submit(&[&md5(1)], "drugs").await;
    net.nodes[1].stop().await;
    // Comparisons with peers every 200 ms, so the test need not wait for the default 30 s.
    net.nodes[0].configure(|c| c.p2p.sync_interval = std::time::Duration::from_millis(200)).expect("config");
    net.nodes[0].start().await.expect("restart");
    let (status, ready, reason) = readyz(&net.nodes[0]).await;
    assert_eq!((status, ready), (503, Some(false)), "{reason}");
    assert!(reason.contains("no member peer connected yet"), "says what it waits for: {reason}");
    net.nodes[1].start().await.expect("restart");
    net.introduce_all().await.expect("addresses");
    wait_until("node0 ready", || async { readyz(&net.nodes[0]).await.0 == 200 }).await.expect("catches up");
    assert!(net.nodes[0].entry_status(&missed).is_some(), "ready means it holds what it missed");
    // Losing its peer later does not take a caught-up node out of service.
    net.nodes[1].stop().await;
    let (status, _, reason) = readyz(&net.nodes[0]).await;
    assert_eq!(status, 200, "{reason}");
    net.shutdown().await;

    let lone = TestNet::new(1).await.expect("testnet");
    let (status, ready, reason) = readyz(&lone.nodes[0]).await;
    assert_eq!((status, ready), (200, Some(true)), "{reason}");
    assert!(reason.contains("only member"), "{reason}");
    lone.shutdown().await;
}
