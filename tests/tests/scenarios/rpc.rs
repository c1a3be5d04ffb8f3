//! The RPC, driven over real HTTP: the happy path, restart durability, and one test per kind
//! of bad input (each must be a 4xx with a message that says what is wrong).

use hashmesh_protocol::Record;
use hashmesh_tests::{TestNet, TestNode, wait_until};
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

/// Sends only the head of a POST announcing a `length`-byte JSON body and none of it: what
/// the node answers from the head alone. (Sending the body too would race the server's close
/// against the client's write, and the test would be about TCP, not the node.)
async fn answer_to_head(node: &TestNode, path: &str, token: Option<&str>, length: usize) -> String {
    let addr = node.rpc().trim_start_matches("http://").to_owned();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: node\r\n{auth}Content-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    );
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).expect("timeout");
        stream.write_all(head.as_bytes()).expect("write");
        let mut reply = String::new();
        let _ = stream.read_to_string(&mut reply);
        reply
    })
    .await
    .expect("client")
}

/// A body is refused from the request's head, before any of it is read: 401 without a known
/// token (32 MiB announced, nothing parsed), 413 when a JSON body is over 1 MiB.
#[tokio::test]
async fn oversized_or_unauthenticated_bodies_are_refused_before_they_are_read() {
    let (net, _) = one().await;
    let n = &net.nodes[0];
    let huge = 32 * 1024 * 1024;
    let raw = answer_to_head(n, "/v1/entries", None, huge).await;
    assert!(raw.starts_with("HTTP/1.1 401"), "{raw}");
    assert!(raw.contains("missing `Authorization: Bearer <token>`"), "{raw}");
    let raw = answer_to_head(n, "/v1/match/hashes", Some("hm_not_a_token"), huge).await;
    assert!(raw.starts_with("HTTP/1.1 401") && raw.contains("unknown token"), "{raw}");
    // HMA's endpoints refuse the same way, in HMA's error shape.
    let raw = answer_to_head(n, "/m/lookup", None, huge).await;
    assert!(raw.starts_with("HTTP/1.1 401") && raw.contains("\"message\""), "{raw}");

    let raw = answer_to_head(n, "/v1/match/hashes", Some(&n.matcher), 2 * 1024 * 1024).await;
    assert!(raw.starts_with("HTTP/1.1 413"), "{raw}");
    assert!(raw.contains("larger than this endpoint allows"), "{raw}");
    net.shutdown().await;
}

/// Each bad input is refused with its own status and a message naming what is wrong.
#[tokio::test]
async fn other_bad_inputs_say_what_is_wrong() {
    let (net, _) = one().await;
    let n = &net.nodes[0];
    let entry = |body: serde_json::Value| ("POST", "/v1/entries", Some(body), n.submitter.clone());
    let cases = [
        (
            entry(json!({"fingerprints": [MD5], "category": "spam"})),
            422,
            "category \"spam\" is not allowed by the federation manifest",
        ),
        (
            entry(json!({"fingerprints": [], "category": "csam"})),
            422,
            "an entry needs at least one fingerprint",
        ),
        (
            entry(json!({"fingerprints": [MD5], "category": "csam", "note": "x".repeat(5000)})),
            422,
            "note has 5000 items/bytes, the limit is 4096",
        ),
        (
            ("GET", "/v1/entries?status=bogus", None, n.matcher.clone()),
            400,
            "status: unknown variant `bogus`, expected one of `pending`",
        ),
        (
            ("GET", "/v1/entries/not-an-id", None, n.matcher.clone()),
            400,
            "\"not-an-id\" is not an entry id (64 hex digits)",
        ),
        (
            ("POST", "/v1/match/hashes", Some(json!({"hashes": []})), n.matcher.clone()),
            422,
            "`hashes` is empty: send at least one kind:hex",
        ),
        (("GET", "/v1/nothing", None, n.matcher.clone()), 404, "no such endpoint; see /openapi.json"),
        (
            ("DELETE", "/v1/status", None, n.matcher.clone()),
            405,
            "method not allowed on this endpoint; see /openapi.json",
        ),
    ];
    for ((method, path, body, token), status, message) in cases {
        let r = n.call(method, path, Some(&token), body).await;
        assert_eq!(r.status, status, "{method} {path}: {r:?}");
        assert!(r.error().contains(message), "{method} {path} says {message:?}: {r:?}");
    }
    let r =
        n.call_raw("POST", "/v1/entries", Some(&n.submitter), Some(b"{}".to_vec()), Some("text/plain")).await;
    assert_eq!(r.status, 415, "{r:?}");
    assert!(r.error().contains("send the body as JSON with `Content-Type: application/json`"), "{r:?}");
    net.shutdown().await;
}

fn md5(n: u32) -> String {
    format!("md5:{n:032x}")
}

/// Submits through the RPC with extra fields; the new entry's id.
async fn submit_with(node: &TestNode, fingerprint: &str, category: &str, extra: serde_json::Value) -> String {
    let mut body = json!({ "fingerprints": [fingerprint], "category": category });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let reply = node.call("POST", "/v1/entries", Some(&node.submitter), Some(body)).await;
    assert_eq!(reply.status, 201, "{reply:?}");
    reply.body["id"].as_str().expect("id").to_owned()
}

/// Ids listed by `GET path`, following `next_cursor` page by page; also the number of pages.
async fn list_all(node: &TestNode, query: &str) -> (Vec<String>, usize) {
    let (mut ids, mut pages, mut cursor) = (Vec::new(), 0, None::<String>);
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/entries?{query}&cursor={c}"),
            None => format!("/v1/entries?{query}"),
        };
        let page = node.call("GET", &path, Some(&node.matcher), None).await;
        assert_eq!(page.status, 200, "{path}: {page:?}");
        pages += 1;
        for e in page.body["entries"].as_array().expect("entries") {
            ids.push(e["id"].as_str().expect("id").to_owned());
        }
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return (ids, pages),
        }
        assert!(pages < 100, "paging never ends");
    }
}

/// Node0 writes seven entries; node1 and node2 confirm and dispute them, node0 retracts one.
/// Every node derives the same status for each, and `?status=` lists exactly the entries in
/// that status (every status is held by some entry, so a filter that is ignored fails).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_derives_the_same_status_from_votes_and_retractions_made_elsewhere() {
    let net = TestNet::new(3).await.expect("testnet");
    let (a, b, c) = (&net.nodes[0], &net.nodes[1], &net.nodes[2]);
    let mut ids = Vec::new();
    for n in 1..=5 {
        ids.push(a.submit(&[&md5(n)], "csam").await);
    }
    // One that lapses in a moment (an expiry in the past is refused at submit); and one that
    // lapses in 2100.
    let lapses = hashmesh_node::node::now_ms() + 2_000;
    ids.push(submit_with(a, &md5(6), "drugs", json!({ "expires_at": lapses })).await);
    ids.push(submit_with(a, &md5(7), "drugs", json!({ "expires_at": 4_102_444_800_000_u64 })).await);
    net.wait_converged(&[0, 1, 2], 7).await.expect("entries everywhere");
    let votes = [
        (b, 0, "confirm"),
        (c, 0, "confirm"),
        (b, 1, "confirm"),
        (b, 2, "dispute"),
        (b, 3, "dispute"),
        (c, 3, "dispute"),
        (b, 5, "confirm"),
        (c, 5, "confirm"),
        (b, 6, "confirm"),
        (c, 6, "confirm"),
    ];
    for (node, entry, verdict) in votes {
        let reply = node.vote(&ids[entry], verdict).await;
        assert_eq!(reply.status, 201, "{verdict} on entry {entry}: {reply:?}");
    }
    let reply = a.call("POST", &format!("/v1/entries/{}/retract", ids[4]), Some(&a.admin), None).await;
    assert_eq!(reply.status, 201, "{reply:?}");
    net.wait_converged(&[0, 1, 2], 7 + votes.len() + 1).await.expect("votes everywhere");
    wait_until("the short expiry to pass", || async { hashmesh_node::node::now_ms() > lapses })
        .await
        .expect("time passes");
    let expected = [
        "verified",  // two confirmations (2 of the 2 other members)
        "pending",   // one of two
        "disputed",  // one dispute, below the quorum of 2
        "rejected",  // two disputes
        "retracted", // by its author
        "expired",   // confirmed, but past its expiry
        "verified",  // confirmed, expiry in the future
    ];
    for node in &net.nodes {
        for (id, want) in ids.iter().zip(expected) {
            let shown = node.call("GET", &format!("/v1/entries/{id}"), Some(&node.matcher), None).await;
            assert_eq!(shown.body["status"], want, "{} on {id}: {shown:?}", node.name);
        }
        for status in ["pending", "verified", "disputed", "rejected", "retracted", "expired"] {
            let (listed, _) = list_all(node, &format!("status={status}")).await;
            let mut want: Vec<String> =
                ids.iter().zip(expected).filter(|(_, s)| *s == status).map(|(id, _)| id.clone()).collect();
            want.sort();
            assert_eq!(listed, want, "{} ?status={status}", node.name);
        }
    }
    // A match after an entry's expiry asks for no action; a verified one for removal.
    for (hash, action, status) in [(md5(6), "none", "expired"), (md5(7), "remove", "verified")] {
        let matched =
            c.call("POST", "/v1/match/hashes", Some(&c.matcher), Some(json!({ "hashes": [hash] }))).await;
        assert_eq!(matched.status, 200, "{matched:?}");
        assert_eq!(matched.body["results"][0]["hits"][0]["status"], status, "{matched:?}");
        assert_eq!(matched.body["action"], action, "{matched:?}");
    }
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_are_listed_by_category_and_author_page_by_page() {
    let net = TestNet::new(2).await.expect("testnet");
    let (a, b) = (&net.nodes[0], &net.nodes[1]);
    let mut drugs_by_a = Vec::new();
    for n in 0..5 {
        drugs_by_a.push(a.submit(&[&md5(n)], "drugs").await);
    }
    let csam_by_a = a.submit(&[&md5(10)], "csam").await;
    let drugs_by_b = b.submit(&[&md5(11)], "drugs").await;
    net.wait_converged(&[0, 1], 7).await.expect("converged");
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let (all, pages) = list_all(b, "limit=1000").await;
    let mut every = drugs_by_a.clone();
    every.extend([csam_by_a.clone(), drugs_by_b.clone()]);
    assert_eq!((all.clone(), pages), (sorted(every), 1), "in id order, one page");
    let (paged, pages) = list_all(b, "limit=2").await;
    assert_eq!((paged, pages), (all.clone(), 4), "7 entries, 2 a page");
    let (paged, pages) = list_all(b, "limit=1").await;
    assert_eq!((paged, pages), (all, 7));
    let mut drugs = drugs_by_a.clone();
    drugs.push(drugs_by_b.clone());
    let (listed, pages) = list_all(b, "category=drugs&limit=3").await;
    assert_eq!((listed, pages), (sorted(drugs), 2), "6 drugs entries, no empty last page");
    let (listed, _) = list_all(b, "category=csam").await;
    assert_eq!(listed, vec![csam_by_a.clone()]);
    let (listed, pages) = list_all(b, &format!("author={}&category=drugs&limit=5", a.member)).await;
    assert_eq!((listed, pages), (sorted(drugs_by_a.clone()), 1), "exactly full: no next cursor");
    let (listed, _) = list_all(b, &format!("author={}", b.member)).await;
    assert_eq!(listed, vec![drugs_by_b]);
    // The page after the last entry is empty.
    let last = sorted(drugs_by_a).pop().expect("one");
    let (after, _) = list_all(b, &format!("author={}&cursor={last}", a.member)).await;
    assert!(after.iter().all(|id| *id > last), "only ids after the cursor: {after:?}");
    net.shutdown().await;
}

/// Every operation in `/openapi.json` is routed, and every one the document secures needs a
/// token: without one it is 401; with a token of a weaker role it is 403 naming both roles;
/// with a strong enough one it gets past authorization. The open ones answer without a token.
/// Driven by the document, so a route added to it is checked here with no change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_checks_its_role() {
    let (net, _) = one().await;
    let n = &net.nodes[0];
    let document = n.call_raw("GET", "/openapi.json", None, None, None).await.body;
    let paths = document["paths"].as_object().expect("the document has paths");
    // The roles above matcher; every other secured operation needs a matcher token.
    let needs = |method: &str, path: &str| match (method, path) {
        ("POST", "/v1/entries" | "/v1/import") => "Submitter",
        ("POST", "/v1/entries/{id}/votes" | "/v1/entries/{id}/retract")
        | ("POST", "/v1/membership/proposals" | "/v1/membership/proposals/{id}/approve")
        | ("POST", "/v1/stats/publish")
        | ("GET", "/v1/queue" | "/v1/webhooks") => "Admin",
        _ => "Matcher",
    };
    // Ids nothing has: a route that acts on an entry or proposal answers 404 once authorized,
    // and nothing is voted on, approved or retracted.
    let id = "ab".repeat(32);
    let rank = |role: &str| ["Matcher", "Submitter", "Admin"].iter().position(|r| *r == role).expect("role");
    let tokens = [
        ("matcher", "Matcher", &n.matcher),
        ("submitter", "Submitter", &n.submitter),
        ("admin", "Admin", &n.admin),
    ];
    let mut operations = 0;
    for (template, item) in paths {
        let path = template.replace("{id}", &id).replace("{bank}", "CSAM");
        for (method, operation) in item.as_object().expect("a path item") {
            let method = method.to_ascii_uppercase();
            operations += 1;
            let open = operation["security"] == json!([{}]);
            // No body: a route past authorization refuses the (missing) body instead, so
            // nothing is written by this test.
            let r = n.call_raw(&method, &path, None, None, None).await;
            let fallback = [404, 405].contains(&r.status) && r.error().contains("see /openapi.json");
            assert!(!fallback, "{method} {template} is in the document but not routed: {r:?}");
            if open {
                assert_eq!(r.status, 200, "{method} {template} is open: {r:?}");
                continue;
            }
            // HMA's routes answer in HMA's shape, `{"message": …}`.
            let said = |r: &hashmesh_tests::Reply| r.body["message"].as_str().unwrap_or(r.error()).to_owned();
            assert_eq!(r.status, 401, "{method} {template} without a token: {r:?}");
            assert!(
                said(&r).contains("missing `Authorization: Bearer <token>`"),
                "{method} {template}: {r:?}"
            );
            let r = n.call_raw(&method, &path, Some("hm_not_a_token"), None, None).await;
            assert_eq!((r.status, said(&r).as_str()), (401, "unknown token"), "{method} {template}: {r:?}");
            let needed = needs(&method, template);
            for (name, role, token) in tokens {
                let r = n.call_raw(&method, &path, Some(token), None, None).await;
                if rank(role) < rank(needed) {
                    assert_eq!(r.status, 403, "{method} {template} as {role}: {r:?}");
                    let want = format!("token \"{name}\" has role {role}; this call needs {needed}");
                    assert_eq!(r.error(), want, "{method} {template}: {r:?}");
                } else {
                    assert!(![401, 403].contains(&r.status), "{method} {template} as {role}: {r:?}");
                }
            }
        }
    }
    assert!(operations >= 40, "the document names every route: {operations} operations");
    net.shutdown().await;
}

/// Opens a connection to `node`'s RPC and sends `head` (maybe only part of a request).
fn connect(node: &TestNode, head: &str) -> std::net::TcpStream {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(node.rpc().trim_start_matches("http://")).expect("connect");
    stream.set_read_timeout(Some(hashmesh_tests::WAIT)).expect("timeout");
    stream.write_all(head.as_bytes()).expect("write");
    stream
}

/// Reads until the server closes the connection; what it sent, if anything.
fn until_closed(mut stream: std::net::TcpStream) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    stream.read_to_string(&mut text).map(|_| text)
}

/// Whether `GET /healthz` on a new connection to `addr` is answered 200; false if the
/// connection is refused, reset or closed unanswered.
fn healthz_over(addr: &str) -> bool {
    use std::io::Write;
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else { return false };
    let _ = stream.set_read_timeout(Some(hashmesh_tests::WAIT));
    let head = "GET /healthz HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n";
    stream.write_all(head.as_bytes()).is_ok()
        && until_closed(stream).is_ok_and(|text| text.contains("200 OK"))
}

/// A client that never finishes its request's head is cut off after `rpc.header_timeout`,
/// while others are served; connections over `rpc.max_connections` are closed as they arrive
/// (and counted), and served again once one closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_connections_are_capped() {
    let (mut net, _) = one().await;
    let restart = async |node: &mut TestNode, header_timeout_ms: u64, max_connections: usize| {
        node.stop().await;
        node.configure(|c| {
            c.rpc.header_timeout = std::time::Duration::from_millis(header_timeout_ms);
            c.rpc.max_connections = max_connections;
        })
        .expect("configured");
        node.start().await.expect("restarts");
    };

    // Three idle connections fill a cap of three; a fourth is closed unanswered.
    restart(&mut net.nodes[0], 60_000, 3).await;
    let n = &net.nodes[0];
    let idle: Vec<_> = (0..3).map(|_| connect(n, "")).collect();
    let over = connect(n, "GET /healthz HTTP/1.1\r\nHost: node\r\n\r\n");
    let refused = tokio::task::spawn_blocking(move || until_closed(over)).await.expect("reader");
    assert!(refused.as_deref().map_or(true, str::is_empty), "closed unanswered: {refused:?}");
    drop(idle);
    // The node sees the idle connections close a moment after they do; until then a new one
    // is still over the cap and reset, so each try is a raw connection that may fail.
    let addr = n.rpc().trim_start_matches("http://").to_owned();
    wait_until("a new connection to be served once the idle ones are gone", || {
        let addr = addr.clone();
        async move { tokio::task::spawn_blocking(move || healthz_over(&addr)).await.unwrap_or(false) }
    })
    .await
    .expect("served again");
    let metrics = n.scrape().await;
    assert!(metrics.value("hashmesh_rpc_connections_refused_total", &[]) >= Some(1.0), "counted");

    // A client that never finishes its head is cut off; others are served meanwhile.
    restart(&mut net.nodes[0], 500, 1024).await;
    let n = &net.nodes[0];
    let slow = connect(n, "GET /v1/status HTTP/1.1\r\nHost: node\r\n");
    assert_eq!(n.call("GET", "/healthz", None, None).await.status, 200, "served while a slow client waits");
    let cut = tokio::task::spawn_blocking(move || until_closed(slow)).await.expect("reader");
    assert!(cut.is_ok_and(|text| !text.contains("200 OK")), "the slow client is cut off, never answered");
}
