//! The RPC, driven over real HTTP: the happy path, restart durability, and one test per kind
//! of bad input (each must be a 4xx with a message that says what is wrong).

use hashmesh_protocol::Record;
use hashmesh_tests::{TestNet, TestNode};
use serde_json::json;

const MD5: &str = "md5:0123456789abcdef0123456789abcdef";

async fn one() -> (TestNet, String) {
    let net = TestNet::new(2).await.expect("testnet starts");
    let id = net.nodes[0].submit(&[MD5], "csam").await;
    (net, id)
}

/// Copies every record node `from` holds by its own member to node `to`, as replication would.
async fn copy_log(from: &TestNode, to: &TestNode) {
    let reply =
        from.call("GET", &format!("/v1/records?author={}", from.member), Some(&from.matcher), None).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    for raw in reply.body.as_array().expect("array") {
        let bytes = hex_decode(raw["bytes"].as_str().expect("bytes"));
        let record = Record::decode(&bytes).expect("decodes");
        to.handle().ingest(record).await.expect("ingests");
    }
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

#[tokio::test]
async fn entry_is_listed_voted_matched_and_survives_restart() {
    let (mut net, id) = one().await;
    let (a, b) = (&net.nodes[0], &net.nodes[1]);
    copy_log(a, b).await;

    let listed = b.call("GET", "/v1/entries?status=pending", Some(&b.matcher), None).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body["entries"][0]["id"], id.as_str());

    let vote = b
        .call("POST", &format!("/v1/entries/{id}/votes"), Some(&b.admin), Some(json!({"verdict": "confirm"})))
        .await;
    assert_eq!(vote.status, 201, "{vote:?}");
    let shown = b.call("GET", &format!("/v1/entries/{id}"), Some(&b.matcher), None).await;
    assert_eq!(shown.body["status"], "verified", "2 members: one confirmation verifies");
    assert_eq!(shown.body["votes"][0]["verdict"], "confirm");

    let matched = b.call("POST", "/v1/match/hashes", Some(&b.matcher), Some(json!({"hashes": [MD5]}))).await;
    assert_eq!(matched.status, 200);
    assert_eq!(matched.body["results"][0]["hits"][0]["entry"], id.as_str());
    assert_eq!(matched.body["action"], "remove");

    let node = &mut net.nodes[1];
    node.stop().await;
    node.start().await.expect("restarts");
    let shown = node.call("GET", &format!("/v1/entries/{id}"), Some(&node.matcher), None).await;
    assert_eq!(shown.status, 200);
    assert_eq!(shown.body["status"], "verified");
    net.shutdown().await;
}

#[tokio::test]
async fn malformed_json_is_400() {
    let (net, _) = one().await;
    let n = &net.nodes[0];
    let r = n
        .call_raw(
            "POST",
            "/v1/entries",
            Some(&n.submitter),
            Some(b"{\"fingerprints\": [".to_vec()),
            Some("application/json"),
        )
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.error().contains("invalid JSON"), "{r:?}");
    net.shutdown().await;
}

#[tokio::test]
async fn unknown_fingerprint_kind_is_422() {
    let (net, _) = one().await;
    let n = &net.nodes[0];
    let r = n
        .call(
            "POST",
            "/v1/entries",
            Some(&n.submitter),
            Some(json!({"fingerprints": ["crc32:00112233"], "category": "csam"})),
        )
        .await;
    assert_eq!(r.status, 422, "{r:?}");
    assert!(r.error().contains("unknown fingerprint kind \"crc32\""), "{r:?}");
    net.shutdown().await;
}

#[tokio::test]
async fn wrong_hex_length_is_422() {
    let (net, _) = one().await;
    let n = &net.nodes[0];
    let r =
        n.call("POST", "/v1/match/hashes", Some(&n.matcher), Some(json!({"hashes": ["sha256:abcd"]}))).await;
    assert_eq!(r.status, 422, "{r:?}");
    assert!(r.error().contains("sha256 fingerprint is 32 bytes"), "{r:?}");
    net.shutdown().await;
}

#[tokio::test]
async fn unknown_entry_id_is_404_and_bad_id_is_400() {
    let (net, _) = one().await;
    let n = &net.nodes[0];
    let r = n.call("GET", &format!("/v1/entries/{}", "ab".repeat(32)), Some(&n.matcher), None).await;
    assert_eq!(r.status, 404, "{r:?}");
    assert!(r.error().contains("no entry with id"), "{r:?}");
    let r = n.call("GET", "/v1/entries/not-an-id", Some(&n.matcher), None).await;
    assert_eq!(r.status, 400, "{r:?}");
    net.shutdown().await;
}

#[tokio::test]
async fn voting_on_own_entry_is_403() {
    let (net, id) = one().await;
    let n = &net.nodes[0];
    let r = n
        .call("POST", &format!("/v1/entries/{id}/votes"), Some(&n.admin), Some(json!({"verdict": "confirm"})))
        .await;
    assert_eq!(r.status, 403, "{r:?}");
    assert!(r.error().contains("other members' entries"), "{r:?}");
    net.shutdown().await;
}

#[tokio::test]
async fn retracting_another_members_entry_is_403() {
    let (net, id) = one().await;
    copy_log(&net.nodes[0], &net.nodes[1]).await;
    let b = &net.nodes[1];
    let r = b.call("POST", &format!("/v1/entries/{id}/retract"), Some(&b.admin), Some(json!({}))).await;
    assert_eq!(r.status, 403, "{r:?}");
    assert!(r.error().contains("only its author can retract"), "{r:?}");
    // The author can, once.
    let a = &net.nodes[0];
    let r = a.call("POST", &format!("/v1/entries/{id}/retract"), Some(&a.admin), None).await;
    assert_eq!(r.status, 201, "{r:?}");
    let r = a.call("POST", &format!("/v1/entries/{id}/retract"), Some(&a.admin), None).await;
    assert_eq!(r.status, 409, "{r:?}");
    let matched = a.call("POST", "/v1/match/hashes", Some(&a.matcher), Some(json!({"hashes": [MD5]}))).await;
    assert_eq!(matched.body["results"][0]["hits"][0]["status"], "retracted");
    assert_eq!(matched.body["action"], "none");
    net.shutdown().await;
}

#[tokio::test]
async fn missing_wrong_or_weak_token_is_refused() {
    let (net, id) = one().await;
    let n = &net.nodes[0];
    let r = n.call("GET", "/v1/status", None, None).await;
    assert_eq!(r.status, 401, "{r:?}");
    assert!(r.error().contains("Authorization: Bearer"), "{r:?}");
    let r = n.call("GET", "/v1/status", Some("hm_wrong"), None).await;
    assert_eq!(r.status, 401, "{r:?}");
    let r = n
        .call(
            "POST",
            "/v1/entries",
            Some(&n.matcher),
            Some(json!({"fingerprints": [MD5], "category": "csam"})),
        )
        .await;
    assert_eq!(r.status, 403, "a matcher cannot submit: {r:?}");
    let r = n.call("POST", &format!("/v1/entries/{id}/retract"), Some(&n.submitter), None).await;
    assert_eq!(r.status, 403, "a submitter cannot retract: {r:?}");
    net.shutdown().await;
}

#[tokio::test]
async fn oversized_body_is_413() {
    let (net, _) = one().await;
    let n = &net.nodes[0];
    // Announce a 2 MiB body (the limit is 1 MiB) and send none of it: the node must refuse
    // from the header alone. (Sending the body too would race the server's close against
    // the client's write, and the test would be about TCP, not the node.)
    let addr = n.rpc().trim_start_matches("http://").to_owned();
    let token = n.matcher.clone();
    let raw = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).expect("timeout");
        let head = format!(
            "POST /v1/match/hashes HTTP/1.1\r\nHost: node\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            2 * 1024 * 1024
        );
        stream.write_all(head.as_bytes()).expect("write");
        let mut reply = String::new();
        let _ = stream.read_to_string(&mut reply);
        reply
    })
    .await
    .expect("client");
    assert!(raw.starts_with("HTTP/1.1 413"), "{raw}");
    assert!(raw.contains("larger than rpc.max_body_bytes"), "{raw}");
    net.shutdown().await;
}

#[tokio::test]
async fn other_bad_inputs_say_what_is_wrong() {
    let (net, _) = one().await;
    let n = &net.nodes[0];
    let r = n
        .call(
            "POST",
            "/v1/entries",
            Some(&n.submitter),
            Some(json!({"fingerprints": [MD5], "category": "spam"})),
        )
        .await;
    assert_eq!(r.status, 422, "category not in manifest: {r:?}");
    assert!(r.error().contains("not allowed"), "{r:?}");
    let r = n
        .call(
            "POST",
            "/v1/entries",
            Some(&n.submitter),
            Some(json!({"fingerprints": [], "category": "csam"})),
        )
        .await;
    assert_eq!(r.status, 422, "{r:?}");
    let r = n
        .call(
            "POST",
            "/v1/entries",
            Some(&n.submitter),
            Some(json!({"fingerprints": [MD5], "category": "csam", "note": "x".repeat(5000)})),
        )
        .await;
    assert_eq!(r.status, 422, "note too long: {r:?}");
    let r =
        n.call_raw("POST", "/v1/entries", Some(&n.submitter), Some(b"{}".to_vec()), Some("text/plain")).await;
    assert_eq!(r.status, 415, "{r:?}");
    let r = n.call("GET", "/v1/entries?status=bogus", Some(&n.matcher), None).await;
    assert_eq!(r.status, 400, "{r:?}");
    let r = n.call("GET", "/v1/nothing", Some(&n.matcher), None).await;
    assert_eq!(r.status, 404, "{r:?}");
    let r = n.call("DELETE", "/v1/status", Some(&n.matcher), None).await;
    assert_eq!(r.status, 405, "{r:?}");
    let r = n.call("POST", "/v1/match/hashes", Some(&n.matcher), Some(json!({"hashes": []}))).await;
    assert_eq!(r.status, 422, "{r:?}");
    net.shutdown().await;
}
