//! The admins' side: the review queue, disputes resolved alike on every node (also across a
//! healed partition), an entry's signed history, and a proof of its status checked offline.

use hashmesh_node::audit::ProofBundle;
use hashmesh_protocol::Status;
use hashmesh_tests::{Reply, TestNet, TestNode, wait_until};
use serde_json::{Value, json};

fn md5(n: u32) -> String {
    format!("md5:{n:032x}")
}

async fn vote(node: &TestNode, entry: &str, verdict: &str, reason: Option<&str>) -> Reply {
    let body = json!({ "verdict": verdict, "reason": reason });
    node.call("POST", &format!("/v1/entries/{entry}/votes"), Some(&node.admin), Some(body)).await
}

async fn queue(node: &TestNode) -> Value {
    let reply = node.call("GET", "/v1/queue", Some(&node.admin), None).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body
}

fn queued(q: &Value) -> Vec<String> {
    q["entries"]
        .as_array()
        .map_or_else(Vec::new, |a| a.iter().filter_map(|e| e["id"].as_str().map(str::to_owned)).collect())
}

/// Waits until every node shows `entry` in `status`.
async fn wait_status(net: &TestNet, which: &[usize], entry: &str, status: Status) {
    for i in which {
        let node = &net.nodes[*i];
        wait_until(&format!("{} to show {entry} {}", node.name, status.name()), || async {
            node.entry_status(entry) == Some(status)
        })
        .await
        .expect("status everywhere");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_holds_what_awaits_this_members_vote_with_every_reason() {
    let net = TestNet::new(5).await.expect("testnet");
    let (a, b, c) = (&net.nodes[0], &net.nodes[1], &net.nodes[2]);
    let older = a.submit(&[&md5(1)], "csam").await;
    let newer = a.submit(&[&md5(2)], "drugs").await;
    let own = b.submit(&[&md5(3)], "csam").await;
    net.wait_converged(&[0, 1, 2, 3, 4], 3).await.expect("replicated");
    // b's queue: a's two entries, oldest first, not b's own.
    let q = queue(b).await;
    assert_eq!(queued(&q), [older.clone(), newer.clone()], "{q}");
    assert_eq!(q["total"], 2);
    assert!(!queued(&queue(a).await).contains(&older), "an author does not review its own entries");

    // A dispute needs a reason; with one, it counts and the reason travels.
    let bare = vote(b, &older, "dispute", None).await;
    assert_eq!(bare.status, 422, "{bare:?}");
    assert!(bare.error().contains("needs a reason"), "{}", bare.error());
    assert_eq!(vote(b, &older, "dispute", Some("  ")).await.status, 422, "a blank reason is none");
    assert_eq!(vote(b, &older, "dispute", Some("not csam: a medical textbook")).await.status, 201);
    assert!(!queued(&queue(b).await).contains(&older), "voted: no longer in b's queue");
    wait_status(&net, &[0, 1, 2, 3, 4], &older, Status::Disputed).await;
    let q = queue(c).await;
    let item = q["entries"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["id"] == older.as_str()))
        .unwrap_or_else(|| panic!("the disputed entry awaits c's vote: {q}"));
    assert_eq!((item["confirms"].as_u64(), item["disputes"].as_u64()), (Some(0), Some(1)));
    assert_eq!(item["votes"][0]["verdict"], "dispute");
    assert_eq!(item["votes"][0]["reason"], "not csam: a medical textbook");
    assert_eq!(item["votes"][0]["reviewer"], "admin");
    assert!(item["votes"][0]["timestamp"].as_u64().is_some());
    // The entry shows every vote's reason too.
    let shown = c.call("GET", &format!("/v1/entries/{older}"), Some(&c.matcher), None).await;
    assert_eq!(shown.body["votes"][0]["reason"], "not csam: a medical textbook", "{shown:?}");

    // b changes its mind: its latest vote counts, on every node.
    assert_eq!(vote(b, &older, "confirm", None).await.status, 201);
    assert_eq!(vote(c, &older, "confirm", None).await.status, 201);
    wait_status(&net, &[0, 1, 2, 3, 4], &older, Status::Verified).await;
    assert!(!queued(&queue(c).await).contains(&older));
    assert!(!queued(&queue(&net.nodes[3]).await).contains(&older), "verified: nothing to review");
    assert!(queued(&queue(c).await).contains(&own));
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disputes_resolve_identically_on_every_node_across_a_healed_partition() {
    let net = TestNet::new(5).await.expect("testnet");
    let settled = net.nodes[0].submit(&[&md5(10)], "csam").await;
    let contested = net.nodes[0].submit(&[&md5(11)], "csam").await;
    net.wait_converged(&[0, 1, 2, 3, 4], 2).await.expect("replicated");
    // pending → verified with the configured confirmations (2 of 5 members by default).
    assert_eq!(vote(&net.nodes[1], &settled, "confirm", None).await.status, 201);
    wait_status(&net, &[0, 1, 2, 3, 4], &settled, Status::Pending).await;
    assert_eq!(vote(&net.nodes[2], &settled, "confirm", None).await.status, 201);
    wait_status(&net, &[0, 1, 2, 3, 4], &settled, Status::Verified).await;

    // Split {0,1,2} from {3,4}; votes on both sides.
    for a in 0..3 {
        for b in 3..5 {
            net.cut(a, b).await;
        }
    }
    assert_eq!(vote(&net.nodes[1], &contested, "dispute", Some("wrong category")).await.status, 201);
    assert_eq!(vote(&net.nodes[3], &contested, "confirm", None).await.status, 201);
    assert_eq!(vote(&net.nodes[4], &contested, "confirm", None).await.status, 201);
    // Each side sees only its own votes: disputed on one, verified (2 confirms) on the other.
    wait_status(&net, &[0, 1, 2], &contested, Status::Disputed).await;
    wait_status(&net, &[3, 4], &contested, Status::Verified).await;
    assert_eq!(vote(&net.nodes[2], &contested, "dispute", Some("not illegal")).await.status, 201);
    for a in 0..3 {
        for b in 3..5 {
            net.restore(a, b).await;
        }
    }
    net.wait_connected().await.expect("healed");
    // Quorum 3 of the 4 voters reached: 2 confirms against 2 disputes is not a majority.
    wait_status(&net, &[0, 1, 2, 3, 4], &contested, Status::Rejected).await;
    let records = net.nodes[0].status().await.records;
    net.wait_converged(&[0, 1, 2, 3, 4], records).await.expect("identical replicas");
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_lists_every_signed_record_and_an_exported_proof_verifies_offline() {
    let net = TestNet::new(3).await.expect("testnet");
    let (a, b, c) = (&net.nodes[0], &net.nodes[1], &net.nodes[2]);
    let id = a.submit(&[&md5(20)], "csam").await;
    net.wait_converged(&[0, 1, 2], 1).await.expect("replicated");
    assert_eq!(vote(b, &id, "dispute", Some("a false positive")).await.status, 201);
    // History is in the order the records were signed: let the clock move past b's vote.
    let signed = hashmesh_node::node::now_ms();
    wait_until("the clock to tick", || async { hashmesh_node::node::now_ms() > signed }).await.expect("time");
    net.wait_converged(&[0, 1, 2], 2).await.expect("replicated");
    assert_eq!(vote(c, &id, "confirm", None).await.status, 201);
    net.wait_converged(&[0, 1, 2], 3).await.expect("replicated");
    wait_status(&net, &[0, 1, 2], &id, Status::Rejected).await;

    let h = c.call("GET", &format!("/v1/entries/{id}/history"), Some(&c.matcher), None).await;
    assert_eq!(h.status, 200, "{h:?}");
    let events = h.body["events"].as_array().expect("events");
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e["kind"].as_str().unwrap_or(""), e["status"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(kinds, [("entry", "pending"), ("vote", "disputed"), ("vote", "rejected")], "{}", h.body);
    assert_eq!(events[1]["reason"], "a false positive");
    assert_eq!(events[1]["author_name"], b.name.as_str());
    assert!(events.iter().all(|e| e["signature"].as_str().is_some_and(|s| s.len() == 128)));

    let exported = c.call("GET", &format!("/v1/entries/{id}/proof"), Some(&c.matcher), None).await;
    assert_eq!(exported.status, 200, "{exported:?}");
    let bundle: ProofBundle = serde_json::from_value(exported.body).expect("a proof bundle");
    let verified = bundle.verify(Some(&net.manifest)).expect("verifies offline");
    assert_eq!((verified.status, verified.events, verified.epoch), (Status::Rejected, 2, 1));
    // Tampering with any part fails, saying what.
    let mut dropped = bundle.clone();
    dropped.events.pop();
    assert!(dropped.verify(None).is_err_and(|e| e.to_string().contains("claims rejected")));
    let mut flipped = bundle.clone();
    let last = flipped.events[0].len() - 4;
    flipped.events[0].replace_range(last.., "0000");
    assert!(flipped.verify(None).is_err_and(|e| e.to_string().contains("event 0")));
    let mut other = net.manifest.clone();
    other.name = "elsewhere".into();
    assert!(bundle.verify(Some(&other)).is_err_and(|e| e.to_string().contains("genesis")));
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiry_in_the_past_is_refused_at_submit() {
    let net = TestNet::new(1).await.expect("testnet");
    let n = &net.nodes[0];
    let body = json!({ "fingerprints": [md5(30)], "category": "csam", "expires_at": 1_000 });
    let reply = n.call("POST", "/v1/entries", Some(&n.submitter), Some(body)).await;
    assert_eq!(reply.status, 422, "{reply:?}");
    assert!(reply.error().contains("not in the future"), "{}", reply.error());
    assert_eq!(n.status().await.records, 0, "nothing written");
    let later = hashmesh_node::node::now_ms() + 3_600_000;
    let body = json!({ "fingerprints": [md5(30)], "category": "csam", "expires_at": later });
    assert_eq!(n.call("POST", "/v1/entries", Some(&n.submitter), Some(body)).await.status, 201);
    net.shutdown().await;
}
