//! Drop-in endpoints for clients of Meta's Hasher-Matcher-Actioner (HMA, "OpenMediaMatch"):
//! the paths, query parameters, multipart fields, JSON shapes and error statuses of HMA's
//! `/h`, `/m` and read-only `/c` blueprints, answered from this node's replica. Checked
//! against facebook/ThreatExchange at baefb4ed (`hasher-matcher-actioner/src/OpenMediaMatch/
//! blueprints/`).
//!
//! | HMA | hashmesh |
//! |---|---|
//! | signal type `pdq` | kind `pdq` (within the manifest's `pdq_max_distance`, 31 by default) |
//! | `video_md5` (HMA has no plain `md5`) | `md5` of the file bytes |
//! | `video_sha256` | `sha256` |
//! | `url` | `url`: blake3 of the normalised URL, computed from the URL text sent |
//! | content type `photo` / `video` | an upload hashed to `pdq` / to `video_md5` + `video_sha256` |
//! | bank | a category, in upper case: `CSAM`, `DRUGS`, `HARMFUL_BEHAVIOR`, and the manifest's own |
//! | `bank_content_id` (an integer) | an entry: the first 53 bits of its 32-byte id |
//! | `disable_until_ts` | 1 (enabled) when the entry's action is remove or review, else 0 |
//!
//! **Content ids.** HMA numbers bank content with a database serial; our entries are named
//! by 32-byte ids that every node agrees on. A content id is the id's first 53 bits (big
//! endian): the same on every node, and exact in any JSON parser, since 2^53 is where doubles
//! stop holding every integer (JavaScript clients, HMA's own UI). `GET
//! /c/bank/{bank}/content/{id}` finds the entry again. Two entries share a number with
//! probability about n²/2^54 (10^-4 at a million entries); that lookup then answers 409
//! naming both full ids.
//!
//! **What counts as a match.** Only hits whose action is `remove` or `review`: an entry the
//! federation rejected, its author retracted, or that expired has action `none`, and HMA
//! clients act on every match they are given. This holds for `/m/raw_lookup` too, which in
//! HMA skips the enabled check and leaves it to the caller — few do.
//!
//! **No downloads.** HMA's `url` parameter makes the server fetch a URL; here it is refused
//! with 400 and a message saying to upload the file: a node that fetches what callers name
//! can be pointed at internal addresses (SSRF), and media never leaves a platform anyway.
//!
//! Other differences from HMA, all in `docs/architecture.md`: the bearer token is required
//! (matcher role) except on `/status`; errors are `{"message": …}` as HMA's, but a missing or
//! malformed query parameter is 422 with a message rather than pydantic's error list; an
//! uploaded photo is matched with PDQ's dihedral variants (mirrored and rotated copies
//! match); a `video` upload also gives `video_sha256`, which HMA has but does not enable by
//! default; a photo too low in quality to match gives `{"pdq": {}}` from `POST /m/lookup`
//! where HMA answers 400; there is no coinflip (`seed`, `bypass_coinflip` are accepted and
//! ignored; every bank's `matching_enabled_ratio` is 1.0); `banks` names are compared
//! ignoring case and surrounding spaces.

mod signal;

use std::collections::BTreeMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hashmesh_protocol::{Action, Category};
use serde::{Deserialize, Serialize};

use super::ApiError;
use super::auth::authorize;
use crate::NodeHandle;
use crate::api::{EntryFilter, EntryView, Hit};
use crate::config::Role;
use crate::hashers::Computed;
use signal::{ContentType, SignalType, UploadHashes};

/// The HMA routes, merged into the RPC router.
pub(super) fn routes() -> Router<NodeHandle> {
    Router::new()
        .route("/status", get(status))
        .route("/status/live", get(status))
        .route("/h/hash", get(hash_url).post(hash_upload))
        .route("/m/raw_lookup", get(raw_lookup))
        .route("/m/lookup", get(lookup).post(lookup_upload))
        .route("/c/banks", get(banks))
        .route("/c/bank/{bank}", get(bank))
        .route("/c/bank/{bank}/content/{id}", get(bank_content))
        .route("/c/signal_type", get(signal_types))
        .route("/c/content_type", get(content_types))
}

/// An error as HMA answers it: `{"message": …}` with HMA's status for the same mistake.
#[derive(Debug)]
struct HmaError {
    status: StatusCode,
    message: String,
}

impl HmaError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// A required query parameter is missing or malformed: flask-openapi3 answers 422 before
    /// HMA's code runs.
    fn invalid_query(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }
}

impl IntoResponse for HmaError {
    fn into_response(self) -> Response {
        (self.status, Json(serde_json::json!({ "message": self.message }))).into_response()
    }
}

impl From<ApiError> for HmaError {
    fn from(e: ApiError) -> Self {
        let (status, message) = e.into_parts();
        Self { status, message }
    }
}

impl From<QueryRejection> for HmaError {
    fn from(r: QueryRejection) -> Self {
        Self::bad_request(format!("invalid query string: {}", r.body_text()))
    }
}

type Result<T> = std::result::Result<T, HmaError>;

/// The answer to HMA's `url` parameter: this node does not download.
const NO_DOWNLOADS: &str = "this node does not download media: the `url` parameter is refused, so \
     callers cannot make the node fetch arbitrary addresses (SSRF), and media stays on your \
     platform. Upload the file instead: POST /h/hash or POST /m/lookup with a multipart \
     `photo` or `video` field";

fn matcher(node: &NodeHandle, headers: &HeaderMap) -> Result<()> {
    authorize(&node.shared, headers, Role::Matcher)?;
    Ok(())
}

/// `GET /status`: HMA's health check, open like `/healthz` (it says nothing but that the
/// node answers; the index is in memory from start).
async fn status() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "I-AM-ALIVE")
}

/// `GET /h/hash?url=…`: refused; HMA would download the URL.
async fn hash_url(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    query: std::result::Result<Query<UrlQuery>, QueryRejection>,
) -> HmaError {
    if let Err(e) = matcher(&node, &headers) {
        return e;
    }
    match query {
        Err(rejection) => rejection.into(),
        Ok(Query(UrlQuery { url: None })) => HmaError::invalid_query("url: field required"),
        Ok(Query(UrlQuery { url: Some(_) })) => HmaError::bad_request(NO_DOWNLOADS),
    }
}

#[derive(Deserialize)]
struct UrlQuery {
    url: Option<String>,
}

/// `POST /h/hash`: one multipart file whose field names its content type →
/// `{"<signal type>": "<hash>"}`, `""` for a PDQ too low in quality.
async fn hash_upload(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> Result<Json<BTreeMap<&'static str, String>>> {
    matcher(&node, &headers)?;
    let hashes = hash_form(&node, &headers, request).await?;
    Ok(Json(
        hashes
            .into_iter()
            .map(|(t, c)| (t.name(), c.map(|c| c.fingerprint.value_hex()).unwrap_or_default()))
            .collect(),
    ))
}

/// `GET /m/raw_lookup` query.
#[derive(Deserialize)]
struct RawLookupQuery {
    signal: Option<String>,
    signal_type: Option<String>,
    banks: Option<String>,
    include_distance: Option<String>,
}

/// One match with its distance, as HMA's `MatchWithDistance`.
#[derive(Debug, Serialize)]
struct MatchWithDistance {
    bank_content_id: u64,
    /// A string even for PDQ (`"4"`), `"-"` for exact types: python-threatexchange's
    /// `pretty_str`.
    distance: String,
}

/// HMA's `RawLookupResponse.matches` item: an id, or an id with its distance.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum RawMatch {
    Id(u64),
    WithDistance(MatchWithDistance),
}

/// `GET /m/raw_lookup?signal=&signal_type=[&banks=][&include_distance=]` →
/// `{"matches": [id…]}` or `{"matches": [{"bank_content_id", "distance"}…]}`.
async fn raw_lookup(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    query: std::result::Result<Query<RawLookupQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>> {
    matcher(&node, &headers)?;
    let Query(q) = query?;
    let (Some(signal), Some(signal_type)) = (q.signal, q.signal_type) else {
        return Err(HmaError::invalid_query("signal and signal_type: field required"));
    };
    let with_distance = match q.include_distance {
        Some(text) => signal::parse_bool("include_distance", &text).map_err(HmaError::invalid_query)?,
        None => false,
    };
    let by_bank = lookup_signal(&node, &signal, &signal_type, q.banks.as_deref())?;
    let matches: Vec<RawMatch> = by_bank
        .into_values()
        .flatten()
        .map(|m| if with_distance { RawMatch::WithDistance(m) } else { RawMatch::Id(m.bank_content_id) })
        .collect();
    Ok(Json(serde_json::json!({ "matches": matches })))
}

/// `GET /m/lookup` query.
#[derive(Deserialize)]
struct LookupQuery {
    url: Option<String>,
    signal: Option<String>,
    signal_type: Option<String>,
    banks: Option<String>,
}

/// Matches by bank name, as HMA's `TMatchByBank`; a bank appears only with a match.
type MatchByBank = BTreeMap<String, Vec<MatchWithDistance>>;

/// `GET /m/lookup?signal=&signal_type=[&banks=]` → `{"<BANK>": [{"bank_content_id",
/// "distance"}…]}` (no signal type level, as in HMA); `url=` is refused.
async fn lookup(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    query: std::result::Result<Query<LookupQuery>, QueryRejection>,
) -> Result<Json<MatchByBank>> {
    matcher(&node, &headers)?;
    let Query(q) = query?;
    if q.url.is_some() {
        return Err(HmaError::bad_request(NO_DOWNLOADS));
    }
    let (Some(signal), Some(signal_type)) = (q.signal, q.signal_type) else {
        return Err(HmaError::bad_request("Either url or both signal and signal_type are required"));
    };
    Ok(Json(lookup_signal(&node, &signal, &signal_type, q.banks.as_deref())?))
}

/// `POST /m/lookup?[banks=]` with one multipart file → `{"<signal type>": {"<BANK>":
/// [{"bank_content_id", "distance"}…]}}`.
async fn lookup_upload(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    query: std::result::Result<Query<LookupQuery>, QueryRejection>,
    request: axum::extract::Request,
) -> Result<Json<BTreeMap<&'static str, MatchByBank>>> {
    matcher(&node, &headers)?;
    let Query(q) = query?;
    let filter = BankFilter::parse(q.banks.as_deref());
    let hashes = hash_form(&node, &headers, request).await?;
    let mut out = BTreeMap::new();
    for (signal_type, computed) in hashes {
        let by_bank = match computed {
            Some(c) => by_bank(signal_type, &node.match_computed(&[c]), &filter),
            // Too low in quality to trust: HMA would answer 400 for its empty hash; no match
            // is what it means.
            None => MatchByBank::new(),
        };
        out.insert(signal_type.name(), by_bank);
    }
    Ok(Json(out))
}

/// Looks one HMA signal up.
fn lookup_signal(
    node: &NodeHandle,
    signal: &str,
    signal_type: &str,
    banks: Option<&str>,
) -> Result<MatchByBank> {
    let signal_type = SignalType::parse(signal_type).map_err(HmaError::bad_request)?;
    let Some(fingerprint) = signal_type.fingerprint(signal).map_err(HmaError::bad_request)? else {
        return Ok(MatchByBank::new());
    };
    let results = node.match_computed(&[Computed::plain(fingerprint)]);
    Ok(by_bank(signal_type, &results, &BankFilter::parse(banks)))
}

/// The `banks` parameter: comma-separated bank names; absent or empty means every bank.
struct BankFilter(Option<Vec<String>>);

impl BankFilter {
    fn parse(banks: Option<&str>) -> Self {
        Self(
            banks
                .filter(|b| !b.is_empty())
                .map(|b| b.split(',').map(|n| n.trim().to_ascii_uppercase()).collect()),
        )
    }

    fn admits(&self, bank: &str) -> bool {
        self.0.as_ref().is_none_or(|names| names.iter().any(|n| n == bank))
    }
}

/// Groups the hits to act on by bank, nearest first within a bank.
fn by_bank(signal_type: SignalType, results: &[crate::api::MatchResult], filter: &BankFilter) -> MatchByBank {
    let mut out = MatchByBank::new();
    let mut hits: Vec<&Hit> = results.iter().flat_map(|r| &r.hits).filter(|h| counts(h.action)).collect();
    hits.sort_by_key(|h| (h.distance, h.entry));
    for hit in hits {
        let bank = signal::bank_name(&hit.category);
        if filter.admits(&bank) {
            out.entry(bank).or_default().push(MatchWithDistance {
                bank_content_id: signal::content_id(&hit.entry),
                distance: signal_type.distance(hit.distance),
            });
        }
    }
    out
}

/// Whether a hit is a match for an HMA client: its action is remove or review (see the
/// module doc).
fn counts(action: Action) -> bool {
    action != Action::None
}

/// Reads HMA's upload — exactly one multipart file, its field named for its content type —
/// and hashes it off the async workers, one job per core.
async fn hash_form(
    node: &NodeHandle,
    headers: &HeaderMap,
    request: axum::extract::Request,
) -> Result<UploadHashes> {
    let (content, bytes) = read_form(headers, request).await?;
    let _permit = node
        .shared
        .hashing
        .acquire()
        .await
        .map_err(|_| HmaError::new(StatusCode::SERVICE_UNAVAILABLE, "the node is shutting down"))?;
    tokio::task::spawn_blocking(move || signal::hash_upload(content, &bytes))
        .await
        .map_err(|_| HmaError::new(StatusCode::INTERNAL_SERVER_ERROR, "hashing the upload failed"))?
        .map_err(HmaError::bad_request)
}

async fn read_form(
    headers: &HeaderMap,
    request: axum::extract::Request,
) -> Result<(ContentType, axum::body::Bytes)> {
    use axum::extract::FromRequest;
    const MISSING: &str = "Missing multipart/form-data file upload";
    let is_multipart = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("multipart/form-data"));
    if !is_multipart {
        return Err(HmaError::bad_request(MISSING));
    }
    let invalid = |e: &dyn std::fmt::Display| HmaError::bad_request(format!("invalid multipart body: {e}"));
    let mut form = axum::extract::Multipart::from_request(request, &()).await.map_err(|e| invalid(&e))?;
    let mut file = None;
    while let Some(field) = form.next_field().await.map_err(|e| invalid(&e))? {
        let name = field.name().unwrap_or_default().to_owned();
        // Werkzeug counts a part as a file when it has a filename; a part named for a
        // content type is taken as one too.
        if field.file_name().is_none() && ContentType::parse(&name).is_err() {
            continue;
        }
        if file.is_some() {
            return Err(HmaError::bad_request("Only one file allowed per request"));
        }
        let content = ContentType::parse(&name).map_err(HmaError::bad_request)?;
        let bytes = field.bytes().await.map_err(|e| {
            HmaError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("cannot read the upload: {e} (rpc.max_body_bytes limits it)"),
            )
        })?;
        file = Some((content, bytes));
    }
    file.ok_or_else(|| HmaError::bad_request(MISSING))
}

/// HMA's `BankConfig`.
#[derive(Debug, Serialize)]
struct BankConfig {
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
async fn banks(State(node): State<NodeHandle>, headers: HeaderMap) -> Result<Json<Vec<BankConfig>>> {
    matcher(&node, &headers)?;
    Ok(Json(categories(&node).iter().map(BankConfig::of).collect()))
}

/// `GET /c/bank/{bank}` → `{"name", "matching_enabled_ratio"}`.
async fn bank(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    Path(bank): Path<String>,
) -> Result<Json<BankConfig>> {
    matcher(&node, &headers)?;
    Ok(Json(BankConfig::of(&known_bank(&node, &bank)?)))
}

/// `GET /c/bank/{bank}/content/{id}` query.
#[derive(Deserialize)]
struct ContentQuery {
    include_signals: Option<String>,
    include_metadata: Option<String>,
}

/// `GET /c/bank/{bank}/content/{id}[?include_signals=true][&include_metadata=false]` → HMA's
/// `BankContentResponse`; like HMA, the bank must exist and the content is found whichever
/// bank it is in (its own bank is in the answer).
async fn bank_content(
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
async fn signal_types(State(node): State<NodeHandle>, headers: HeaderMap) -> Result<Json<serde_json::Value>> {
    matcher(&node, &headers)?;
    let list: Vec<_> = SignalType::ALL
        .iter()
        .map(|t| serde_json::json!({ "name": t.name(), "enabled_ratio": 1.0 }))
        .collect();
    Ok(Json(list.into()))
}

/// `GET /c/content_type` → `[{"name", "enabled"}…]`.
async fn content_types(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>> {
    matcher(&node, &headers)?;
    let list: Vec<_> =
        ContentType::ALL.iter().map(|c| serde_json::json!({ "name": c.name(), "enabled": true })).collect();
    Ok(Json(list.into()))
}
