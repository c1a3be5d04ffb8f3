//! Replication between member nodes, over real libp2p connections on loopback.

use hashmesh_protocol::{Body, Entry, Fingerprint, FingerprintKind, Record, UnsignedRecord};
use hashmesh_tests::{TestNet, seeded_key, wait_until};
use serde_json::json;

fn md5(n: u32) -> String {
    format!("md5:{n:032x}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entry_submitted_at_one_node_is_matchable_everywhere() {
    let net = TestNet::new(4).await.expect("testnet");
    let id = net.nodes[0].submit(&[&md5(1)], "csam").await;
    for node in &net.nodes[1..] {
        wait_until(&format!("{} matches the entry", node.name), || async {
            let r = node
                .call("POST", "/v1/match/hashes", Some(&node.matcher), Some(json!({"hashes": [md5(1)]})))
                .await;
            r.body["results"][0]["hits"][0]["entry"] == id.as_str()
        })
        .await
        .expect("replicated");
    }
    net.wait_converged(&[0, 1, 2, 3], 1).await.expect("identical replicas");
    // The same state, as Prometheus sees it.
    let b = &net.nodes[1];
    let m = b.scrape().await;
    assert_eq!(m.value("hashmesh_records", &[]), Some(1.0), "{m:#?}");
    assert_eq!(m.value("hashmesh_peers_connected", &[]), Some(3.0), "{m:#?}");
    assert_eq!(m.family("hashmesh_peer_rejects").map(|f| f.samples.len()), Some(3), "one per peer");
    assert_eq!(m.sum("hashmesh_peer_rejects_total"), 0.0);
    // Stored once, from whichever peer brought it first.
    assert_eq!(m.sum("hashmesh_peer_records_received_total"), 1.0, "{m:#?}");
    net.shutdown().await;
}

/// Node2 is down while node0 writes more than two sync batches of its own log and node1 a few
/// records: on its return node2 fetches node0's log batch after batch (the next-batch path,
/// with the pipeline full) and ends with exactly what the others hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_offline_during_8600_writes_catches_up_exactly() {
    let mut net = TestNet::new(3).await.expect("testnet");
    net.nodes[2].stop().await;
    let batch = hashmesh_node::sync::wire::BATCH;
    let long = 2 * batch + 500;
    let entries = (0..long)
        .map(|n| hashmesh_node::api::SubmitEntry {
            fingerprints: vec![md5(n).parse().expect("valid")],
            category: "drugs".parse().expect("valid"),
            links: vec![],
            note: None,
            expires_at: None,
        })
        .collect();
    let written = net.nodes[0].handle().submit_batch(entries).await.expect("bulk submit");
    assert_eq!(written.len(), long as usize);
    for n in 0..100 {
        net.nodes[1].submit(&[&md5(long + n)], "drugs").await;
    }
    let total = long as usize + 100;
    net.wait_converged(&[0, 1], total).await.expect("online nodes agree");
    net.nodes[2].start().await.expect("restart");
    net.introduce_all().await.expect("addresses");
    net.wait_converged(&[0, 1, 2], total).await.expect("the returning node catches up exactly");
    let member0 = net.nodes[0].member;
    let clock = net.nodes[2].handle().replica().clock();
    assert_eq!(clock.get(&member0).map(|c| c.seq), Some(u64::from(long)), "node0's whole log");
    // The peers' counters move when the event loop hears a batch was stored, just after the
    // replica shows it: wait for them.
    wait_until("node2 to count the records it fetched", || async {
        let peers = net.nodes[2].handle().peers().await;
        peers.iter().map(|p| p.records_received).sum::<u64>() >= u64::from(long)
    })
    .await
    .expect("fetched from peers, not gossiped");
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_heals_to_identical_digests() {
    let net = TestNet::new(5).await.expect("testnet");
    let (left, right) = ([0usize, 1], [2usize, 3, 4]);
    for a in left {
        for b in right {
            net.cut(a, b).await;
        }
    }
    for (i, node) in net.nodes.iter().enumerate() {
        for k in 0..3 {
            node.submit(&[&md5(100 * i as u32 + k)], "harmful_behavior").await;
        }
    }
    net.wait_converged(&[0, 1], 6).await.expect("left side agrees");
    net.wait_converged(&[2, 3, 4], 9).await.expect("right side agrees");
    for a in left {
        for b in right {
            net.restore(a, b).await;
        }
    }
    net.wait_converged(&[0, 1, 2, 3, 4], 15).await.expect("healed");
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_member_cannot_connect_and_its_records_are_never_stored() {
    let net = TestNet::new(2).await.expect("testnet");
    // An outsider whose own manifest trusts node0, while node0's manifest does not list it.
    let outsider_net = TestNet::outsider(vec![net.manifest.members[0].clone()]).await.expect("outsider");
    let outsider = &outsider_net.nodes[0];
    outsider.submit(&[&md5(666)], "csam").await;
    let client = outsider.handle().net().clone();
    for addr in net.nodes[0].handle().net().listen_addrs().await {
        client.add_address(net.nodes[0].peer_id(), addr).await;
    }
    wait_until("node0 to refuse the outsider", || async {
        net.nodes[0].status().await.refused_connections > 0
    })
    .await
    .expect("refused");
    // The federation still works, and holds nothing of the outsider's.
    net.nodes[1].submit(&[&md5(7)], "drugs").await;
    net.wait_converged(&[0, 1], 1).await.expect("members converge");
    let peers = net.nodes[0].handle().peers().await;
    assert!(peers.iter().all(|p| p.peer_id != outsider.peer_id().to_string()), "outsider is not a peer");
    let status = net.nodes[0].status().await;
    assert!(status.logs.iter().all(|l| l.author != outsider.member), "no outsider records");
    outsider_net.shutdown().await;
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_record_from_a_member_is_rejected_and_not_forwarded() {
    let net = TestNet::new(3).await.expect("testnet");
    // A line: node0 – node1 – node2, so anything node2 gets from node0 passes node1.
    net.cut(0, 2).await;
    let id = net.nodes[0].submit(&[&md5(1)], "csam").await;
    net.wait_converged(&[0, 1, 2], 1).await.expect("converged");
    let seq = net.nodes[0].handle().entry(&id.parse().expect("id")).expect("entry").seq;
    let record = net.nodes[0].handle().records(&net.nodes[0].member, seq, 1).expect("read").remove(0);
    let mut forged = record.bytes().to_vec();
    let at = forged.len() - 80;
    forged[at] ^= 0x40;
    let node0_net = net.nodes[0].handle().net();
    node0_net.publish(forged);
    // A valid record right behind it on the same stream: once node2 has it, node1 has
    // handled the forged one.
    let after = net.nodes[0].submit(&[&md5(2)], "csam").await;
    wait_until("node2 to hold the valid record", || async {
        net.nodes[2].handle().entry(&after.parse().expect("id")).is_ok()
    })
    .await
    .expect("valid record arrives");
    let from_node0 = net.nodes[1].handle().peers().await;
    let p0 = net.nodes[0].peer_id().to_string();
    assert_eq!(from_node0.iter().find(|p| p.peer_id == p0).map(|p| p.rejects), Some(1), "node1 rejected it");
    let at_node2 = net.nodes[2].handle().peers().await;
    assert!(at_node2.iter().all(|p| p.rejects == 0), "node1 did not forward it: {at_node2:?}");
    net.wait_converged(&[0, 1, 2], 2).await.expect("only the valid records");
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equivocating_author_is_detected_on_every_node() {
    let net = TestNet::new(3).await.expect("testnet");
    net.nodes[0].submit(&[&md5(1)], "csam").await;
    net.wait_converged(&[0, 1, 2], 1).await.expect("converged");
    // node0's member signs two different records at seq 2 and shows each to one node; on
    // node1's branch it goes on writing (seq 3), so node1's log runs past the fork.
    let head = net.nodes[0].handle().replica().clock()[&net.nodes[0].member];
    let fork_at = |n: u8, seq: u64, prev: hashmesh_protocol::RecordId| -> Record {
        UnsignedRecord {
            author: net.nodes[0].member,
            seq,
            prev,
            timestamp: 0,
            body: Body::Entry(Entry {
                fingerprints: vec![Fingerprint::new(FingerprintKind::Sha1, vec![n; 20]).expect("valid")],
                category: "csam".parse().expect("valid"),
                links: vec![],
                note: None,
                expires_at: None,
            }),
        }
        .sign(&seeded_key(0))
        .expect("sign")
    };
    let (one, two) = (fork_at(1, head.seq + 1, head.id), fork_at(2, head.seq + 1, head.id));
    assert_ne!(one.id(), two.id());
    let one_more = fork_at(3, head.seq + 2, one.id());
    net.nodes[1].handle().ingest(one).await.expect("ingest");
    net.nodes[1].handle().ingest(one_more).await.expect("ingest");
    net.nodes[2].handle().ingest(two).await.expect("ingest");
    for node in &net.nodes {
        node.handle().net().sync_now().await;
    }
    for node in &net.nodes {
        wait_until(&format!("{} to flag the equivocation", node.name), || async {
            node.status().await.equivocators.contains(&net.nodes[0].member)
        })
        .await
        .expect("equivocation detected");
    }
    // Every node ends with the same replica: node0's log up to the fork, one proof.
    net.wait_converged(&[0, 1, 2], 1).await.expect("identical replicas after the fork");
    net.shutdown().await;
}
