//! Followers (`hashmesh run --follow`): read-only replicas of a member's node that serve
//! matching, pulled over the member node's RPC and verified record by record.

use hashmesh_tests::rogue_upstream::RogueUpstream;
use hashmesh_tests::{TestNet, TestNode, start_follower, wait_until};
use serde_json::{Value, json};

fn md5(n: u32) -> String {
    format!("md5:{n:032x}")
}

async fn hits(node: &TestNode, hashes: &[String]) -> Vec<Value> {
    let reply =
        node.call("POST", "/v1/match/hashes", Some(&node.matcher), Some(json!({ "hashes": hashes }))).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["results"]
        .as_array()
        .expect("results")
        .iter()
        .flat_map(|r| r["hits"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// A follower of node0 gets both members' logs through node0, is ready once it holds what
/// node0 holds, matches with the statuses node0 derives, gets later records as they come,
/// and refuses every write with where to send it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_replicates_its_member_node_serves_matching_and_refuses_writes() {
    let net = TestNet::new(2).await.expect("testnet");
    let (member, other) = (&net.nodes[0], &net.nodes[1]);
    let ours = member.submit(&[&md5(1)], "csam").await;
    let theirs = other.submit(&[&md5(2)], "csam").await;
    net.wait_converged(&[0, 1], 2).await.expect("members converge");
    assert_eq!(member.vote(&theirs, "confirm").await.status, 201);
    net.wait_converged(&[0, 1], 3).await.expect("members converge");

    let follower = net.follower(0).await.expect("follower starts");
    let want = member.status().await.digest;
    wait_until("the follower to hold what its member node holds", || async {
        follower.status().await.digest == want
    })
    .await
    .expect("follower caught up");
    let ready = follower.call("GET", "/readyz", None, None).await;
    assert_eq!((ready.status, ready.body["ready"].as_bool()), (200, Some(true)), "{ready:?}");
    assert_eq!(follower.status().await.follows, Some(member.rpc()), "status says whom it follows");
    assert_eq!(member.status().await.follows, None);

    let found = hits(&follower, &[md5(1), md5(2)]).await;
    assert_eq!(found.len(), 2, "{found:?}");
    for (hit, id) in found.iter().zip([&ours, &theirs]) {
        assert_eq!(hit["entry"], json!(id));
        let at_member = member.entry_status(id).expect("member knows it");
        assert_eq!(follower.entry_status(id), Some(at_member), "the follower derives node0's status");
    }

    // Written after the follower caught up, at the other member: node0 gossips it, the
    // follower's long poll brings it.
    let later = other.submit(&[&md5(3)], "csam").await;
    wait_until("a later entry to be matchable at the follower", || async {
        hits(&follower, &[md5(3)]).await.first().is_some_and(|h| h["entry"] == json!(later))
    })
    .await
    .expect("later records reach the follower");

    let refused = [
        follower.try_submit(&md5(4)).await,
        follower.vote(&theirs, "dispute").await,
        follower
            .call_raw(
                "POST",
                "/v1/import?format=plain&category=csam",
                Some(&follower.admin),
                Some(md5(5).into_bytes()),
                None,
            )
            .await,
    ];
    for reply in refused {
        assert_eq!(reply.status, 403, "{reply:?}");
        assert!(reply.error().contains(&format!("read-only follower of {}", member.rpc())), "{reply:?}");
    }
    assert!(hits(&follower, &[md5(4), md5(5)]).await.is_empty(), "nothing was written");

    let peers = follower.call("GET", "/v1/peers", Some(&follower.matcher), None).await;
    let peers = peers.body["peers"].as_array().expect("peers").clone();
    assert_eq!(peers.len(), 1, "{peers:?}");
    assert_eq!(peers[0]["peer_id"], json!(member.rpc()));
    assert!(peers[0]["records_received"].as_u64() >= Some(4), "{peers:?}");
}

/// A member node that sends its followers records that fail verification (a flipped byte)
/// gets nothing stored: the follower checks every signature, counts the fault and stays not
/// ready, asking again later rather than giving up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_stores_nothing_that_fails_verification() {
    let net = TestNet::new(2).await.expect("testnet");
    for n in 0..3 {
        net.nodes[1].submit(&[&md5(n)], "csam").await;
    }
    let author = net.nodes[1].member;
    let tampered: Vec<Vec<u8>> = net.nodes[1]
        .handle()
        .records(&author, 1, 1000)
        .expect("log")
        .iter()
        .map(|r| {
            let mut bytes = r.bytes().to_vec();
            bytes[80] ^= 0x01;
            bytes
        })
        .collect();
    let rogue = RogueUpstream::start(author, tampered).expect("rogue");
    let follower = start_follower(&rogue.url(), "hm_any", &net.manifest).await.expect("follower starts");
    wait_until("the follower to count the bad answers, twice", || async {
        let peers = follower.handle().peers().await;
        peers.first().is_some_and(|p| p.rejects >= 2) && rogue.ranges_asked() >= 2
    })
    .await
    .expect("bad answers counted, and asked again later");
    assert_eq!(follower.status().await.records, 0, "nothing stored");
    let ready = follower.call("GET", "/readyz", None, None).await;
    assert_eq!(ready.status, 503, "{ready:?}");
}

/// Matches served by a follower count in its member's published statistics: the follower
/// reports its counters to its member node, which publishes them with its own. A report that
/// comes again (a retry) adds nothing; a bad report is refused with the rule it breaks; a
/// follower takes no reports itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followers_matches_are_published_in_its_members_counters() {
    let net = TestNet::new(2).await.expect("testnet");
    let (member, other) = (&net.nodes[0], &net.nodes[1]);
    member.submit(&[&md5(1)], "csam").await;
    let follower = net.follower(0).await.expect("follower starts");
    let want = member.status().await.digest;
    wait_until("the follower to catch up", || async { follower.status().await.digest == want })
        .await
        .expect("follower caught up");
    for _ in 0..2 {
        assert_eq!(hits(&follower, &[md5(1)]).await.len(), 1);
    }
    assert!(member.handle().report_counters().await.is_err(), "a member node publishes, it does not report");
    assert_eq!(follower.handle().report_counters().await.expect("reported"), 1, "today's counters");
    assert_eq!(
        follower.handle().report_counters().await.expect("nothing new"),
        0,
        "unchanged: not sent again"
    );
    member.handle().publish_stats().await.expect("published");
    wait_until("node1 to sum node0's published counters", || async { matches(other).await == 2 })
        .await
        .expect("the follower's two matches are in node0's counters");

    // The same report twice, as a retry after a lost answer would send it: counted once.
    let today = hashmesh_node::actioner::day_of(hashmesh_node::node::now_ms());
    let report = json!({ "follower": "f-1", "days": [{ "day": today, "counts": [{ "category": "csam", "matches": 5, "removals": 1 }] }] });
    for _ in 0..2 {
        let reply =
            member.call("POST", "/v1/stats/followers", Some(&member.matcher), Some(report.clone())).await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    member.handle().publish_stats().await.expect("published");
    wait_until("node1 to see the report once", || async { matches(other).await == 7 })
        .await
        .expect("2 + 5, not 2 + 10");

    let bad = json!({ "follower": "f-1", "days": [{ "day": today, "counts": [{ "category": "csam", "matches": 1, "removals": 2 }] }] });
    let reply = member.call("POST", "/v1/stats/followers", Some(&member.matcher), Some(bad)).await;
    assert_eq!(reply.status, 422, "{reply:?}");
    let reply = follower.call("POST", "/v1/stats/followers", Some(&follower.matcher), Some(report)).await;
    assert_eq!(reply.status, 403, "{reply:?}");
    assert!(reply.error().contains("report their counters to their member node"), "{reply:?}");
}

async fn matches(node: &TestNode) -> u64 {
    node.handle().stats(&Default::default()).expect("stats").totals.iter().map(|c| c.matches).sum()
}

/// Posts `body` to `/v1/sync` at `rpc`: status and raw body.
fn sync_call(rpc: &str, query: &str, token: Option<&str>, content_type: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().new_agent();
    let mut request = agent.post(format!("{rpc}/v1/sync{query}")).header("Content-Type", content_type);
    if let Some(t) = token {
        request = request.header("Authorization", format!("Bearer {t}"));
    }
    let mut response = request.send(body).expect("RPC reachable");
    (response.status().as_u16(), response.body_mut().read_to_vec().unwrap_or_default())
}

/// `POST /v1/sync`, what followers call: a heads request with `after` (the clock the caller
/// saw) is answered once the clock moves on, with the new clock; wrong requests get a 4xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sync_endpoint_long_polls_heads_and_refuses_bad_requests() {
    use hashmesh_node::sync::{SyncRequest, SyncResponse, digest};
    let net = TestNet::new(1).await.expect("testnet");
    let node = &net.nodes[0];
    let heads = cbor4ii::serde::to_vec(Vec::new(), &SyncRequest::Heads).expect("encodes");
    let seen = node.status().await.digest;
    let (rpc, token, body) = (node.rpc(), node.matcher.clone(), heads.clone());
    let query = format!("?after={seen}");
    let poll =
        tokio::task::spawn_blocking(move || sync_call(&rpc, &query, Some(&token), "application/cbor", &body));
    node.submit(&[&md5(9)], "csam").await;
    let (status, bytes) = poll.await.expect("poll");
    assert_eq!(status, 200);
    let Ok(SyncResponse::Heads { clock, .. }) = cbor4ii::serde::from_slice::<SyncResponse>(&bytes) else {
        panic!("not a heads answer: {bytes:?}");
    };
    assert_ne!(hex::encode(digest(&clock)), seen, "answered with the clock after the write");
    assert_eq!(clock.get(&node.member).map(|c| c.seq), Some(1));

    let rpc = node.rpc();
    let token = node.matcher.clone();
    let calls = tokio::task::spawn_blocking(move || {
        [
            sync_call(&rpc, "", None, "application/cbor", &heads).0,
            sync_call(&rpc, "", Some(&token), "application/json", b"\"Heads\"").0,
            sync_call(&rpc, "", Some(&token), "application/cbor", b"\xff\x00garbage").0,
            sync_call(&rpc, "?after=xyz", Some(&token), "application/cbor", &heads).0,
        ]
    })
    .await
    .expect("calls");
    assert_eq!(calls, [401, 415, 400, 400], "no token, not CBOR, not a request, not a digest");
}
