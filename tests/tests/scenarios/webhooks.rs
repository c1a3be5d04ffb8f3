//! Webhooks: a receiver that is down while matches happen, the node restarts, and another
//! member votes, still gets every event once, in order, signed.

use std::time::Duration;

use hashmesh_node::actioner::signature;
use hashmesh_node::config::{EventKind, WebhookConfig};
use hashmesh_tests::receiver::Receiver;
use hashmesh_tests::{TestNet, wait_until};
use serde_json::{Value, json};

const SECRET: &str = "a webhook secret of some length";
const MD5: [&str; 3] = [
    "md5:0123456789abcdef0123456789abcdef",
    "md5:fedcba9876543210fedcba9876543210",
    "md5:00000000000000000000000000000001",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_receiver_that_was_down_gets_every_event_once_in_order() {
    let mut net = TestNet::new(2).await.expect("federation");
    let mut receiver = Receiver::down().expect("a free port");
    net.nodes[0]
        .configure(|c| {
            c.webhooks.push(WebhookConfig {
                url: receiver.url(),
                secret: SECRET.into(),
                events: vec![EventKind::Match, EventKind::StatusChanged],
                retry_max: Duration::from_millis(500),
            });
        })
        .expect("configured");
    net.nodes[0].stop().await;
    net.nodes[0].start().await.expect("restarted with the webhook");
    net.introduce_all().await.expect("introduced");
    net.wait_writable().await.expect("writable");

    let (a, b) = (&net.nodes[0], &net.nodes[1]);
    let kept = a.submit(&[MD5[0]], "csam").await;
    let disputed = a.submit(&[MD5[1]], "drugs").await;
    for id in [&kept, &disputed] {
        wait_until("b holds a's entries", || async { b.entry_status(id).is_some() })
            .await
            .expect("replicated");
    }
    // Three matches while the receiver is down: two hits and a miss (no event).
    let reply = a.call("POST", "/v1/match/hashes", Some(&a.matcher), Some(json!({ "hashes": MD5 }))).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    wait_until("deliveries have failed", || async {
        let hooks = a.call("GET", "/v1/webhooks", Some(&a.admin), None).await;
        hooks.body["webhooks"][0]["failures"].as_u64() >= Some(2)
    })
    .await
    .expect("retrying");
    let hooks = a.call("GET", "/v1/webhooks", Some(&a.admin), None).await;
    let hook = &hooks.body["webhooks"][0];
    assert_eq!((hook["pending"].as_u64(), hook["delivered_through"].as_u64()), (Some(2), Some(0)), "{hook}");
    assert!(hook["last_error"].as_str().is_some_and(|e| e.contains("reach")), "{hook}");
    assert_eq!(a.call("GET", "/v1/webhooks", Some(&a.matcher), None).await.status, 403);

    // The node restarts with the events still undelivered; then the other member votes.
    net.nodes[0].stop().await;
    net.nodes[0].start().await.expect("restarted");
    net.introduce_all().await.expect("introduced");
    net.wait_connected().await.expect("connected");
    let (a, b) = (&net.nodes[0], &net.nodes[1]);
    assert_eq!(b.vote(&kept, "confirm").await.status, 201);
    assert_eq!(b.vote(&disputed, "dispute").await.status, 201);
    wait_until("a sees both votes", || async {
        a.entry_status(&kept).map(|s| s.name()) == Some("verified")
            && a.entry_status(&disputed).map(|s| s.name()) == Some("rejected")
    })
    .await
    .unwrap_or_else(|e| panic!("{e}: {:?} {:?}", a.entry_status(&kept), a.entry_status(&disputed)));
    let queued = wait_until("a queued the status changes", || async {
        let hooks = a.call("GET", "/v1/webhooks", Some(&a.admin), None).await;
        hooks.body["webhooks"][0]["pending"].as_u64() == Some(4)
    })
    .await;
    if let Err(e) = queued {
        panic!("{e}: {}", a.call("GET", "/v1/webhooks", Some(&a.admin), None).await.body);
    }

    receiver.start().expect("the receiver comes back");
    wait_until("every event delivered", || async { receiver.taken().len() >= 4 }).await.expect("delivered");
    wait_until("the node noted the deliveries", || async {
        let hooks = a.call("GET", "/v1/webhooks", Some(&a.admin), None).await;
        hooks.body["webhooks"][0]["pending"].as_u64() == Some(0)
    })
    .await
    .expect("noted");

    let taken = receiver.taken();
    assert_eq!(taken.len(), 4, "each event exactly once");
    let events: Vec<Value> = taken
        .iter()
        .map(|r| {
            assert_eq!(r.header("x-hashmesh-signature"), Some(signature(SECRET, &r.body).as_str()), "signed");
            serde_json::from_slice(&r.body).expect("JSON")
        })
        .collect();
    let ids: Vec<u64> = events.iter().filter_map(|e| e["id"].as_u64()).collect();
    assert_eq!(ids, vec![1, 2, 3, 4], "in order, none twice: {events:?}");
    for (event, received) in events.iter().zip(&taken) {
        assert_eq!(received.header("x-hashmesh-event"), event["type"].as_str());
        assert_eq!(event["member"].as_str(), Some(a.member.to_string().as_str()));
    }
    // The two matches, then the status changes each entry went through.
    assert_eq!((events[0]["type"].as_str(), events[0]["hash"].as_str()), (Some("match"), Some(MD5[0])));
    assert_eq!(events[0]["hits"][0]["entry"].as_str(), Some(kept.as_str()));
    assert_eq!(events[0]["action"].as_str(), Some("review"));
    assert_eq!((events[1]["type"].as_str(), events[1]["hash"].as_str()), (Some("match"), Some(MD5[1])));
    let changes: Vec<(&str, &str, &str, &str)> = events[2..]
        .iter()
        .map(|e| {
            (
                e["entry"].as_str().unwrap_or(""),
                e["from"].as_str().unwrap_or(""),
                e["to"].as_str().unwrap_or(""),
                e["action"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let mut sorted = changes.clone();
    sorted.sort();
    let mut want = vec![
        (kept.as_str(), "pending", "verified", "remove"),
        (disputed.as_str(), "pending", "rejected", "none"),
    ];
    want.sort();
    assert_eq!(sorted, want, "{events:?}");
    assert!(events[2..].iter().all(|e| e["type"] == "status_changed"));
    net.shutdown().await;
}
