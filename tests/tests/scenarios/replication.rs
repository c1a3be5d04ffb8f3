//! Replication under the conditions that broke it before: many concurrent writers, a member
//! whose data dir was copied and runs twice, a node restored from an old backup.

use std::time::Duration;

use hashmesh_protocol::Status;
use hashmesh_tests::load::submit_concurrently;
use hashmesh_tests::{TestNet, wait_until};

fn md5(n: u32) -> String {
    format!("md5:{n:032x}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_concurrent_writers_never_stall_a_node() {
    let net = TestNet::new(2).await.expect("testnet");
    let (rpc, token) = (net.nodes[0].rpc(), net.nodes[0].submitter.clone());
    let reader = (net.nodes[0].rpc(), net.nodes[0].matcher.clone());
    let (report, status_ok) = tokio::task::spawn_blocking(move || {
        std::thread::scope(|scope| {
            // Status must keep answering while the writers hammer the node.
            let status = scope.spawn(|| {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .timeout_global(Some(Duration::from_secs(5)))
                    .build()
                    .new_agent();
                let mut answered = 0;
                for _ in 0..20 {
                    let ok = agent
                        .get(format!("{}/v1/status", reader.0))
                        .header("Authorization", format!("Bearer {}", reader.1))
                        .call()
                        .is_ok();
                    answered += u32::from(ok);
                    std::thread::sleep(Duration::from_millis(150));
                }
                answered
            });
            let report =
                submit_concurrently(&rpc, &token, 32, Duration::from_secs(4), Duration::from_secs(20));
            (report, status.join().unwrap_or(0))
        })
    })
    .await
    .expect("load ran");
    assert_eq!(report.failed, 0, "every write must be acknowledged: {:?}", report.first_failure);
    assert!(report.acked > 100, "the writers made progress: {report:?}");
    assert_eq!(status_ok, 20, "status answered every time under load");
    // Everything acknowledged is held, here and at the other node.
    let acked = report.acked as usize;
    net.wait_converged(&[0, 1], acked).await.expect("every acknowledged write replicated");
    for id in report.ids.iter().step_by(97) {
        assert!(net.nodes[1].handle().entry(&id.parse().expect("id")).is_ok(), "{id} replicated");
    }
    net.shutdown().await;
}

/// The story the issue tells: member 4's data dir is copied; the original votes *confirm*
/// with one side of a partition, the copy votes *dispute* with the other; everyone reconnects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copied_data_dir_voting_both_ways_ends_in_one_verdict_everywhere() {
    let mut net = TestNet::new(5).await.expect("testnet");
    let entry = net.nodes[0].submit(&[&md5(1)], "csam").await;
    net.wait_converged(&[0, 1, 2, 3, 4], 1).await.expect("entry everywhere");
    let p4 = net.nodes[4].peer_id();
    // The copy is taken while node4 is down, then both run.
    net.nodes[4].stop().await;
    let mut copy = net.nodes[4].copy().expect("copy");
    copy.start().await.expect("copy starts");
    net.nodes[4].start().await.expect("original restarts");
    net.nodes.push(copy);
    let (original, copy) = (4, 5);
    // Left: node0, node1, node2 and the copy. Right: node3 and the original.
    for a in [0, 1, 2] {
        net.cut(a, 3).await;
        let pa = net.nodes[a].peer_id();
        net.nodes[original].handle().net().cut(pa).await;
        net.nodes[3].handle().net().cut(net.nodes[a].peer_id()).await;
    }
    net.nodes[copy].handle().net().cut(net.nodes[3].peer_id()).await;
    for (node, other) in [(copy, 0), (copy, 1), (copy, 2), (original, 3)] {
        for addr in net.nodes[other].handle().net().listen_addrs().await {
            net.nodes[node].handle().net().add_address(net.nodes[other].peer_id(), addr).await;
        }
        for addr in net.nodes[node].handle().net().listen_addrs().await {
            net.nodes[other].handle().net().add_address(p4, addr).await;
        }
    }
    for node in [original, copy] {
        wait_until(&format!("{} to accept writes", net.nodes[node].name), || async {
            net.nodes[node].handle().own_log().may_author()
        })
        .await
        .expect("writable");
    }
    let confirmed = net.nodes[original].vote(&entry, "confirm").await;
    assert_eq!(confirmed.status, 201, "{confirmed:?}");
    let disputed = net.nodes[copy].vote(&entry, "dispute").await;
    assert_eq!(disputed.status, 201, "{disputed:?}");
    assert_eq!(net.nodes[1].vote(&entry, "confirm").await.status, 201);
    net.wait_converged(&[0, 1, 2, copy], 3).await.expect("left side agrees");
    net.wait_converged(&[3, original], 2).await.expect("right side agrees");
    // The copy is switched off; everyone else reconnects.
    net.nodes[copy].stop().await;
    net.nodes.pop();
    for a in [0, 1, 2] {
        net.restore(a, 3).await;
        net.nodes[original].handle().net().restore(net.nodes[a].peer_id()).await;
    }
    let member4 = net.nodes[original].member;
    for node in &net.nodes {
        wait_until(&format!("{} to hold the proof against member 4", node.name), || async {
            node.status().await.equivocators.contains(&member4)
        })
        .await
        .expect("proof everywhere");
    }
    // Entry, node1's vote, and member 4's log up to the fork (nothing: both votes were seq 1).
    net.wait_converged(&[0, 1, 2, 3, 4], 2).await.expect("identical replicas");
    let statuses: Vec<Option<Status>> = net.nodes.iter().map(|n| n.entry_status(&entry)).collect();
    assert!(
        statuses.iter().all(|s| *s == Some(Status::Pending)),
        "member 4's votes no longer count: {statuses:?}"
    );
    let alerts = net.nodes[2].call("GET", "/v1/alerts", Some(&net.nodes[2].matcher), None).await;
    assert_eq!(alerts.status, 200);
    assert_eq!(alerts.body["alerts"][0]["author"], member4.to_string());
    assert_eq!(
        alerts.body["alerts"][0]["records"].as_array().map(Vec::len),
        Some(2),
        "both records: {alerts:?}"
    );
    // The member's own node knows, and refuses to write more under the proven key.
    let refused = net.nodes[original].try_submit(&md5(9)).await;
    assert_eq!(refused.status, 409, "{refused:?}");
    assert!(refused.error().contains("equivocated"), "{refused:?}");
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restored_from_an_old_backup_catches_up_on_itself_before_writing() {
    let mut net = TestNet::new(3).await.expect("testnet");
    for n in 0..3 {
        net.nodes[0].submit(&[&md5(n)], "drugs").await;
    }
    net.wait_converged(&[0, 1, 2], 3).await.expect("converged");
    net.nodes[0].stop().await;
    let backup = net.nodes[0].copy().expect("backup");
    net.nodes[0].start().await.expect("restart");
    net.introduce_all().await.expect("addresses");
    net.wait_writable().await.expect("writable");
    for n in 3..8 {
        net.nodes[0].submit(&[&md5(n)], "drugs").await;
    }
    net.wait_converged(&[0, 1, 2], 8).await.expect("converged");
    // The disk is lost; the operator restores the old backup while the peers are unreachable.
    let p0 = net.nodes[0].peer_id();
    net.nodes[0].stop().await;
    for other in [1, 2] {
        net.nodes[other].handle().net().cut(p0).await;
    }
    net.nodes[0].restore_from(backup).expect("restore");
    net.nodes[0].start().await.expect("start from backup");
    let refused = net.nodes[0].try_submit(&md5(100)).await;
    assert_eq!(refused.status, 503, "{refused:?}");
    assert!(refused.error().contains("never reuses a sequence number"), "{refused:?}");
    assert_eq!(net.nodes[0].status().await.own_log, "waiting");
    // Peers come back: the node fetches its own newer records first, then writes after them.
    for other in [1, 2] {
        net.nodes[other].handle().net().restore(p0).await;
    }
    net.introduce_all().await.expect("addresses");
    net.wait_writable().await.expect("writable again");
    let written = net.nodes[0].try_submit(&md5(100)).await;
    assert_eq!(written.status, 201, "{written:?}");
    assert_eq!(written.body["seq"], 9, "the next seq after the 8 the federation holds");
    net.wait_converged(&[0, 1, 2], 9).await.expect("one history");
    for node in &net.nodes {
        assert!(node.status().await.equivocators.is_empty(), "no fork");
    }
    net.shutdown().await;
}

/// Member 2's key falls into the wrong hands: a rogue claims member 1's log runs to seq 10,000
/// and answers range requests with a replay of the log from seq 1, or not at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_replays_and_stalls_cannot_lead_sync_astray() {
    let mut net = TestNet::new(3).await.expect("testnet");
    net.nodes[0].stop().await;
    for n in 0..50 {
        net.nodes[1].submit(&[&md5(n)], "drugs").await;
    }
    net.wait_converged(&[1, 2], 50).await.expect("converged");
    let member1 = net.nodes[1].member;
    let log: Vec<Vec<u8>> = net.nodes[1]
        .handle()
        .records(&member1, 1, 1000)
        .expect("log")
        .iter()
        .map(|r| r.bytes().to_vec())
        .collect();
    net.nodes[2].stop().await;
    net.nodes[0].start().await.expect("node0 returns");
    net.introduce_all().await.expect("addresses");
    let rogue = hashmesh_tests::rogue::Rogue::start(
        &hashmesh_tests::seeded_key(2),
        member1,
        10_000,
        log,
        net.nodes[0].handle().net().listen_addrs().await,
    )
    .expect("rogue");
    // Asked in turn, the rogue replays, stalls (node0 times out), replays … A peer that
    // answered wrongly is asked again only at the next sync round: run rounds now.
    let node0 = net.nodes[0].handle().net().clone();
    wait_until("node0 to ask the rogue three times", || async {
        node0.sync_now().await;
        rogue.ranges_asked() >= 3
    })
    .await
    .expect("node0 went on asking after a stalled request");
    let rogue_id = rogue.peer_id.to_string();
    wait_until("node0 to count a replay against the rogue", || async {
        let peers = net.nodes[0].handle().peers().await;
        peers.iter().any(|p| p.peer_id == rogue_id && p.rejects >= 1)
    })
    .await
    .expect("a replay from the wrong seq counts against the peer");
    net.wait_converged(&[0, 1], 50).await.expect("node0 holds exactly the real log");
    // Meanwhile node0 still takes new records of member 1 from the honest node.
    net.nodes[1].submit(&[&md5(1000)], "drugs").await;
    net.wait_converged(&[0, 1], 51).await.expect("sync goes on");
    net.shutdown().await;
}

/// Catch-up sync checks what it fetches as gossip does. Member 1's and member 2's keys are
/// stolen while node0 is alone: one rogue serves member 1's log with a byte flipped in every
/// record (each still decodes, no signature matches), another serves member 2's records when
/// asked for member 1's. Node0 stores none of them and counts each answer against its sender;
/// the honest node, back later, still gives it the real logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_fetched_by_sync_with_a_bad_signature_or_the_wrong_author_are_never_stored() {
    let mut net = TestNet::new(3).await.expect("testnet");
    net.nodes[0].stop().await;
    for n in 0..5 {
        net.nodes[1].submit(&[&md5(n)], "drugs").await;
    }
    for n in 5..8 {
        net.nodes[2].submit(&[&md5(n)], "drugs").await;
    }
    net.wait_converged(&[1, 2], 8).await.expect("converged");
    let log = |author| -> Vec<Vec<u8>> {
        let records = net.nodes[1].handle().records(&author, 1, 1000).expect("log");
        records.iter().map(|r| r.bytes().to_vec()).collect()
    };
    let (member1, member2) = (net.nodes[1].member, net.nodes[2].member);
    let (genuine1, genuine2) = (log(member1), log(member2));
    // The last byte of the timestamp (version, author, seq and prev come first).
    let tampered: Vec<Vec<u8>> = genuine1
        .iter()
        .map(|bytes| {
            let mut bytes = bytes.clone();
            bytes[80] ^= 0x01;
            let record = hashmesh_protocol::Record::decode(&bytes).expect("still well-formed");
            assert!(record.verify_signature().is_err(), "the flip breaks the signature");
            bytes
        })
        .collect();
    net.nodes[1].stop().await;
    net.nodes[2].stop().await;
    net.nodes[0].start().await.expect("node0 returns alone");
    net.introduce_all().await.expect("addresses");
    let addrs = net.nodes[0].handle().net().listen_addrs().await;
    let node0 = net.nodes[0].handle().net().clone();
    for (what, key, records) in [("a flipped byte", 2, tampered), ("another author's records", 1, genuine2)] {
        let rogue = hashmesh_tests::rogue::Rogue::serving(
            &hashmesh_tests::seeded_key(key),
            member1,
            5,
            records,
            addrs.clone(),
        )
        .expect("rogue");
        let rogue_id = rogue.peer_id.to_string();
        wait_until(&format!("node0 to judge the rogue's answer ({what})"), || async {
            node0.sync_now().await;
            let rejected = node0.peers().await.iter().any(|p| p.peer_id == rogue_id && p.rejects >= 1);
            rejected || net.nodes[0].status().await.records > 0
        })
        .await
        .expect("node0 asked the rogue and judged its answer");
        assert!(rogue.ranges_asked() >= 1, "{what}: node0 fetched a range");
        assert_eq!(net.nodes[0].status().await.records, 0, "{what}: nothing stored");
        let peers = net.nodes[0].handle().peers().await;
        let rogue_view = peers.iter().find(|p| p.peer_id == rogue_id).expect("rogue known");
        assert!(rogue_view.rejects >= 1, "{what}: the answer counts against the rogue: {rogue_view:?}");
    }
    // The honest node, back, gives node0 exactly the real logs.
    net.nodes[1].start().await.expect("node1 returns");
    net.introduce_all().await.expect("addresses");
    net.wait_converged(&[0, 1], 8).await.expect("node0 holds the real logs");
    net.shutdown().await;
}
