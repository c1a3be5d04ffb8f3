//! Every config key from the environment: `rpc.max_body_bytes` is `HASHMESH_RPC_MAX_BODY_BYTES`,
//! and so on for each key the default config has (lists of tables — tokens, webhooks — only
//! from the file). A value is read as a TOML value (`30s` needs no quotes: text that is not
//! TOML is taken as a string; a list may also be comma-separated), and wins over the file.
//! `docs/configuration.md` is generated from the same walk ([`reference`]).

use toml::{Table, Value};

use super::Config;

/// What each key is for, in the generated reference. A test checks every key has a line.
const ABOUT: &[(&str, &str)] = &[
    ("key_file", "the member's signing key file (0600), relative to the data dir"),
    ("manifest", "the federation's genesis manifest, relative to the data dir"),
    ("db", "the sled database folder, relative to the data dir"),
    ("rpc.listen", "address of the HTTP RPC (loopback unless told otherwise)"),
    (
        "rpc.max_body_bytes",
        "largest request body (file uploads for matching included; imports are streamed and exempt)",
    ),
    ("rpc.max_connections", "RPC connections served at once; more are closed as they arrive"),
    (
        "rpc.header_timeout",
        "how long a client may take to send a request's head (slow-loris clients are cut off)",
    ),
    ("rpc.request_timeout", "how long a JSON request may take from its head to its answer (408 after)"),
    ("rpc.tls_cert", "PEM certificate chain for HTTPS (with rpc.tls_key); empty for plain HTTP"),
    ("rpc.tls_key", "PEM private key of rpc.tls_cert"),
    ("rpc.insecure", "serve plain HTTP on a non-loopback address (refused otherwise; `run --insecure-rpc`)"),
    (
        "p2p.listen",
        "libp2p multiaddresses to listen on (`init --manifest` sets them from the member's own entry)",
    ),
    ("p2p.sync_interval", "how often catch-up sync runs with every connected peer"),
    ("p2p.max_redial_backoff", "longest wait between redials of a member that cannot be reached"),
    ("p2p.request_timeout", "how long a peer may take to answer a sync request"),
    (
        "p2p.own_log_timeout",
        "how long own writes wait for a peer to confirm this node holds its member's whole log",
    ),
    (
        "p2p.start_unconfirmed",
        "accept own writes when no peer could confirm the own log in time (risks a fork from a stale data dir)",
    ),
    ("stats.publish_interval", "how often this member signs and publishes its changed daily counters"),
    (
        "video.ffmpeg",
        "the ffmpeg program that decodes videos for their vPDQ fingerprints (a name on PATH or a path)",
    ),
    ("video.ffprobe", "the ffprobe program that reads a video's size and frame rate"),
    (
        "video.max_memory_bytes",
        "address space FFmpeg may use while decoding one video (enforced with prlimit where installed)",
    ),
    ("video.timeout", "longest one video may take to fingerprint; FFmpeg is stopped after it"),
    (
        "follow.node",
        "a follower's member node, by RPC URL (`run --follow`): pull a read-only replica from it; empty for a member node",
    ),
    ("follow.token", "a follower's token for its member node's RPC (the matcher role suffices)"),
    ("follow.ca_file", "PEM CA certificates to trust for an https member node (empty: the public roots)"),
];

/// Lists of tables, too rich for one variable: set in the file only.
const FILE_ONLY: [&str; 2] = ["rpc.tokens", "webhooks"];

/// Every key the environment may set: its dotted path and its default.
fn leaves() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    if let Ok(Value::Table(table)) = Value::try_from(Config::default()) {
        walk(&table, "", &mut out);
    }
    out
}

fn walk(table: &Table, prefix: &str, out: &mut Vec<(String, Value)>) {
    for (key, value) in table {
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        match value {
            Value::Table(inner) => walk(inner, &path, out),
            _ if FILE_ONLY.contains(&path.as_str()) => {}
            _ => out.push((path, value.clone())),
        }
    }
}

/// The variable that sets `path`.
pub fn variable(path: &str) -> String {
    format!("HASHMESH_{}", path.replace('.', "_").to_ascii_uppercase())
}

/// Sets in `file` every key the environment names; the names of the variables used.
pub(super) fn overlay(file: &mut Table, env: impl Fn(&str) -> Option<String>) -> Result<Vec<String>, String> {
    let mut used = Vec::new();
    for (path, default) in leaves() {
        let name = variable(&path);
        let Some(raw) = env(&name) else { continue };
        let value = parse(&raw, &default).map_err(|e| format!("{name}={raw:?}: {e}"))?;
        let mut parts: Vec<&str> = path.split('.').collect();
        let last = parts.pop().unwrap_or_default();
        let mut table = &mut *file;
        for part in parts {
            let entry = table.entry(part.to_owned()).or_insert_with(|| Value::Table(Table::new()));
            table = entry
                .as_table_mut()
                .ok_or_else(|| format!("{name}: `{part}` in the config file is not a table"))?;
        }
        table.insert(last.to_owned(), value);
        used.push(name);
    }
    Ok(used)
}

/// `raw` as a value of the default's type: TOML if it reads as one of that type, else a
/// string (durations, paths, addresses), or for a list its comma-separated items.
fn parse(raw: &str, default: &Value) -> Result<Value, String> {
    let literal = toml::from_str::<Table>(&format!("v = {raw}")).ok().and_then(|mut t| t.remove("v"));
    match (default, literal) {
        (Value::String(_), Some(v @ Value::String(_))) => Ok(v),
        (Value::String(_), _) => Ok(Value::String(raw.to_owned())),
        (Value::Array(_), Some(v @ Value::Array(_))) => Ok(v),
        (Value::Array(_), _) => Ok(Value::Array(
            raw.split(',')
                .map(|s| Value::String(s.trim().to_owned()))
                .filter(|v| v.as_str() != Some(""))
                .collect(),
        )),
        (d, Some(v)) if d.same_type(&v) => Ok(v),
        (d, _) => Err(match d.type_str() {
            t @ ("integer" | "array") => format!("expected an {t}"),
            t => format!("expected a {t}"),
        }),
    }
}

/// `docs/configuration.md`: every key, its variable, its default and what it is for.
pub fn reference() -> String {
    let mut out = String::from(
        "# Configuration\n\n\
         Generated from the code by `cargo test -p hashmesh-node --lib config` (set \
         `HASHMESH_BLESS=1` to rewrite this file after changing a key); do not edit by hand.\n\n\
         A node reads `config.toml` in its data dir (`hashmesh init` writes one). Every key below \
         can also be set by its environment variable, which wins over the file; command-line \
         flags (`--rpc-listen`) win over both. A value is written as in TOML, without quotes for \
         text (`HASHMESH_P2P_SYNC_INTERVAL=10s`); a list may be comma-separated. RPC tokens \
         (`[[rpc.tokens]]`) and webhooks (`[[webhooks]]`) are set in the file only.\n\n\
         | key | variable | default | what it is for |\n|---|---|---|---|\n",
    );
    for (path, default) in leaves() {
        let about = ABOUT.iter().find(|(k, _)| *k == path).map_or("", |(_, a)| *a);
        out.push_str(&format!("| `{path}` | `{}` | `{default}` | {about} |\n", variable(&path)));
    }
    out.push_str(
        "\nA webhook (`[[webhooks]]`) has `url`, `secret` (at least 16 characters), `events` \
         (default `[\"match\", \"status_changed\"]`) and `retry_max` (default `\"5m\"`); see the \
         README's \"Bringing lists in, and acting on matches\".\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_a_variable_a_description_and_overrides_the_file() {
        let keys: Vec<String> = leaves().into_iter().map(|(k, _)| k).collect();
        for key in &keys {
            assert!(ABOUT.iter().any(|(k, _)| k == key), "{key} has no line in ABOUT");
        }
        assert!(
            keys.contains(&"stats.publish_interval".to_owned()) && keys.contains(&"rpc.listen".to_owned())
        );
        assert!(!keys.iter().any(|k| k.contains("tokens") || k.contains("webhooks")));

        let mut file: Table = toml::from_str(&Config::default().to_toml()).expect("toml");
        let env = |name: &str| match name {
            "HASHMESH_P2P_SYNC_INTERVAL" => Some("10s".to_owned()),
            "HASHMESH_RPC_MAX_BODY_BYTES" => Some("2048".to_owned()),
            "HASHMESH_P2P_START_UNCONFIRMED" => Some("true".to_owned()),
            "HASHMESH_P2P_LISTEN" => Some("/ip4/0.0.0.0/tcp/1, /ip4/0.0.0.0/tcp/2".to_owned()),
            "HASHMESH_STATS_PUBLISH_INTERVAL" => Some("\"2h\"".to_owned()),
            _ => None,
        };
        let used = overlay(&mut file, env).expect("overlaid");
        assert_eq!(used.len(), 5);
        let config: Config = file.try_into().expect("a config");
        assert_eq!(config.p2p.sync_interval, std::time::Duration::from_secs(10));
        assert_eq!(config.rpc.max_body_bytes, 2048);
        assert!(config.p2p.start_unconfirmed);
        assert_eq!(config.p2p.listen, vec!["/ip4/0.0.0.0/tcp/1", "/ip4/0.0.0.0/tcp/2"]);
        assert_eq!(config.stats.publish_interval, std::time::Duration::from_secs(7200));

        let mut file = Table::new();
        let bad = overlay(&mut file, |n| (n == "HASHMESH_RPC_MAX_BODY_BYTES").then(|| "lots".to_owned()));
        assert!(bad.is_err_and(|e| e.contains("HASHMESH_RPC_MAX_BODY_BYTES") && e.contains("integer")));
    }

    #[test]
    fn the_configuration_reference_is_generated_from_the_code() {
        crate::assert_generated_doc("configuration.md", &reference(), "config");
    }
}
