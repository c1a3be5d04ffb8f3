//! Tests of the registry and its exposition: names, escaping, build info, the generated
//! reference.

use super::*;
use crate::net::PeerView;

fn peer(id: &str, member: Option<&str>, received: u64) -> PeerView {
    PeerView {
        peer_id: id.into(),
        member: member.map(str::to_owned),
        address: None,
        connected_since: Some(1),
        records_received: received,
        records_sent: 0,
        rejects: 0,
        in_sync: false,
        epoch: None,
        manifest_digest: None,
    }
}

fn exposition(net: NetState) -> String {
    let state = || ReplicaState {
        records: 7,
        epoch: 2,
        own_log: Some(crate::sync::OwnLog::Confirmed),
        ..Default::default()
    };
    Metrics::new("fed", Role::Member, state).encode(net).expect("encodes")
}

/// `(family, type)` of every `# TYPE` line.
fn types(text: &str) -> Vec<(&str, &str)> {
    text.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.split_once(' ')).collect()
}

#[test]
fn counters_end_in_total_and_units_end_the_name() {
    let text = exposition(NetState { peers: vec![peer("p1", Some("b"), 3)], refused_connections: 2 });
    let families = types(&text);
    assert!(families.len() >= 15, "{text}");
    for (name, kind) in &families {
        let samples: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| l.split(['{', ' ']).next().is_some_and(|n| n.starts_with(name)))
            .collect();
        match *kind {
            "counter" => {
                assert!(!name.ends_with("_total"), "{name}: the suffix is the sample's, not the family's");
                for s in &samples {
                    assert!(s.starts_with(&format!("{name}_total")), "{s}");
                }
            }
            "histogram" => assert!(name.ends_with("_seconds"), "{name} measures time"),
            _ => {}
        }
    }
    assert!(text.contains("\n# UNIT hashmesh_rpc_request_duration_seconds seconds\n"), "{text}");
    assert!(text.contains("\nhashmesh_refused_connections_total 2\n"), "{text}");
    assert!(text.contains("\nhashmesh_peer_records_received_total{peer=\"p1\",member=\"b\"} 3\n"), "{text}");
    assert!(text.contains("\nhashmesh_records 7\n") && text.contains("\nhashmesh_epoch 2\n"), "{text}");
    assert!(text.contains("\nhashmesh_own_log_state{state=\"confirmed\"} 1\n"), "{text}");
    assert!(text.contains("\nhashmesh_own_log_state{state=\"waiting\"} 0\n"), "{text}");
    assert!(text.ends_with("\n# EOF\n"), "{text}");
}

#[test]
fn build_info_names_the_version_federation_and_role() {
    let text = exposition(NetState::default());
    let want = format!(
        "\nhashmesh_build_info{{version=\"{}\",federation=\"fed\",role=\"member\"}} 1\n",
        env!("CARGO_PKG_VERSION")
    );
    assert!(text.contains(&want), "{text}");
    assert!(text.contains("\n# TYPE hashmesh_build_info gauge\n"), "{text}");
}

#[test]
fn label_values_are_escaped_so_each_sample_stays_one_line() {
    let odd = "o\"dd\\name\nline";
    let text = exposition(NetState { peers: vec![peer("p1", Some(odd), 1)], refused_connections: 0 });
    assert!(
        text.contains(
            "\nhashmesh_peer_records_received_total{peer=\"p1\",member=\"o\\\"dd\\\\name\\nline\"} 1\n"
        ),
        "{text}"
    );
    // Every line is metadata, EOF or a whole sample: the newline did not split one.
    for line in text.lines() {
        assert!(line.starts_with("# ") || line.starts_with("hashmesh_"), "stray line {line:?} in\n{text}");
    }
}

#[test]
fn families_without_series_yet_are_still_described() {
    let text = exposition(NetState::default());
    for family in ["hashmesh_rpc_requests", "hashmesh_rpc_request_duration_seconds", "hashmesh_match_hits"] {
        assert!(text.contains(&format!("\n# HELP {family} ")), "{family} in\n{text}");
    }
    // Every answer starts at 0, so rates over each are defined before its first request.
    for answer in ["remove", "review", "none", "miss"] {
        assert!(
            text.contains(&format!("\nhashmesh_match_requests_total{{answer=\"{answer}\"}} 0\n")),
            "{text}"
        );
    }
}

#[test]
fn the_metrics_reference_is_generated_from_the_registry() {
    let want = reference();
    assert!(
        want.contains("| `hashmesh_match_requests` | counter |  | `hashmesh_match_requests_total` |"),
        "{want}"
    );
    assert!(want.contains("| `hashmesh_rpc_request_duration_seconds` | histogram | seconds |"), "{want}");
    crate::assert_generated_doc("metrics.md", &want, "metrics");
}
