//! HMA's curation blueprint, `/c`, read side only: banks (our categories), bank content (our
//! entries, by content id), and the signal and content types this node answers for.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use hashmesh_protocol::Category;
use serde::{Deserialize, Serialize};

use super::signal::{self, ContentType, SignalType};
use super::{HmaError, HmaErrorBody, Result, counts, matcher};
use crate::NodeHandle;
use crate::api::{EntryFilter, EntryView};

/// HMA's `BankConfig`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct BankConfig {
    /// The bank: a category in upper case.
    name: String,
    /// Always 1.0: every bank is matched, there is no coinflip.
    matching_enabled_ratio: f64,
}

impl BankConfig {
    fn of(category: &Category) -> Self {
        Self { name: signal::bank_name(category), matching_enabled_ratio: 1.0 }
    }
}

/// The federation's categories, as banks.
fn categories(node: &NodeHandle) -> Vec<Category> {
    match node.membership().manifest.policy.categories {
        Some(list) => list,
        None => Category::BUILT_IN.iter().filter_map(|c| c.parse().ok()).collect(),
    }
}

/// The category of the bank named in a path, or HMA's 404.
fn known_bank(node: &NodeHandle, bank: &str) -> Result<Category> {
    signal::bank_category(bank)
        .filter(|c| categories(node).contains(c))
        .ok_or_else(|| HmaError::new(StatusCode::NOT_FOUND, format!("bank '{bank}' not found")))
}

/// `GET /c/banks` → `[{"name", "matching_enabled_ratio"}…]`.
#[utoipa::path(
    get,
    path = "/c/banks",
    tag = "hma",
    responses((status = 200, description = "One bank per category of the federation.", body = Vec<BankConfig>))
)]
pub(super) async fn banks(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
) -> Result<Json<Vec<BankConfig>>> {
    matcher(&node, &headers)?;
    Ok(Json(categories(&node).iter().map(BankConfig::of).collect()))
}

/// `GET /c/bank/{bank}` → `{"name", "matching_enabled_ratio"}`.
#[utoipa::path(
    get,
    path = "/c/bank/{bank}",
    tag = "hma",
    params(("bank" = String, Path, description = "A bank name: a category in upper case (case ignored).")),
    responses(
        (status = 200, description = "The bank.", body = BankConfig),
        (status = 404, description = "No such bank.", body = HmaErrorBody),
    )
)]
pub(super) async fn bank(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    Path(bank): Path<String>,
) -> Result<Json<BankConfig>> {
    matcher(&node, &headers)?;
    Ok(Json(BankConfig::of(&known_bank(&node, &bank)?)))
}

/// `GET /c/bank/{bank}/content/{id}` query.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ContentQuery {
    /// `true`: add `signals` (`pdq`, `video_md5`, `video_sha256`).
    include_signals: Option<String>,
    /// `false`: leave out `metadata` (default `true`).
    include_metadata: Option<String>,
}

/// `GET /c/bank/{bank}/content/{id}[?include_signals=true][&include_metadata=false]` → HMA's
/// `BankContentResponse`; like HMA, the bank must exist and the content is found whichever
/// bank it is in (its own bank is in the answer).
#[utoipa::path(
    get,
    path = "/c/bank/{bank}/content/{id}",
    tag = "hma",
    params(
        ("bank" = String, Path, description = "A bank name: a category in upper case (case ignored)."),
        ("id" = u64, Path, description = "An HMA content id: the first 53 bits of an entry's id."),
        ContentQuery,
    ),
    responses(
        (status = 200, description = "HMA's `BankContentResponse`: `id`, `disable_until_ts` (1 when the action is remove or review, else 0), `original_media_uri`, `bank`, and `signals`, `metadata` (with the entry id, status, action, author and links) and `note` when asked for or set.", body = Object),
        (status = 404, description = "No such bank or content.", body = HmaErrorBody),
        (status = 409, description = "Two entries share this content id: look them up by entry id.", body = HmaErrorBody),
    )
)]
pub(super) async fn bank_content(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    Path((bank, id)): Path<(String, String)>,
    query: std::result::Result<Query<ContentQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>> {
    matcher(&node, &headers)?;
    let Query(q) = query?;
    known_bank(&node, &bank)?;
    // HMA's route is `<int:content_id>`: anything else is no such path.
    let not_found = || HmaError::new(StatusCode::NOT_FOUND, format!("content '{id}' not found"));
    let number: u64 = id.parse().map_err(|_| not_found())?;
    let cursor = signal::cursor_before(number).map_err(|()| not_found())?;
    let page = node.entries(&EntryFilter { cursor, limit: Some(3), ..EntryFilter::default() });
    let mut found = page.entries.into_iter().filter(|e| signal::content_id(&e.id) == number);
    let entry = found.next().ok_or_else(not_found)?;
    if let Some(other) = found.next() {
        return Err(HmaError::new(
            StatusCode::CONFLICT,
            format!(
                "content id {number} stands for more than one entry ({} and {}): look them up by \
                 entry id with GET /v1/entries/{{id}}",
                entry.id, other.id
            ),
        ));
    }
    // Python's `.lower() == "true"`, with HMA's defaults.
    let flag = |v: Option<String>, default: bool| v.map_or(default, |v| v.eq_ignore_ascii_case("true"));
    Ok(Json(content_view(&entry, flag(q.include_signals, false), flag(q.include_metadata, true))))
}

fn content_view(entry: &EntryView, signals: bool, metadata: bool) -> serde_json::Value {
    let mut out = serde_json::json!({
        "id": signal::content_id(&entry.id),
        "disable_until_ts": if counts(entry.action) { 1 } else { 0 },
        "original_media_uri": null,
        "bank": BankConfig::of(&entry.category),
    });
    if signals {
        // One hash per type, as HMA stores them; `url` is a one-way hash and has no text.
        let mut by_type = BTreeMap::new();
        for fp in &entry.fingerprints {
            if let Some(t) = SignalType::of_kind(fp.kind()).filter(|t| *t != SignalType::Url) {
                by_type.entry(t.name()).or_insert_with(|| fp.value_hex());
            }
        }
        out["signals"] = serde_json::json!(by_type);
    }
    if metadata {
        // HMA's `BankedContentMetadata`; our own fields go in its free-form `json`.
        out["metadata"] = serde_json::json!({
            "content_id": null,
            "content_uri": null,
            "json": {
                "entry": entry.id,
                "status": entry.status,
                "action": entry.action,
                "author": entry.author_name,
                "links": entry.links,
            },
            "collab": null,
        });
    }
    if let Some(note) = &entry.note {
        out["note"] = note.clone().into();
    }
    out
}

/// `GET /c/signal_type` → `[{"name", "enabled_ratio"}…]`.
#[utoipa::path(
    get,
    path = "/c/signal_type",
    tag = "hma",
    responses((status = 200, description = "`[{\"name\", \"enabled_ratio\"}]` for pdq, video_md5, video_sha256 and url.", body = Vec<Object>))
)]
pub(super) async fn signal_types(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>> {
    matcher(&node, &headers)?;
    let list: Vec<_> = SignalType::ALL
        .iter()
        .map(|t| serde_json::json!({ "name": t.name(), "enabled_ratio": 1.0 }))
        .collect();
    Ok(Json(list.into()))
}

/// `GET /c/content_type` → `[{"name", "enabled"}…]`.
#[utoipa::path(
    get,
    path = "/c/content_type",
    tag = "hma",
    responses((status = 200, description = "`[{\"name\", \"enabled\"}]` for photo and video.", body = Vec<Object>))
)]
pub(super) async fn content_types(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>> {
    matcher(&node, &headers)?;
    let list: Vec<_> =
        ContentType::ALL.iter().map(|c| serde_json::json!({ "name": c.name(), "enabled": true })).collect();
    Ok(Json(list.into()))
}
