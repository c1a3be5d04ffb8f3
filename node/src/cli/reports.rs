//! `hashmesh stats` and `hashmesh webhooks`: what the federation matched and removed, and
//! how this node's webhooks are keeping up.

use super::client::Client;
use super::commands::print_json;
use crate::api::{StatsPublished, StatsView, WebhookList};

pub(super) fn stats(
    c: &Client,
    from: Option<&str>,
    to: Option<&str>,
    publish: bool,
    json: bool,
) -> anyhow::Result<()> {
    if publish {
        let done: StatsPublished = c.post("/v1/stats/publish", &serde_json::json!({}))?;
        if !json {
            say!("published {} stats record(s)", done.records.len());
        }
    }
    let mut query = Vec::new();
    if let Some(from) = from {
        query.push(format!("from={from}"));
    }
    if let Some(to) = to {
        query.push(format!("to={to}"));
    }
    let view: StatsView = c.get(&format!("/v1/stats?{}", query.join("&")))?;
    if json {
        print_json(&view);
        return Ok(());
    }
    say!("{} to {}, as published by the members", view.from, view.to);
    say!("{:<10}  {:<18} {:>10} {:>10}  members", "day", "category", "matches", "removals");
    for day in &view.days {
        for c in &day.categories {
            say!(
                "{:<10}  {:<18} {:>10} {:>10}  {}",
                day.day,
                c.category.as_str(),
                c.matches,
                c.removals,
                day.members
            );
        }
    }
    for c in &view.totals {
        say!("{:<10}  {:<18} {:>10} {:>10}", "total", c.category.as_str(), c.matches, c.removals);
    }
    if view.days.is_empty() {
        say!("no counters published for these days");
    }
    Ok(())
}

pub(super) fn webhooks(c: &Client, json: bool) -> anyhow::Result<()> {
    let list: WebhookList = c.get("/v1/webhooks")?;
    if json {
        print_json(&list);
        return Ok(());
    }
    if list.webhooks.is_empty() {
        say!("no webhooks configured (add [[webhooks]] with url and secret to config.toml)");
    }
    for w in &list.webhooks {
        say!("{}  delivered through event {}, {} waiting", w.url, w.delivered_through, w.pending);
        if let Some(error) = &w.last_error {
            say!("  failing ({} attempts in a row): {error}", w.failures);
        }
    }
    Ok(())
}
