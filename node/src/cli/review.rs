//! `hashmesh queue`, `history`, `export-proof` and `verify`: what admins review and audit.

use std::path::Path;

use anyhow::Context;
use hashmesh_protocol::RecordId;

use super::client::Client;
use super::commands::{print_entry, print_json};
use crate::api::{HistoryView, QueueView};
use crate::audit::ProofBundle;

/// `hashmesh queue`: entries awaiting this member's vote, oldest first.
pub(super) fn queue(c: &Client, limit: usize, json: bool) -> anyhow::Result<()> {
    let q: QueueView = c.get(&format!("/v1/queue?limit={limit}"))?;
    if json {
        print_json(&q);
        return Ok(());
    }
    say!("{} entries await this member's vote (oldest first)", q.total);
    for item in &q.entries {
        say!("{} confirm / {} dispute", item.confirms, item.disputes);
        print_entry(&item.entry, true);
    }
    Ok(())
}

/// `hashmesh history ID`.
pub(super) fn history(c: &Client, id: RecordId, json: bool) -> anyhow::Result<()> {
    let h: HistoryView = c.get(&format!("/v1/entries/{id}/history"))?;
    if json {
        print_json(&h);
        return Ok(());
    }
    say!("entry {} is {}", h.entry, h.status.name());
    for e in &h.events {
        let what = match (e.kind.as_str(), e.verdict) {
            (_, Some(v)) => v.name().to_owned(),
            (kind, None) => kind.to_owned(),
        };
        let by = e.reviewer.as_ref().map(|r| format!(" ({r})")).unwrap_or_default();
        let why = e.reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default();
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(e.timestamp);
        say!(
            "{} {:<8} by {}{by} seq {} -> {}{why}",
            humantime_serde::re::humantime::format_rfc3339_millis(at),
            what,
            e.author_name.as_deref().unwrap_or("?"),
            e.seq,
            e.status.name()
        );
        say!("    record {} signature {}…", e.id, e.signature.get(..32).unwrap_or(&e.signature));
    }
    Ok(())
}

/// `hashmesh export-proof ID`: the bundle as JSON on stdout.
pub(super) fn export_proof(c: &Client, id: RecordId) -> anyhow::Result<()> {
    let bundle: ProofBundle = c.get(&format!("/v1/entries/{id}/proof"))?;
    print_json(&bundle);
    Ok(())
}

/// `hashmesh verify FILE`: checks a bundle offline.
pub(super) fn verify(file: &Path, manifest: Option<&Path>, json: bool) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let bundle: ProofBundle =
        serde_json::from_str(&text).with_context(|| format!("{} is not a proof bundle", file.display()))?;
    let genesis = manifest.map(crate::node::read_manifest).transpose()?;
    let verified =
        bundle.verify(genesis.as_ref()).with_context(|| format!("{} does not verify", file.display()))?;
    if json {
        print_json(&serde_json::json!({
            "entry": verified.entry,
            "status": verified.status,
            "epoch": verified.epoch,
            "manifest_digest": hex::encode(verified.manifest_digest),
            "events": verified.events,
        }));
    } else {
        say!(
            "ok: entry {} is {} — {} signed votes and retractions, membership epoch {} (manifest {})",
            verified.entry,
            verified.status.name(),
            verified.events,
            verified.epoch,
            &hex::encode(verified.manifest_digest)[..16]
        );
        if genesis.is_none() {
            say!(
                "note: checked against the genesis manifest in the bundle; pass --manifest to use your own copy"
            );
        }
    }
    Ok(())
}
