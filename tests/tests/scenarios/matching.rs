//! Matching content through the RPC: perceptual hashes survive the usual edits, low-quality
//! hashes are reported rather than matched, and broken images are clear errors.

use hashmesh_tests::{TestNet, fixture, png, wait_until};
use serde_json::{Value, json};

/// The result for the fingerprint of `kind` in a match reply.
fn result_of(body: &Value, kind: &str) -> Value {
    let prefix = format!("{kind}:");
    body["results"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["hash"].as_str().is_some_and(|h| h.starts_with(&prefix))))
        .cloned()
        .unwrap_or(Value::Null)
}

fn no_hits(body: &Value) -> bool {
    body["results"].as_array().is_some_and(|rs| rs.iter().all(|r| r["hits"] == json!([])))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edited_copies_of_a_listed_image_match_at_another_node() {
    let net = TestNet::new(2).await.expect("testnet");
    let (a, b) = (&net.nodes[0], &net.nodes[1]);
    let original = fixture("coffee.png");

    // Node a's platform hashes the image it removed and lists its PDQ (only the hash travels).
    let hashed =
        a.call_raw("POST", "/v1/match", Some(&a.matcher), Some(original.clone()), Some("image/png")).await;
    assert_eq!(hashed.status, 200, "{hashed:?}");
    let pdq = result_of(&hashed.body, "pdq")["hash"].as_str().unwrap_or("").to_owned();
    assert!(pdq.starts_with("pdq:"), "a PDQ was computed: {hashed:?}");
    let id = a.submit(&[&pdq], "csam").await;

    // Node b sees a mirrored, re-encoded, slightly resized copy.
    let img = image::load_from_memory(&original).expect("decode");
    let edited = img.fliph().resize(300, 300, image::imageops::FilterType::Triangle);
    let upload = png(&edited);
    wait_until("node b to hold the entry", || async { b.handle().entry(&id.parse().expect("id")).is_ok() })
        .await
        .expect("replicated");
    let reply = b.call_raw("POST", "/v1/match", Some(&b.matcher), Some(upload), Some("image/png")).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let pdq_result = result_of(&reply.body, "pdq");
    let hit = &pdq_result["hits"][0];
    assert_eq!(hit["entry"], id.as_str(), "mirrored copy matches: {pdq_result}");
    assert!(hit["distance"].as_u64().is_some_and(|d| d <= 31), "{hit}");
    assert_eq!(reply.body["action"], "review", "a pending entry sends the upload to review");

    // An unrelated photo does not match.
    let other = b
        .call_raw("POST", "/v1/match", Some(&b.matcher), Some(fixture("rocket.png")), Some("image/png"))
        .await;
    assert!(no_hits(&other.body), "{other:?}");
    net.shutdown().await;
}

#[tokio::test]
async fn low_quality_hash_is_reported_not_matched() {
    let net = TestNet::new(1).await.expect("testnet");
    let n = &net.nodes[0];
    let flat = fixture("nearflat_160x120.png");
    let reply = n.call_raw("POST", "/v1/match", Some(&n.matcher), Some(flat), Some("image/png")).await;
    let pdq = result_of(&reply.body, "pdq");
    assert!(pdq["quality"].as_u64().is_some_and(|q| q < 50), "{pdq}");
    assert!(pdq["skipped"].as_str().is_some_and(|s| s.contains("below 50")), "{pdq}");
    // Even when that very hash is listed, it is not matched.
    n.submit(&[pdq["hash"].as_str().expect("hash")], "csam").await;
    let again = n
        .call_raw(
            "POST",
            "/v1/match",
            Some(&n.matcher),
            Some(fixture("nearflat_160x120.png")),
            Some("image/png"),
        )
        .await;
    let pdq = result_of(&again.body, "pdq");
    assert_eq!(pdq["hits"], json!([]), "{pdq}");
    net.shutdown().await;
}

#[tokio::test]
async fn corrupt_image_is_a_clear_error_and_exact_kinds_still_match() {
    let net = TestNet::new(1).await.expect("testnet");
    let n = &net.nodes[0];
    let mut broken = b"\x89PNG\r\n\x1a\n".to_vec();
    broken.extend_from_slice(b"this is not the rest of a png");
    let sha =
        n.call_raw("POST", "/v1/match", Some(&n.matcher), Some(broken.clone()), Some("image/png")).await;
    assert_eq!(sha.status, 200, "{sha:?}");
    assert!(sha.body["image_error"].as_str().is_some_and(|e| e.contains("cannot decode image")), "{sha:?}");
    let sha256 = result_of(&sha.body, "sha256");
    n.submit(&[sha256["hash"].as_str().expect("hash")], "drugs").await;
    let again = n.call_raw("POST", "/v1/match", Some(&n.matcher), Some(broken), Some("image/png")).await;
    // A lone member's entry is never verified by its author alone: matches go to review.
    assert_eq!(again.body["action"], "review", "single-member federation: pending: {again:?}");
    assert_eq!(result_of(&again.body, "sha256")["hits"][0]["status"], "pending", "{again:?}");
    // The same upload as a multipart form, as browsers and most HTTP tools send files.
    let mut form = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.png\"\r\nContent-Type: image/png\r\n\r\n".to_vec();
    form.extend_from_slice(b"\x89PNG\r\n\x1a\nthis is not the rest of a png");
    form.extend_from_slice(b"\r\n--XyZ--\r\n");
    let multipart = n
        .call_raw(
            "POST",
            "/v1/match",
            Some(&n.matcher),
            Some(form),
            Some("multipart/form-data; boundary=XyZ"),
        )
        .await;
    assert_eq!(multipart.body["action"], "review", "{multipart:?}");
    let empty = n.call_raw("POST", "/v1/match", Some(&n.matcher), Some(Vec::new()), Some("image/png")).await;
    assert_eq!(empty.status, 400, "{empty:?}");
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_allow_list_entry_suppresses_perceptual_hits_federation_wide() {
    let net = TestNet::new(2).await.expect("testnet");
    let (a, b) = (&net.nodes[0], &net.nodes[1]);
    let listed = "pdq:f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
    // The same hash with 12 of its first 16 bits flipped: a perceptual near-duplicate.
    let meme = "pdq:0708f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
    let md5 = "md5:0123456789abcdef0123456789abcdef";
    let illegal = a.submit(&[listed, md5], "csam").await;
    let reply = b
        .call(
            "POST",
            "/v1/entries",
            Some(&b.submitter),
            Some(json!({ "fingerprints": [meme], "category": "benign", "note": "a common meme; its PDQ collides" })),
        )
        .await;
    assert_eq!(reply.status, 201, "any federation accepts allow-list entries: {reply:?}");
    let benign = reply.body["id"].as_str().expect("id").to_owned();
    for (node, id) in [(a, &benign), (b, &illegal)] {
        wait_until("replicated", || async { node.entry_status(id).is_some() }).await.expect("replicated");
    }

    // Pending, the allow-list entry suppresses nothing; a match on it asks for no action.
    let pending = lookup(a, &[meme, md5]).await;
    let hits = &pending["results"][0]["hits"];
    assert_eq!(hits.as_array().map(Vec::len), Some(2), "{pending}");
    assert_eq!(
        (hits[0]["entry"].as_str(), hits[0]["action"].as_str()),
        (Some(illegal.as_str()), Some("review"))
    );
    assert_eq!(
        (hits[1]["entry"].as_str(), hits[1]["action"].as_str()),
        (Some(benign.as_str()), Some("none"))
    );
    assert!(pending["results"][0].get("suppressed").is_none(), "{pending}");

    // Verified by the other member, it suppresses the perceptual hit at every node.
    assert_eq!(a.vote(&benign, "confirm").await.status, 201);
    wait_until("b sees it verified", || async {
        b.entry_status(&benign).map(|s| s.name()) == Some("verified")
    })
    .await
    .expect("verified");
    let verified = lookup(b, &[meme, md5]).await;
    let first = &verified["results"][0];
    assert_eq!(first["hits"].as_array().map(Vec::len), Some(1), "{verified}");
    assert_eq!(first["hits"][0]["entry"].as_str(), Some(benign.as_str()));
    let suppressed = &first["suppressed"][0];
    assert_eq!(suppressed["entry"].as_str(), Some(illegal.as_str()), "{verified}");
    assert_eq!(suppressed["by"].as_str(), Some(benign.as_str()));
    assert_eq!(suppressed["reason"].as_str(), Some("a common meme; its PDQ collides"));
    assert_eq!(suppressed["distance"], 12);
    // The exact hash of the listed content is no collision: it still matches.
    assert_eq!(verified["results"][1]["hits"][0]["entry"].as_str(), Some(illegal.as_str()), "{verified}");
    assert_eq!(verified["action"].as_str(), Some("review"));
    net.shutdown().await;
}

async fn lookup(node: &hashmesh_tests::TestNode, hashes: &[&str]) -> Value {
    node.call("POST", "/v1/match/hashes", Some(&node.matcher), Some(json!({ "hashes": hashes }))).await.body
}
