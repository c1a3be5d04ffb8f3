//! Federation statistics: each member's matches and removals, signed as daily counters and
//! summed by day and category at every node.

use hashmesh_tests::{TestNet, TestNode, wait_until};
use serde_json::{Value, json};

const X: &str = "md5:0123456789abcdef0123456789abcdef";
const Y: &str = "md5:fedcba9876543210fedcba9876543210";

async fn lookup(node: &TestNode, hashes: &[&str]) {
    let reply =
        node.call("POST", "/v1/match/hashes", Some(&node.matcher), Some(json!({ "hashes": hashes }))).await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

async fn publish(node: &TestNode) -> usize {
    let reply = node.call("POST", "/v1/stats/publish", Some(&node.admin), None).await;
    assert_eq!(reply.status, 201, "{reply:?}");
    reply.body["records"].as_array().map_or(0, Vec::len)
}

/// (category, matches, removals) of today's sums at `node`.
async fn today(node: &TestNode) -> (u64, Vec<(String, u64, u64)>) {
    let reply = node.call("GET", "/v1/stats", Some(&node.matcher), None).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let day = reply.body["days"].as_array().and_then(|d| d.last()).cloned().unwrap_or(Value::Null);
    let sums = day["categories"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    (
                        c["category"].as_str().unwrap_or("").to_owned(),
                        c["matches"].as_u64().unwrap_or(0),
                        c["removals"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    (day["members"].as_u64().unwrap_or(0), sums)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_counters_are_signed_and_summed_by_day_and_category() {
    let net = TestNet::new(2).await.expect("federation");
    let (a, b) = (&net.nodes[0], &net.nodes[1]);
    let x = a.submit(&[X], "csam").await;
    let y = a.submit(&[Y], "drugs").await;
    wait_until("b holds a's entries", || async {
        b.entry_status(&x).is_some() && b.entry_status(&y).is_some()
    })
    .await
    .expect("replicated");
    assert_eq!(b.vote(&x, "confirm").await.status, 201);
    wait_until("a sees x verified", || async { a.entry_status(&x).map(|s| s.name()) == Some("verified") })
        .await
        .expect("verified");

    // a: x alone (removed), then x and y in one request: each entry a request hits counts once.
    lookup(a, &[X]).await;
    lookup(a, &[X, Y, X]).await;
    // b: y (review, not removed), and a miss, which counts nothing.
    lookup(b, &[Y, "md5:00000000000000000000000000000000"]).await;
    assert_eq!(publish(a).await, 1);
    assert_eq!(publish(a).await, 0, "unchanged counters are not published again");
    assert_eq!(publish(b).await, 1);
    // A later match replaces a's counters of the day, it does not add a second record's worth.
    lookup(a, &[X]).await;
    assert_eq!(publish(a).await, 1);

    let want = (2, vec![("csam".to_owned(), 3, 3), ("drugs".to_owned(), 2, 0)]);
    for node in [a, b] {
        wait_until("both members' counters summed", || async { today(node).await == want })
            .await
            .expect("summed");
    }
    let reply = b.call("GET", "/v1/stats", Some(&b.matcher), None).await;
    assert_eq!(
        reply.body["totals"],
        json!([
            { "category": "csam", "matches": 3, "removals": 3 },
            { "category": "drugs", "matches": 2, "removals": 0 },
        ])
    );

    // Days that name no counters, and bad days.
    let reply = b.call("GET", "/v1/stats?from=2001-01-01&to=2001-01-31", Some(&b.matcher), None).await;
    assert_eq!((reply.status, &reply.body["days"]), (200, &json!([])), "{reply:?}");
    for bad in ["from=2026-13-01", "from=yesterday", "from=2030-01-02&to=2030-01-01"] {
        let reply = b.call("GET", &format!("/v1/stats?{bad}"), Some(&b.matcher), None).await;
        assert_eq!(reply.status, 422, "{bad}: {reply:?}");
        assert!(!reply.error().is_empty());
    }
    assert_eq!(b.call("POST", "/v1/stats/publish", Some(&b.matcher), None).await.status, 403);
    net.shutdown().await;
}
