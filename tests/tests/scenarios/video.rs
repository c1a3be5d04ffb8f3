//! Videos: a platform lists a video it removed by its vPDQ fingerprint, and copies of it —
//! re-encoded, resized, at other frame rates, trimmed, mirrored — are matched at another
//! member's node from the upload alone, with how much of each video matched; an unrelated video
//! is not.

use hashmesh_tests::{TestNet, test_videos, wait_until};
use serde_json::Value;

/// The vpdq result of a match reply.
fn vpdq_result(body: &Value) -> Value {
    body["results"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["hash"].as_str().is_some_and(|h| h.starts_with("vpdq:"))))
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_of_a_listed_video_match_at_another_node() {
    let Some(videos) = test_videos() else { return };
    let read = |name: &str| std::fs::read(videos.join(name)).expect("test video");
    let net = TestNet::new(2).await.expect("testnet");
    let (a, b) = (&net.nodes[0], &net.nodes[1]);

    // Node a's platform fingerprints the video it removed and lists it; only the frame hashes
    // travel.
    let hashed =
        a.call_raw("POST", "/v1/match", Some(&a.matcher), Some(read("source.mp4")), Some("video/mp4")).await;
    assert_eq!(hashed.status, 200, "{hashed:?}");
    let fingerprint = vpdq_result(&hashed.body)["hash"].as_str().unwrap_or_default().to_owned();
    assert!(fingerprint.starts_with("vpdq:"), "a vPDQ fingerprint was computed: {hashed:?}");
    // 20 frames of 37 bytes, as hex.
    assert_eq!(fingerprint.len(), "vpdq:".len() + 20 * 37 * 2, "one frame a second, each once");
    let id = a.submit(&[&fingerprint], "csam").await;
    wait_until("node b to hold the entry", || async { b.handle().entry(&id.parse().expect("id")).is_ok() })
        .await
        .expect("replicated");

    // (mjpeg_5fps.mov, at 1.3 MB, is over the test nodes' 1 MiB upload limit; the hasher's own
    // tests match it.)
    for (copy, full_video) in [
        ("reencoded_vp8.webm", true),
        ("mpeg4_24fps.avi", true),
        ("ntsc_29.97fps.mp4", true),
        ("resized_30fps.mp4", true),
        ("mirrored.mp4", true),
        // Nine seconds cut from the middle: all of the clip is in the listed video, half of
        // the listed video in the clip.
        ("trimmed.mp4", false),
    ] {
        let reply =
            b.call_raw("POST", "/v1/match", Some(&b.matcher), Some(read(copy)), Some("video/mp4")).await;
        assert_eq!(reply.status, 200, "{copy}: {reply:?}");
        let result = vpdq_result(&reply.body);
        let hit = &result["hits"][0];
        assert_eq!(hit["entry"], id.as_str(), "{copy} matches the listed video: {result}");
        assert_eq!(hit["kind"], "vpdq", "{copy}");
        let (query, candidate) = (
            hit["video"]["query_percent"].as_f64().unwrap_or(0.0),
            hit["video"]["candidate_percent"].as_f64().unwrap_or(0.0),
        );
        assert!(query >= 80.0, "{copy}: {query}% of its frames match");
        assert_eq!(candidate >= 80.0, full_video, "{copy}: {candidate}% of the listed video matched");
        assert_eq!(reply.body["action"], "review", "{copy}: a pending entry sends the upload to review");
    }

    let other = b
        .call_raw("POST", "/v1/match", Some(&b.matcher), Some(read("unrelated.mp4")), Some("video/mp4"))
        .await;
    assert_eq!(other.status, 200, "{other:?}");
    let result = vpdq_result(&other.body);
    assert!(result["hash"].as_str().is_some_and(|h| h.starts_with("vpdq:")), "{other:?}");
    assert_eq!(result["hits"], serde_json::json!([]), "an unrelated video does not match: {result}");
    assert_eq!(other.body["action"], "none");

    // The fingerprint alone, as `match --dir` sends it, matches too.
    let by_hash = b
        .call(
            "POST",
            "/v1/match/hashes",
            Some(&b.matcher),
            Some(serde_json::json!({ "hashes": [fingerprint] })),
        )
        .await;
    assert_eq!(by_hash.body["results"][0]["hits"][0]["video"]["query_percent"], 100.0, "{by_hash:?}");
    net.shutdown().await;
}

#[tokio::test]
async fn a_damaged_video_is_a_clear_error_and_its_exact_fingerprints_still_match() {
    let Some(videos) = test_videos() else { return };
    let net = TestNet::new(1).await.expect("testnet");
    let node = &net.nodes[0];
    let bytes = std::fs::read(videos.join("source.mp4")).expect("test video");
    let half = bytes[..bytes.len() / 2].to_vec();
    let reply = node.call_raw("POST", "/v1/match", Some(&node.matcher), Some(half), Some("video/mp4")).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(reply.body["video_error"].as_str().is_some_and(|e| e.contains("no video stream")), "{reply:?}");
    let kinds: Vec<&str> = reply.body["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["hash"].as_str()?.split(':').next())
        .collect();
    assert!(kinds.contains(&"sha256") && !kinds.contains(&"vpdq"), "{kinds:?}");
    net.shutdown().await;
}

/// A six-hour video's fingerprint (21,600 frames, 799 KB in a record of ~800 KB) crosses to
/// another node by gossip, and to a node that was cut off by sync, and matches there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_longest_video_fingerprint_replicates_by_gossip_and_by_sync() {
    use hashmesh_protocol::vpdq::{self, Frame};
    use hashmesh_protocol::{Fingerprint, FingerprintKind};
    let net = TestNet::new(3).await.expect("testnet");
    net.cut(0, 2).await;
    net.cut(1, 2).await;
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(13);
    let frames: Vec<Frame> = (0..vpdq::MAX_FRAMES as u32)
        .map(|i| {
            let mut hash = [0u8; 32];
            rng.fill_bytes(&mut hash);
            Frame { hash, quality: 90, timestamp_ms: i * 1000 }
        })
        .collect();
    let fingerprint = Fingerprint::new(FingerprintKind::Vpdq, vpdq::encode(&frames)).expect("valid");
    let entry = hashmesh_node::api::SubmitEntry {
        fingerprints: vec![fingerprint.clone()],
        category: "csam".parse().expect("category"),
        links: Vec::new(),
        note: None,
        expires_at: None,
    };
    let written = net.nodes[0].handle().submit(entry).await.expect("a record of ~800 KB is written");
    for (i, how) in [(1, "gossip"), (2, "sync after the cut heals")] {
        if i == 2 {
            net.restore(0, 2).await;
            net.restore(1, 2).await;
        }
        wait_until(&format!("node {i} to hold the entry by {how}"), || async {
            net.nodes[i].handle().entry(&written.id).is_ok()
        })
        .await
        .expect("replicated");
    }
    // A query of the first minute, a bit off, finds it at the last node.
    let query: Vec<Frame> = frames[..60]
        .iter()
        .map(|f| {
            let mut hash = f.hash;
            hash[0] ^= 2;
            Frame { hash, ..*f }
        })
        .collect();
    let query = Fingerprint::new(FingerprintKind::Vpdq, vpdq::encode(&query)).expect("valid");
    let results = net.nodes[2].handle().match_fingerprints(&[query]);
    let hit = &results[0].hits[0];
    assert_eq!(hit.entry, written.id);
    let video = hit.video.expect("a video hit");
    assert_eq!((video.query_percent, video.candidate_percent), (100.0, 60.0 * 100.0 / 21_600.0));
    net.shutdown().await;
}
