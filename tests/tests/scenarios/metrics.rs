//! `/metrics` as Prometheus scrapes it: strictly parseable OpenMetrics text, named by the
//! conventions, with counters that move when the node serves.

use hashmesh_tests::{TestNet, wait_until};
use serde_json::json;

fn md5(n: u32) -> String {
    format!("md5:{n:032x}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_node_serves_build_info_its_state_and_libp2p_families() {
    let net = TestNet::new(2).await.expect("testnet");
    let node = &net.nodes[0];
    let version = env!("CARGO_PKG_VERSION");
    let m = node.scrape().await;
    let build = [("version", version), ("federation", "testnet"), ("role", "member")];
    assert_eq!(m.value("hashmesh_build_info", &build), Some(1.0), "{m:#?}");
    assert_eq!(m.value("hashmesh_peers_connected", &[]), Some(1.0));
    assert_eq!(m.value("hashmesh_own_log_state", &[("state", "confirmed")]), Some(1.0));
    // The conventions: a counter family is named without `_total` (the parser checked that its
    // samples have it), and every histogram of ours carries its unit.
    for family in &m.families {
        assert!(!family.name.ends_with("_total"), "{}", family.name);
        if family.name.starts_with("hashmesh_") && family.kind == "histogram" {
            assert!(family.unit.as_deref().is_some_and(|u| family.name.ends_with(u)), "{family:?}");
        }
    }
    // libp2p's own families, from the swarm's and the protocols' events.
    assert!(m.sum("libp2p_swarm_connections_established_total") >= 1.0, "{m:#?}");
    for prefix in ["libp2p_swarm_", "libp2p_identify_", "libp2p_gossipsub_", "libp2p_bandwidth_"] {
        assert!(m.families.iter().any(|f| f.name.starts_with(prefix)), "no {prefix}* family");
    }
    assert_eq!(
        m.value("libp2p_gossipsub_topic_subscription_status", &[("hash", "hashmesh/testnet/records/1")]),
        Some(1.0),
        "subscribed to the records topic"
    );
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn match_requests_are_counted_by_answer_and_rpc_requests_by_route_and_status() {
    let net = TestNet::new(1).await.expect("testnet");
    let node = &net.nodes[0];
    node.submit(&[&md5(1)], "csam").await;
    let before = node.scrape().await;
    let answer = |a: &'static str| [("answer", a)];
    assert_eq!(before.value("hashmesh_match_requests_total", &answer("review")), Some(0.0));

    let ask = |hashes: Vec<String>| {
        node.call("POST", "/v1/match/hashes", Some(&node.matcher), Some(json!({ "hashes": hashes })))
    };
    // A lone member's entry stays pending: a hit asks for review.
    assert_eq!(ask(vec![md5(1), md5(2)]).await.status, 200);
    assert_eq!(ask(vec![md5(3)]).await.status, 200);
    assert_eq!(ask(vec![]).await.status, 422);
    assert_eq!(node.call("GET", "/v1/nowhere", Some(&node.matcher), None).await.status, 404);

    let m = node.scrape().await;
    assert_eq!(m.value("hashmesh_match_requests_total", &answer("review")), Some(1.0), "{m:#?}");
    assert_eq!(m.value("hashmesh_match_requests_total", &answer("miss")), Some(1.0));
    assert_eq!(m.value("hashmesh_match_requests_total", &answer("remove")), Some(0.0));
    assert_eq!(m.value("hashmesh_match_fingerprints_total", &[("kind", "md5")]), Some(3.0));
    assert_eq!(m.value("hashmesh_match_hits_total", &[("kind", "md5"), ("action", "review")]), Some(1.0));
    let route =
        |status: &'static str| [("method", "POST"), ("route", "/v1/match/hashes"), ("status", status)];
    assert_eq!(m.value("hashmesh_rpc_requests_total", &route("2xx")), Some(2.0));
    assert_eq!(m.value("hashmesh_rpc_requests_total", &route("4xx")), Some(1.0));
    // A path no route has is one series, whatever the path.
    let unmatched = [("method", "GET"), ("route", "unmatched"), ("status", "4xx")];
    assert_eq!(m.value("hashmesh_rpc_requests_total", &unmatched), Some(1.0));
    let timed = [("method", "POST"), ("route", "/v1/match/hashes")];
    assert_eq!(m.value("hashmesh_rpc_request_duration_seconds_count", &timed), Some(3.0));
    assert_eq!(
        m.value("hashmesh_rpc_request_duration_seconds_bucket", &[timed[0], timed[1], ("le", "+Inf")]),
        Some(3.0)
    );
    net.shutdown().await;
}

/// Member names are free text in the manifest; as a label value each must come out escaped,
/// or one odd name would make every scrape of the node fail to parse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_name_with_quotes_backslashes_and_a_newline_stays_one_label() {
    let odd = "o\"dd\\name\nline";
    let net = TestNet::named(&["plain", odd]).await.expect("testnet");
    let text = net.nodes[0].metrics().await;
    assert!(text.contains("member=\"o\\\"dd\\\\name\\nline\""), "{text}");
    let m = net.nodes[0].scrape().await;
    assert_eq!(m.value("hashmesh_peer_records_received_total", &[("member", odd)]), Some(0.0), "{m:#?}");
    assert_eq!(m.value("hashmesh_peer_rejects_total", &[("member", odd)]), Some(0.0));
    net.shutdown().await;
}

/// A follower has no swarm: it serves the node's own families and none of libp2p's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_serves_metrics_without_libp2p_families() {
    let net = TestNet::new(1).await.expect("testnet");
    net.nodes[0].submit(&[&md5(1)], "csam").await;
    let follower = net.follower(0).await.expect("follower");
    wait_until("the follower to hold the entry", || async {
        follower.scrape().await.value("hashmesh_records", &[]) == Some(1.0)
    })
    .await
    .expect("replicated");
    let m = follower.scrape().await;
    assert_eq!(m.value("hashmesh_build_info", &[("role", "follower")]), Some(1.0), "{m:#?}");
    assert_eq!(m.value("hashmesh_peers_connected", &[]), Some(1.0), "its member node");
    assert!(m.value("hashmesh_peer_records_received_total", &[]).is_some_and(|n| n >= 1.0), "{m:#?}");
    assert!(m.families.iter().all(|f| !f.name.starts_with("libp2p_")), "{m:#?}");
    net.shutdown().await;
}
