//! A client of Meta's Hasher-Matcher-Actioner pointed at a hashmesh node: the requests HMA's
//! own tests and docs send (query strings, multipart fields named for the content type), and
//! the exact JSON HMA answers with — banks, integer content ids, string distances,
//! `{"message": …}` errors.

use hashmesh_tests::{TestNet, TestNode, fixture, png};
use serde_json::json;

const BOUNDARY: &str = "hmaFormBoundary";

/// A multipart form as `curl --form photo=@x.png` or `requests.post(files=…)` sends it:
/// one part per (field, bytes), each with a filename.
fn form(parts: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (field, bytes) in parts {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"upload.bin\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn post_form(node: &TestNode, path: &str, parts: &[(&str, &[u8])]) -> hashmesh_tests::Reply {
    let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
    node.call_raw("POST", path, Some(&node.matcher), Some(form(parts)), Some(&content_type)).await
}

async fn get(node: &TestNode, path: &str) -> hashmesh_tests::Reply {
    node.call("GET", path, Some(&node.matcher), None).await
}

/// The HMA content id the README documents: the first 53 bits of the entry id.
fn content_id(entry: &str) -> u64 {
    u64::from_str_radix(&entry[..16], 16).expect("hex") >> 11
}

/// `pdq` hex with 3 bits flipped: a near duplicate at distance 3.
fn near(pdq: &str) -> String {
    let first = u8::from_str_radix(&pdq[..1], 16).expect("hex") ^ 0b0111;
    format!("{first:x}{}", &pdq[1..])
}

#[tokio::test]
async fn hma_hash_answers_signal_type_to_hash_for_photo_and_video_uploads() {
    let net = TestNet::new(1).await.expect("testnet");
    let n = &net.nodes[0];
    let photo = fixture("coffee.png");

    let hashed = post_form(n, "/h/hash", &[("photo", &photo)]).await;
    assert_eq!(hashed.status, 200, "{hashed:?}");
    let pdq = hashed.body["pdq"].as_str().expect("pdq").to_owned();
    assert_eq!(hashed.body, json!({ "pdq": pdq }), "one key per signal type of the content type");
    // The same PDQ the node's own match endpoint computes.
    let ours =
        n.call_raw("POST", "/v1/match", Some(&n.matcher), Some(photo.clone()), Some("image/png")).await;
    let results = ours.body["results"].as_array().expect("results");
    assert!(results.iter().any(|r| r["hash"] == format!("pdq:{pdq}").as_str()), "{ours:?}");

    let video = post_form(n, "/h/hash", &[("video", b"abc")]).await;
    assert_eq!(
        video.body,
        json!({
            "video_md5": "900150983cd24fb0d6963f7d28e17f72",
            "video_sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        })
    );
    // HMA's PdqSignal answers "" for a hash below quality 50.
    let flat = post_form(n, "/h/hash", &[("photo", &fixture("nearflat_160x120.png"))]).await;
    assert_eq!(flat.body, json!({ "pdq": "" }));

    // HMA's errors, as {"message": …} with its status codes.
    let cases: Vec<(hashmesh_tests::Reply, u16, &str)> = vec![
        (
            n.call_raw("POST", "/h/hash", Some(&n.matcher), Some(photo.clone()), Some("image/png")).await,
            400,
            "Missing multipart/form-data file upload",
        ),
        (post_form(n, "/h/hash", &[]).await, 400, "Missing multipart/form-data file upload"),
        (
            post_form(n, "/h/hash", &[("photo", &photo), ("photo", &photo)]).await,
            400,
            "Only one file allowed per request",
        ),
        (post_form(n, "/h/hash", &[("audio", b"x")]).await, 400, "no such content_type: 'audio'"),
        // A part beside the file that names no content type is refused, not skipped.
        (
            post_form(n, "/h/hash", &[("photo", &photo), ("note", b"hi")]).await,
            400,
            "no such content_type: 'note'",
        ),
    ];
    for (reply, status, message) in cases {
        assert_eq!((reply.status, &reply.body), (status, &json!({ "message": message })));
    }
    let broken = post_form(n, "/h/hash", &[("photo", b"\x89PNG\r\n\x1a\nnot a png")]).await;
    assert_eq!(broken.status, 400);
    assert!(
        broken.body["message"].as_str().is_some_and(|m| m.starts_with("cannot hash the photo")),
        "{broken:?}"
    );

    // The node never downloads what a caller names (SSRF); it says to upload instead.
    let by_url = get(n, "/h/hash?url=http://169.254.169.254/latest/meta-data").await;
    assert_eq!(by_url.status, 400);
    assert!(by_url.body["message"].as_str().is_some_and(|m| m.contains("POST /h/hash")), "{by_url:?}");
    assert_eq!(get(n, "/h/hash").await.status, 422, "url is a required query parameter");

    // Our bearer token stays in front, with HMA's error shape.
    let anonymous = n.call_raw("POST", "/h/hash", None, Some(form(&[("photo", &photo)])), None).await;
    assert_eq!(anonymous.status, 401);
    assert!(anonymous.body["message"].is_string(), "{anonymous:?}");
    net.shutdown().await;
}

#[tokio::test]
async fn hma_lookups_answer_banks_content_ids_and_string_distances() {
    let net = TestNet::new(1).await.expect("testnet");
    let n = &net.nodes[0];
    let photo = fixture("coffee.png");
    let pdq =
        post_form(n, "/h/hash", &[("photo", &photo)]).await.body["pdq"].as_str().expect("pdq").to_owned();
    let video = b"a clip a platform removed".as_slice();
    let md5 = post_form(n, "/h/hash", &[("video", video)]).await.body["video_md5"]
        .as_str()
        .expect("md5")
        .to_owned();
    let url = hashmesh_node::hashers::url::fingerprint("https://example.com/p/1").expect("url").to_string();
    let csam = content_id(&n.submit(&[&format!("pdq:{pdq}")], "csam").await);
    let drugs = content_id(&n.submit(&[&format!("md5:{md5}")], "drugs").await);
    let harmful = content_id(&n.submit(&[&url], "harmful_behavior").await);

    // raw_lookup: ids, or ids with distances; `banks` keeps only those banks.
    let raw = |q: String| async move { get(n, &format!("/m/raw_lookup?{q}")).await };
    assert_eq!(raw(format!("signal={pdq}&signal_type=pdq")).await.body, json!({ "matches": [csam] }));
    assert_eq!(
        raw(format!("signal={}&signal_type=pdq&include_distance=True", near(&pdq))).await.body,
        json!({ "matches": [{ "bank_content_id": csam, "distance": "3" }] })
    );
    assert_eq!(
        raw(format!("signal={md5}&signal_type=video_md5&include_distance=true")).await.body,
        json!({ "matches": [{ "bank_content_id": drugs, "distance": "-" }] }),
        "exact types have no distance"
    );
    assert_eq!(raw(format!("signal={pdq}&signal_type=pdq&banks=DRUGS")).await.body, json!({ "matches": [] }));
    assert_eq!(
        raw(format!("signal={pdq}&signal_type=pdq&banks=DRUGS,CSAM")).await.body,
        json!({ "matches": [csam] })
    );

    // lookup by signal: bank → matches, no signal-type level; {} when nothing matches.
    assert_eq!(
        get(n, &format!("/m/lookup?signal_type=pdq&signal={pdq}")).await.body,
        json!({ "CSAM": [{ "bank_content_id": csam, "distance": "0" }] })
    );
    assert_eq!(get(n, &format!("/m/lookup?signal_type=pdq&signal={pdq}&banks=DRUGS")).await.body, json!({}));
    // A `url` signal is the URL itself, normalised as our `url` kind is.
    assert_eq!(
        get(n, "/m/lookup?signal_type=url&signal=HTTPS://Example.com/p/1?utm_source=feed").await.body,
        json!({ "HARMFUL_BEHAVIOR": [{ "bank_content_id": harmful, "distance": "-" }] })
    );

    // lookup by upload: signal type → bank → matches. A mirrored copy matches through PDQ's
    // dihedral variants.
    let img = image::load_from_memory(&photo).expect("decode");
    let mirrored = png(&img.fliph());
    let reply = post_form(n, "/m/lookup?bypass_coinflip=false", &[("photo", &mirrored)]).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let hit = &reply.body["pdq"]["CSAM"][0];
    assert_eq!(hit["bank_content_id"], csam, "{reply:?}");
    assert!(hit["distance"].as_str().and_then(|d| d.parse::<u32>().ok()).is_some_and(|d| d <= 31), "{hit}");
    let requests = n.scrape().await.sum("hashmesh_match_requests_total");
    assert_eq!(
        post_form(n, "/m/lookup", &[("video", video)]).await.body,
        json!({ "video_md5": { "DRUGS": [{ "bank_content_id": drugs, "distance": "-" }] }, "video_sha256": {} })
    );
    // One upload is one match request, whatever its signal types (here md5 and sha256).
    assert_eq!(n.scrape().await.sum("hashmesh_match_requests_total"), requests + 1.0);
    assert_eq!(
        post_form(n, "/m/lookup?banks=CSAM", &[("video", video)]).await.body,
        json!({ "video_md5": {}, "video_sha256": {} })
    );
    // A photo too flat to hash reliably matches nothing (HMA would answer 400 here).
    let flat = post_form(n, "/m/lookup", &[("photo", &fixture("nearflat_160x120.png"))]).await;
    assert_eq!((flat.status, flat.body), (200, json!({ "pdq": {} })));

    // Bad input: HMA's status codes and messages.
    let cases = [
        ("/m/raw_lookup?signal_type=pdq", 422, None),
        ("/m/raw_lookup?signal=x&signal_type=pdq&include_distance=maybe", 422, None),
        ("/m/lookup", 400, Some("Either url or both signal and signal_type are required")),
        ("/m/lookup?signal=ab&signal_type=pdq", 400, Some("invalid signal: invalid PDQ hash")),
        (
            "/m/lookup?signal=xyz&signal_type=video_md5",
            400,
            Some("invalid signal: \"xyz\" is not a valid MD5 hash"),
        ),
    ];
    for (path, status, message) in cases {
        let reply = get(n, path).await;
        assert_eq!(reply.status, status, "{path}: {reply:?}");
        assert!(reply.body["message"].is_string(), "{path}: {reply:?}");
        if let Some(message) = message {
            assert_eq!(reply.body, json!({ "message": message }), "{path}");
        }
    }
    let upper = get(n, &format!("/m/raw_lookup?signal={}&signal_type=pdq", pdq.to_uppercase())).await;
    assert_eq!((upper.status, upper.body), (400, json!({ "message": "invalid signal: invalid PDQ hash" })));
    let unknown = get(n, "/m/lookup?signal=abc&signal_type=url_md5").await;
    assert_eq!(unknown.status, 400);
    assert!(unknown.body["message"].as_str().is_some_and(|m| m.starts_with("No such SignalType 'url_md5'")));
    let by_url = get(n, "/m/lookup?url=http://10.0.0.1/admin").await;
    assert_eq!(by_url.status, 400);
    assert!(by_url.body["message"].as_str().is_some_and(|m| m.contains("does not download")), "{by_url:?}");
    net.shutdown().await;
}

#[tokio::test]
async fn hma_matches_only_entries_to_act_on_and_shows_the_rest_disabled() {
    let net = TestNet::new(1).await.expect("testnet");
    let n = &net.nodes[0];
    let pdq = post_form(n, "/h/hash", &[("photo", &fixture("coffee.png"))]).await.body["pdq"]
        .as_str()
        .expect("pdq")
        .to_owned();
    let entry = n.submit(&[&format!("pdq:{pdq}")], "csam").await;
    let id = content_id(&entry);
    let content = format!("/c/bank/CSAM/content/{id}");
    assert_eq!(get(n, &content).await.body["disable_until_ts"], 1, "pending: review, so enabled");

    let retracted = n.call("POST", &format!("/v1/entries/{entry}/retract"), Some(&n.admin), None).await;
    assert_eq!(retracted.status, 201, "{retracted:?}");
    // A retracted entry's action is none: not a match to an HMA client.
    assert_eq!(
        get(n, &format!("/m/raw_lookup?signal={pdq}&signal_type=pdq")).await.body,
        json!({ "matches": [] })
    );
    assert_eq!(get(n, &format!("/m/lookup?signal={pdq}&signal_type=pdq")).await.body, json!({}));
    assert_eq!(get(n, &content).await.body["disable_until_ts"], 0, "still readable, shown disabled");
    net.shutdown().await;
}

#[tokio::test]
async fn hma_reads_list_banks_signal_types_and_bank_content() {
    let net = TestNet::new(1).await.expect("testnet");
    let n = &net.nodes[0];
    let status = n.call_raw("GET", "/status", None, None, None).await;
    assert_eq!(status.status, 200, "HMA's health check is open, as /healthz is");
    let openapi = n.call("GET", "/openapi.json", None, None).await.body;
    for path in
        ["/status", "/h/hash", "/m/raw_lookup", "/m/lookup", "/c/banks", "/c/bank/{bank}/content/{id}"]
    {
        assert!(openapi["paths"][path].is_object(), "{path} is in /openapi.json");
    }

    assert_eq!(
        get(n, "/c/banks").await.body,
        json!([
            { "name": "CSAM", "matching_enabled_ratio": 1.0 },
            { "name": "DRUGS", "matching_enabled_ratio": 1.0 },
            { "name": "HARMFUL_BEHAVIOR", "matching_enabled_ratio": 1.0 },
        ])
    );
    assert_eq!(get(n, "/c/bank/DRUGS").await.body, json!({ "name": "DRUGS", "matching_enabled_ratio": 1.0 }));
    let missing = get(n, "/c/bank/NOPE").await;
    assert_eq!((missing.status, missing.body), (404, json!({ "message": "bank 'NOPE' not found" })));
    assert_eq!(
        get(n, "/c/signal_type").await.body,
        json!([
            { "name": "pdq", "enabled_ratio": 1.0 },
            { "name": "video_md5", "enabled_ratio": 1.0 },
            { "name": "video_sha256", "enabled_ratio": 1.0 },
            { "name": "url", "enabled_ratio": 1.0 },
        ])
    );
    assert_eq!(
        get(n, "/c/content_type").await.body,
        json!([{ "name": "photo", "enabled": true }, { "name": "video", "enabled": true }])
    );

    let pdq = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
    let md5 = "d41d8cd98f00b204e9800998ecf8427e";
    let reply = n
        .call(
            "POST",
            "/v1/entries",
            Some(&n.submitter),
            Some(json!({
                "fingerprints": [format!("pdq:{pdq}"), format!("md5:{md5}"), "sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709"],
                "category": "csam",
                "links": ["https://example.com/p/9"],
                "note": "seen in a public group",
            })),
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let entry = reply.body["id"].as_str().expect("id").to_owned();
    let id = content_id(&entry);
    // As HMA: the bank in the path must exist; the content's own bank is in the answer.
    assert_eq!(
        get(n, &format!("/c/bank/DRUGS/content/{id}?include_signals=true")).await.body,
        json!({
            "id": id,
            "disable_until_ts": 1,
            "original_media_uri": null,
            "bank": { "name": "CSAM", "matching_enabled_ratio": 1.0 },
            "signals": { "pdq": pdq, "video_md5": md5 },
            "metadata": {
                "content_id": null,
                "content_uri": null,
                "json": {
                    "entry": entry,
                    "status": "pending",
                    "action": "review",
                    "author": "node0",
                    "links": ["https://example.com/p/9"],
                },
                "collab": null,
            },
            "note": "seen in a public group",
        })
    );
    let lean = get(n, &format!("/c/bank/CSAM/content/{id}?include_metadata=false")).await.body;
    assert_eq!(lean.get("signals"), None, "signals only when asked for");
    assert_eq!(lean.get("metadata"), None);
    for path in ["/c/bank/CSAM/content/12", "/c/bank/CSAM/content/abc", "/c/bank/NOPE/content/12"] {
        assert_eq!(get(n, path).await.status, 404, "{path}");
    }
    net.shutdown().await;
}

#[tokio::test]
async fn every_hma_route_but_status_needs_a_token() {
    let net = TestNet::new(1).await.expect("testnet");
    let n = &net.nodes[0];
    let routes = [
        ("GET", "/h/hash?url=http://example.com/x.png"),
        ("POST", "/h/hash"),
        ("GET", "/m/raw_lookup?signal=x&signal_type=pdq"),
        ("GET", "/m/lookup?signal=x&signal_type=pdq"),
        ("POST", "/m/lookup"),
        ("GET", "/c/banks"),
        ("GET", "/c/bank/CSAM"),
        ("GET", "/c/bank/CSAM/content/1"),
        ("GET", "/c/signal_type"),
        ("GET", "/c/content_type"),
    ];
    for (method, path) in routes {
        let reply = n.call_raw(method, path, None, None, None).await;
        assert_eq!(reply.status, 401, "{method} {path}: {reply:?}");
        assert!(
            reply.body["message"].as_str().is_some_and(|m| m.contains("Authorization: Bearer")),
            "{reply:?}"
        );
    }
    for path in ["/status", "/status/live"] {
        assert_eq!(n.call_raw("GET", path, None, None, None).await.status, 200, "{path}");
    }
    net.shutdown().await;
}
