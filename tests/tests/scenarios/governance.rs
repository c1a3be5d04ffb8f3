//! Membership epochs on a running federation: members added and removed by majority approval,
//! with no restart and no central authority, and bad governance requests refused.

use hashmesh_tests::{Reply, TestNet, TestNode, wait_until};
use serde_json::{Value, json};

fn md5(n: u32) -> String {
    format!("md5:{n:032x}")
}

async fn membership(node: &TestNode) -> Value {
    let reply = node.call("GET", "/v1/membership", Some(&node.matcher), None).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body
}

async fn propose(node: &TestNode, body: Value) -> Reply {
    node.call("POST", "/v1/membership/proposals", Some(&node.admin), Some(body)).await
}

async fn approve(node: &TestNode, id: &str) -> Reply {
    node.call("POST", &format!("/v1/membership/proposals/{id}/approve"), Some(&node.admin), None).await
}

/// Waits until every node in `which` has epoch `epoch` in force, with the same manifest digest.
async fn wait_epoch(net: &TestNet, which: &[usize], epoch: u64) -> String {
    let mut digests = Vec::new();
    for i in which {
        let node = &net.nodes[*i];
        wait_until(&format!("{} to reach epoch {epoch}", node.name), || async {
            membership(node).await["epoch"] == epoch
        })
        .await
        .expect("epoch took effect");
        digests.push(membership(node).await["digest"].as_str().expect("digest").to_owned());
    }
    assert!(digests.windows(2).all(|w| w[0] == w[1]), "every node derives the same manifest: {digests:?}");
    digests.swap_remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sixth_member_is_added_by_majority_approval_without_restarts_and_holds_an_identical_replica() {
    let mut net = TestNet::new(5).await.expect("testnet");
    let before = net.nodes[0].submit(&[&md5(1)], "csam").await;
    let (six, info) = net.candidate(5).await.expect("candidate node");
    // Not yet a member: it may not write, propose or approve.
    let refused = net.nodes[six].try_submit(&md5(2)).await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert!(refused.error().contains("not a member"), "{}", refused.error());

    let proposed = propose(&net.nodes[0], json!({ "epoch": 2, "add": [info] })).await;
    assert_eq!(proposed.status, 201, "{proposed:?}");
    let id = proposed.body["proposal"].as_str().expect("proposal id").to_owned();
    // The proposal reaches the others, who see it pending with one approval of the three needed.
    wait_until("node1 to see the proposal", || async {
        membership(&net.nodes[1]).await["pending"][0]["id"] == id.as_str()
    })
    .await
    .expect("proposal replicated");
    let m = membership(&net.nodes[1]).await;
    assert_eq!((m["epoch"].as_u64(), m["majority"].as_u64()), (Some(1), Some(3)));
    assert_eq!(m["pending"][0]["approvals"].as_array().map(Vec::len), Some(1));

    let by_candidate = approve(&net.nodes[six], &id).await;
    assert!(
        by_candidate.status == 403 || by_candidate.status == 404,
        "a non-member cannot approve: {by_candidate:?}"
    );
    assert_eq!(approve(&net.nodes[1], &id).await.status, 201);
    // Two of five: nothing changes yet.
    wait_until("node2 to see two approvals", || async {
        membership(&net.nodes[2]).await["pending"][0]["approvals"].as_array().map(Vec::len) == Some(2)
    })
    .await
    .expect("approval replicated");
    assert_eq!(membership(&net.nodes[2]).await["epoch"], 1);
    assert_eq!(approve(&net.nodes[2], &id).await.status, 201);

    wait_epoch(&net, &[0, 1, 2, 3, 4], 2).await;
    let m = membership(&net.nodes[3]).await;
    assert_eq!(m["history"][1]["proposal"], id.as_str());
    let metrics = net.nodes[3].scrape().await;
    assert_eq!(metrics.value("hashmesh_epoch", &[]), Some(2.0), "{metrics:#?}");
    assert_eq!(metrics.value("hashmesh_pending_proposals", &[]), Some(0.0), "{metrics:#?}");
    assert!(m["history"][1]["approvals"].as_array().is_some_and(|a| a.len() >= 3));
    // The members now let the new node in (told where it listens); it catches up by sync.
    net.introduce_all().await.expect("addresses");
    let digest = wait_epoch(&net, &[0, 1, 2, 3, 4, six], 2).await;
    // Peers compare epoch and manifest digest when they exchange clocks.
    net.nodes[0].handle().net().sync_now().await;
    wait_until("node0 to see every peer on epoch 2 with the same manifest", || async {
        let peers = net.nodes[0].handle().peers().await;
        peers.len() == 5
            && peers
                .iter()
                .all(|p| p.epoch == Some(2) && p.manifest_digest.as_deref() == Some(digest.as_str()))
    })
    .await
    .expect("epochs compared");
    net.wait_writable().await.expect("the new member's own log is confirmed");
    let records = net.nodes[0].status().await.records;
    net.wait_converged(&[0, 1, 2, 3, 4, six], records).await.expect("identical replica on the new node");
    assert!(net.nodes[six].entry_status(&before).is_some(), "history reached the new member");
    // It writes, and its entry reaches everyone; its vote counts.
    let its = net.nodes[six].submit(&[&md5(3)], "csam").await;
    assert_eq!(net.nodes[six].vote(&before, "confirm").await.status, 201);
    net.wait_converged(&[0, 1, 2, 3, 4, six], records + 2).await.expect("its records everywhere");
    for node in &net.nodes {
        assert!(node.entry_status(&its).is_some(), "{} holds the new member's entry", node.name);
    }
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_is_cut_off_and_its_later_records_are_refused_everywhere_at_the_same_seq() {
    let net = TestNet::new(5).await.expect("testnet");
    let gone = &net.nodes[4];
    let kept = gone.submit(&[&md5(10)], "csam").await;
    let proposed = propose(
        &net.nodes[0],
        json!({ "remove": [{ "key": gone.member.to_string(), "last_seq": 1, "votes_count": false }] }),
    )
    .await;
    assert_eq!(proposed.status, 201, "{proposed:?}");
    let id = proposed.body["proposal"].as_str().expect("id").to_owned();
    // Before the epoch takes effect, the member writes on: this record will not survive it.
    let late = gone.submit(&[&md5(11)], "csam").await;
    wait_until("node1 to see the proposal and the late record", || async {
        membership(&net.nodes[1]).await["pending"][0]["id"] == id.as_str()
            && net.nodes[1].entry_status(&late).is_some()
    })
    .await
    .expect("replicated");
    assert_eq!(approve(&net.nodes[1], &id).await.status, 201);
    assert_eq!(approve(&net.nodes[2], &id).await.status, 201);
    wait_epoch(&net, &[0, 1, 2, 3], 2).await;

    let gone_peer = gone.peer_id().to_string();
    for node in &net.nodes[..4] {
        wait_until(
            &format!("{} to cut the removed member's log at seq 1 and drop it", node.name),
            || async {
                let status = node.status().await;
                let cut = status.logs.iter().any(|l| l.author == gone.member && l.seq == 1);
                let peers = node.handle().peers().await;
                cut && peers.iter().all(|p| p.peer_id != gone_peer || p.connected_since.is_none())
            },
        )
        .await
        .expect("cut off");
        assert!(node.entry_status(&kept).is_some(), "{}: records up to the cut stay", node.name);
        assert!(node.entry_status(&late).is_none(), "{}: the record past the cut is gone", node.name);
    }
    // A record it signs now is refused by every member, whichever way it comes.
    let records: Vec<usize> = futures::future::join_all(net.nodes[..4].iter().map(|n| n.status()))
        .await
        .iter()
        .map(|s| s.records)
        .collect();
    net.nodes[0].handle().net().sync_now().await;
    let attempt = gone.try_submit(&md5(12)).await;
    if attempt.status == 201 {
        // The removed node had not heard of its removal: its record must still go nowhere.
        // (If the epoch reached it meanwhile, its own copy is cut too, which shows the same.)
        if let Some(forged) = gone.handle().records(&gone.member, 3, 1).expect("read").pop() {
            let outcome = net.nodes[0].handle().ingest(forged).await.expect("offered");
            assert_eq!(outcome.stored, 0, "a removed key's record past its end is not stored");
        }
    } else {
        assert_eq!(attempt.status, 403, "{attempt:?}");
    }
    for (node, before) in net.nodes[..4].iter().zip(records) {
        assert_eq!(node.status().await.records, before, "{} stored nothing more", node.name);
    }
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_governance_requests_get_a_clear_4xx_and_change_nothing() {
    let net = TestNet::new(3).await.expect("testnet");
    let a = &net.nodes[0];
    let records = a.status().await.records;
    let stranger = hashmesh_protocol::MemberId::from_key(&hashmesh_tests::seeded_key(77).verifying_key());
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            json!({ "epoch": 1, "add": [{ "name": "x", "key": stranger.to_string() }] }),
            409,
            "not the next one",
        ),
        (
            json!({ "epoch": 5, "add": [{ "name": "x", "key": stranger.to_string() }] }),
            409,
            "not the next one",
        ),
        (json!({}), 422, "must add, remove or rotate"),
        (json!({ "policy": { "resolution_quorum": 4 } }), 422, "resolution_quorum 4"),
        (json!({ "policy": { "confirmations_required": 0 } }), 422, "confirmations_required 0"),
        (json!({ "remove": [{ "key": stranger.to_string() }] }), 422, "not a member"),
        (json!({ "add": [{ "name": "node1", "key": stranger.to_string() }] }), 422, "appears twice"),
        (json!({ "add": [{ "name": "x" }] }), 422, "key"),
    ];
    for (body, status, says) in cases {
        let reply = propose(a, body.clone()).await;
        assert_eq!(reply.status, status, "{body}: {reply:?}");
        assert!(reply.error().contains(says), "{body}: {:?} should say {says:?}", reply.error());
    }
    let unknown = approve(a, &"ab".repeat(32)).await;
    assert_eq!(unknown.status, 404, "{unknown:?}");
    assert!(unknown.error().contains("no proposal"), "{}", unknown.error());
    assert_eq!(approve(a, "nothex").await.status, 400);
    let weak = a.call("POST", "/v1/membership/proposals", Some(&a.submitter), Some(json!({}))).await;
    assert_eq!(weak.status, 403, "only admins propose: {weak:?}");
    // A member chooses once per epoch.
    let first = propose(a, json!({ "add": [{ "name": "x", "key": stranger.to_string() }] })).await;
    assert_eq!(first.status, 201, "{first:?}");
    let other = hashmesh_protocol::MemberId::from_key(&hashmesh_tests::seeded_key(78).verifying_key());
    let second = propose(a, json!({ "add": [{ "name": "y", "key": other.to_string() }] })).await;
    assert_eq!(second.status, 409, "{second:?}");
    assert!(second.error().contains("already chose"), "{}", second.error());
    let m = membership(a).await;
    assert_eq!(m["epoch"], 1);
    assert_eq!(a.status().await.records, records + 1, "only the one valid proposal was written");
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_signs_from_then_on_and_the_old_keys_history_stays_valid() {
    let mut net = TestNet::new(3).await.expect("testnet");
    let old = net.nodes[2].member;
    let own = net.nodes[2].submit(&[&md5(30)], "csam").await;
    let theirs = net.nodes[0].submit(&[&md5(31)], "csam").await;
    net.wait_converged(&[0, 1, 2], 2).await.expect("replicated");
    assert_eq!(net.nodes[2].vote(&theirs, "confirm").await.status, 201);
    let new_key = hashmesh_tests::seeded_key(60);
    let new_member = hashmesh_protocol::MemberId::from_key(&new_key.verifying_key());
    let new_peer = hashmesh_node::identity::peer_id(&new_key);
    let proposed = propose(
        &net.nodes[0],
        json!({ "rotate": [{ "member": old.to_string(), "key": new_member.to_string(), "last_seq": 2, "peers": [new_peer] }] }),
    )
    .await;
    assert_eq!(proposed.status, 201, "{proposed:?}");
    let id = proposed.body["proposal"].as_str().expect("id").to_owned();
    wait_until("node1 to see the proposal", || async {
        membership(&net.nodes[1]).await["pending"][0]["id"] == id.as_str()
    })
    .await
    .expect("replicated");
    assert_eq!(approve(&net.nodes[1], &id).await.status, 201);
    // The others let go of the old peer id at once, so the rotated node may not hear of the
    // epoch before it restarts; it learns it from them when it comes back.
    wait_epoch(&net, &[0, 1], 2).await;
    // The member's node restarts with its new key (and so a new peer id), on the same data.
    hashmesh_tests::restart_with_key(&mut net, 2, &new_key).await.expect("back under the new key");
    assert_eq!(net.nodes[2].status().await.member, new_member);
    wait_epoch(&net, &[0, 1, 2], 2).await;
    for node in &net.nodes {
        let status = node.status().await;
        assert!(
            status.logs.iter().any(|l| l.author == old && l.seq == 2),
            "{}: the old key's log ends at 2",
            node.name
        );
    }
    // Its old entry and old vote still count; its new key's vote replaces the old key's.
    for node in &net.nodes {
        assert!(node.entry_status(&own).is_some(), "{}: the old key's entry stays", node.name);
    }
    assert_eq!(net.nodes[1].vote(&theirs, "confirm").await.status, 201);
    let records = net.nodes[1].status().await.records;
    net.wait_converged(&[0, 1, 2], records).await.expect("replicated");
    for node in &net.nodes {
        assert_eq!(node.entry_status(&theirs), Some(hashmesh_protocol::Status::Verified), "{}", node.name);
    }
    let changed = net.nodes[2]
        .call(
            "POST",
            &format!("/v1/entries/{theirs}/votes"),
            Some(&net.nodes[2].admin),
            Some(json!({ "verdict": "dispute", "reason": "second look" })),
        )
        .await;
    assert_eq!(changed.status, 201, "{changed:?}");
    net.wait_converged(&[0, 1, 2], records + 1).await.expect("replicated");
    for node in &net.nodes {
        // One member, two keys: the new key's dispute counts, not both votes.
        assert_eq!(node.entry_status(&theirs), Some(hashmesh_protocol::Status::Rejected), "{}", node.name);
    }
    // The whole story verifies offline, across the rotation.
    let exported = net.nodes[1]
        .call("GET", &format!("/v1/entries/{theirs}/proof"), Some(&net.nodes[1].matcher), None)
        .await;
    let bundle: hashmesh_node::audit::ProofBundle = serde_json::from_value(exported.body).expect("bundle");
    let verified = bundle.verify(Some(&net.manifest)).expect("verifies");
    assert_eq!(
        (verified.epoch, verified.status, verified.events),
        (2, hashmesh_protocol::Status::Rejected, 3)
    );
    net.shutdown().await;
}

/// A member rotating its own key: left out, `last_seq` is the proposal's own seq (a proposal
/// cut off below itself would undo its epoch), the node refuses writes past it until it is
/// restarted with the new key, and the epoch holds. Approving a proposal that would cut this
/// member's log below the approval itself is refused with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_rotating_its_own_key_keeps_the_proposal_and_writes_nothing_that_would_be_dropped() {
    let mut net = TestNet::new(3).await.expect("testnet");
    let old = net.nodes[1].member;
    net.nodes[1].submit(&[&md5(40)], "csam").await;
    net.wait_converged(&[0, 1, 2], 1).await.expect("replicated");

    // node0 proposes cutting node1's log at 1; node1's approval would be its seq 2.
    let new_key = hashmesh_tests::seeded_key(61);
    let new_member = hashmesh_protocol::MemberId::from_key(&new_key.verifying_key());
    let new_peer = hashmesh_node::identity::peer_id(&new_key);
    let rotation = json!({ "member": old.to_string(), "key": new_member.to_string(), "peers": [new_peer] });
    let cut_low = propose(&net.nodes[0], json!({ "rotate": [rotation.clone()] })).await;
    assert_eq!(cut_low.status, 201, "{cut_low:?}");
    let low = cut_low.body["proposal"].as_str().expect("id").to_owned();
    wait_until("node1 to see node0's proposal", || async {
        membership(&net.nodes[1]).await["pending"][0]["id"] == low.as_str()
    })
    .await
    .expect("replicated");
    let refused = approve(&net.nodes[1], &low).await;
    assert_eq!(refused.status, 409, "{refused:?}");
    assert!(refused.error().contains("would cut itself off"), "{refused:?}");

    // node1 proposes its own rotation for the same epoch, with no last_seq.
    let own = propose(&net.nodes[1], json!({ "rotate": [rotation] })).await;
    assert_eq!(own.status, 201, "{own:?}");
    let id = own.body["proposal"].as_str().expect("id").to_owned();
    assert_eq!(own.body["record"]["seq"], 2, "{own:?}");
    let pending = membership(&net.nodes[1]).await["pending"].clone();
    let mine =
        pending.as_array().expect("pending").iter().find(|p| p["id"] == id.as_str()).expect("listed").clone();
    assert_eq!(mine["changes"]["rotate"][0]["last_seq"], 2, "the proposal's own seq: {mine}");
    let write = net.nodes[1].try_submit(&md5(41)).await;
    assert_eq!(write.status, 409, "{write:?}");
    assert!(write.error().contains("ends this key's log at seq 2"), "{write:?}");

    // node0 chose its own proposal for epoch 2 (a member's first choice counts); node2 makes
    // node1's the majority.
    wait_until("node2 to see node1's proposal", || async {
        membership(&net.nodes[2]).await["pending"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["id"] == id.as_str()))
    })
    .await
    .expect("replicated");
    assert_eq!(approve(&net.nodes[2], &id).await.status, 201);
    wait_epoch(&net, &[0, 2], 2).await;

    hashmesh_tests::restart_with_key(&mut net, 1, &new_key).await.expect("back under the new key");
    wait_epoch(&net, &[0, 1, 2], 2).await;
    let written = net.nodes[1].try_submit(&md5(42)).await;
    assert_eq!(written.status, 201, "{written:?}");
    for node in &net.nodes {
        let status = node.status().await;
        assert!(
            status.logs.iter().any(|l| l.author == old && l.seq == 2),
            "{}: the old key's log ends at its proposal",
            node.name
        );
        assert_eq!(membership(node).await["epoch"], 2, "{}: the epoch holds", node.name);
    }
}
