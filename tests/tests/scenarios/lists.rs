//! Hash lists: every format imported, exported and imported again elsewhere gives the same
//! set; what the federation holds is skipped; bad rows are reported and lose nothing.

use std::collections::BTreeSet;

use hashmesh_node::lists::{Defaults, Format, rows};
use hashmesh_protocol::{Category, Fingerprint};
use hashmesh_tests::{TestNet, TestNode};
use serde_json::Value;

const PDQ: [&str; 2] = [
    "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22",
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
];
const MD5: [&str; 2] = ["0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"];

/// One list of each format, the same content where the format can say it.
fn lists() -> Vec<(Format, Option<&'static str>, String)> {
    vec![
        (
            Format::Plain,
            Some("csam"),
            format!("pdq:{}\n# a comment\nmd5:{}\n\nmd5:{}\n", PDQ[0], MD5[0], MD5[1]),
        ),
        (
            Format::Csv,
            None,
            format!(
                "hash,kind,category,link,note,expires\n{},pdq,csam,https://example.com/p/1,\"seen, twice\",2100-01-01T00:00:00Z\n{},md5,drugs,,,\nmd5:{},,harmful_behavior,,,\n",
                PDQ[0], MD5[0], MD5[1]
            ),
        ),
        (
            Format::Te,
            Some("drugs"),
            format!("pdq {}\nvideo_md5 {}\nurl https://example.com/a?b=1\n", PDQ[1], MD5[1]),
        ),
        (
            Format::Hma,
            None,
            format!(
                "signal_type,signal_str,collab,category,tags\npdq,{},CSAM,POSITIVE_CLASS,\nvideo_md5,{},DRUGS,INVESTIGATION_SEED,\npdq,{},MEMES,NEGATIVE_CLASS,\n",
                PDQ[0], MD5[0], PDQ[1]
            ),
        ),
        (
            Format::Jsonl,
            None,
            format!(
                "{{\"fingerprints\":[\"pdq:{}\",\"md5:{}\"],\"category\":\"csam\",\"links\":[\"https://example.com/x\"],\"note\":\"n\"}}\n{{\"fingerprints\":[\"md5:{}\"],\"category\":\"drugs\"}}\n",
                PDQ[1], MD5[0], MD5[1]
            ),
        ),
    ]
}

/// (fingerprint, category) pairs a list holds: "the same set" across formats and nodes.
fn set_of(format: Format, category: Option<&str>, text: &str) -> BTreeSet<(Fingerprint, Category)> {
    let defaults = Defaults { kind: None, category: category.map(|c| c.parse().expect("category")) };
    rows(format, &defaults, text.as_bytes())
        .expect("readable")
        .map(|row| row.expect("no I/O error").expect("a good row"))
        .flat_map(|p| {
            let category = p.entry.category;
            p.entry.fingerprints.into_iter().map(move |f| (f, category.clone()))
        })
        .collect()
}

async fn import(node: &TestNode, format: Format, category: Option<&str>, text: &str) -> Value {
    let mut path = format!("/v1/import?format={format}");
    if let Some(c) = category {
        path.push_str(&format!("&category={c}"));
    }
    let reply = node
        .call_raw(
            "POST",
            &path,
            Some(&node.submitter),
            Some(text.as_bytes().to_vec()),
            Some(format.content_type()),
        )
        .await;
    assert_eq!(reply.status, 200, "import {format}: {reply:?}");
    reply.body
}

async fn export(node: &TestNode, query: &str) -> String {
    let reply = node.call_raw("GET", &format!("/v1/export?{query}"), Some(&node.matcher), None, None).await;
    assert_eq!(reply.status, 200, "export {query}: {reply:?}");
    reply.text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_format_round_trips_through_import_export_import() {
    for (format, category, text) in lists() {
        // Two separate federations: the second imports what the first exported.
        let first = TestNet::new(1).await.expect("first federation");
        let second = TestNet::new(1).await.expect("second federation");
        let want = set_of(format, category, &text);

        let report = import(&first.nodes[0], format, category, &text).await;
        assert_eq!(report["errors"], 0, "{format}: {report}");
        assert!(report["imported"].as_u64() > Some(0), "{format}: {report}");
        let exported = export(&first.nodes[0], &format!("format={format}")).await;
        assert_eq!(set_of(format, category, &exported), want, "{format} export:\n{exported}");

        let report = import(&second.nodes[0], format, category, &exported).await;
        assert_eq!(
            (report["errors"].as_u64(), report["duplicates"].as_u64()),
            (Some(0), Some(0)),
            "{format}: {report}"
        );
        let again = export(&second.nodes[0], &format!("format={format}")).await;
        assert_eq!(set_of(format, category, &again), want, "{format} after the second import:\n{again}");
        first.shutdown().await;
        second.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn held_fingerprints_are_skipped_bad_rows_reported_and_filters_apply() {
    let net = TestNet::new(2).await.expect("federation");
    let (a, b) = (&net.nodes[0], &net.nodes[1]);
    // Held by the federation: b submitted it; a must skip it once replicated.
    let held = b.submit(&[&format!("md5:{}", MD5[0])], "csam").await;
    hashmesh_tests::wait_until("a holds b's entry", || async { a.entry_status(&held).is_some() })
        .await
        .expect("replicated");

    let text = format!(
        "hash,kind,category,expires\n{},md5,csam,\n{},md5,csam,\nnot-hex,md5,csam,\n{},pdq,spam,\n{},pdq,drugs,2001-01-01T00:00:00Z\n{},pdq,drugs,\n{},pdq,drugs,\n",
        MD5[0], MD5[1], PDQ[0], PDQ[0], PDQ[1], PDQ[1]
    );
    let report = import(a, Format::Csv, None, &text).await;
    assert_eq!(
        (&report["rows"], &report["imported"], &report["duplicates"], &report["errors"]),
        (&Value::from(7), &Value::from(2), &Value::from(2), &Value::from(3)),
        "{report}"
    );
    let lines: Vec<u64> =
        report["bad_rows"].as_array().expect("list").iter().filter_map(|r| r["line"].as_u64()).collect();
    assert_eq!(lines, vec![4, 5, 6], "{report}");
    let reasons = report["bad_rows"].to_string();
    assert!(reasons.contains("spam") && reasons.contains("already passed"), "{reasons}");

    // Importing the same list again imports nothing new.
    let report = import(a, Format::Csv, None, &text).await;
    assert_eq!((&report["imported"], &report["duplicates"]), (&Value::from(0), &Value::from(4)), "{report}");

    // Filters: kind, category, author, status.
    let pdq_only = export(a, "format=plain&kind=pdq").await;
    assert_eq!(pdq_only.lines().collect::<Vec<_>>(), vec![format!("pdq:{}", PDQ[1])]);
    let drugs = export(a, "format=csv&category=drugs").await;
    assert_eq!(drugs.lines().count(), 2, "header and one row:\n{drugs}");
    let by_b = export(a, &format!("format=jsonl&author={}", b.member)).await;
    assert_eq!(by_b.lines().count(), 1, "{by_b}");
    assert!(by_b.contains(&held), "{by_b}");
    assert_eq!(export(a, "format=jsonl&status=verified").await, "");

    // Bad requests say what is wrong.
    let reply =
        a.call_raw("POST", "/v1/import?format=plain", Some(&a.submitter), Some(b"x".to_vec()), None).await;
    assert_eq!(reply.status, 422, "{reply:?}");
    assert!(reply.error().contains("category"), "{reply:?}");
    let reply =
        a.call_raw("POST", "/v1/import?format=xml", Some(&a.submitter), Some(b"x".to_vec()), None).await;
    assert_eq!(reply.status, 400, "{reply:?}");
    let reply = a
        .call_raw("POST", "/v1/import?format=te&category=csam", Some(&a.matcher), Some(b"x".to_vec()), None)
        .await;
    assert_eq!(reply.status, 403, "a matcher token cannot import: {reply:?}");
    net.shutdown().await;
}
