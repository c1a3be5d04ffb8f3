//! One function per endpoint.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use hashmesh_protocol::{Action, ProposalId, RecordId};

use super::ApiError;
use super::auth::authorize;
use crate::NodeHandle;
use crate::api::{
    AlertList, CastVote, EntryFilter, EntryPage, EntryView, ErrorBody, HistoryView, MAX_MATCH_HASHES,
    MatchHashes, MatchResponse, MembershipView, PeerList, ProposalWritten, ProposeChanges, QueueQuery,
    QueueView, RawRecord, Readiness, RecordsQuery, RetractEntry, StatusView, SubmitEntry, Written,
};
use crate::config::Role;
use crate::node::action_rank;

type Result<T> = std::result::Result<T, ApiError>;

fn entry_id(path: std::result::Result<Path<String>, PathRejection>) -> Result<RecordId> {
    let Path(raw) = path?;
    raw.parse().map_err(|_| ApiError::bad_request(format!("{raw:?} is not an entry id (64 hex digits)")))
}

/// Liveness: the process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "probes",
    security(()),
    responses((status = 200, description = "`ok`.", body = String, content_type = "text/plain"))
)]
pub(super) async fn healthz() -> &'static str {
    "ok\n"
}

/// This document, made from the code.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "probes",
    security(()),
    responses((status = 200, description = "The OpenAPI document.", body = Object))
)]
pub(super) async fn openapi() -> impl IntoResponse {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let document =
        DOCUMENT.get_or_init(|| serde_json::to_string_pretty(&super::openapi()).unwrap_or_default());
    ([(header::CONTENT_TYPE, "application/json")], document.as_str())
}

pub(super) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such endpoint; see /openapi.json")
}

pub(super) async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this endpoint; see /openapi.json")
}

#[utoipa::path(
    get,
    path = "/v1/status",
    tag = "node",
    responses(
        (status = 200, description = "The node: its federation, member, records, digest and every log head.", body = StatusView),
    )
)]
pub(super) async fn status(State(node): State<NodeHandle>, headers: HeaderMap) -> Result<Json<StatusView>> {
    authorize(&node.shared, &headers, Role::Matcher)?;
    Ok(Json(node.status().await?))
}

/// Readiness for traffic: 200 once caught up, 503 with the reason before. No token, like
/// `/healthz`: probes carry none, and it says nothing about the replica's content.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "probes",
    security(()),
    responses(
        (status = 200, description = "Caught up: send it traffic.", body = Readiness),
        (status = 503, description = "Not yet: the reason says what it waits for.", body = Readiness),
    )
)]
pub(super) async fn readyz(State(node): State<NodeHandle>) -> impl IntoResponse {
    let readiness = node.readiness().await;
    let code = if readiness.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(readiness))
}

/// The metrics registry in the OpenMetrics text format. The network's state is asked of its
/// task here, since a collector cannot wait; the rest is read as the registry is encoded.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "node",
    responses(
        (status = 200, description = "The metrics in the OpenMetrics text format (docs/metrics.md).", body = String, content_type = "application/openmetrics-text"),
    )
)]
pub(super) async fn metrics(State(node): State<NodeHandle>, headers: HeaderMap) -> Result<impl IntoResponse> {
    authorize(&node.shared, &headers, Role::Matcher)?;
    let net = crate::metrics::NetState {
        peers: node.peers().await,
        refused_connections: node.net().refused_connections().await,
    };
    let text = node
        .shared
        .metrics
        .encode(net)
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "encoding the metrics failed"))?;
    Ok(([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text))
}

#[utoipa::path(
    get,
    path = "/v1/peers",
    tag = "node",
    responses(
        (status = 200, description = "Every member peer this node knows, connected or not.", body = PeerList),
    )
)]
pub(super) async fn peers(State(node): State<NodeHandle>, headers: HeaderMap) -> Result<Json<PeerList>> {
    authorize(&node.shared, &headers, Role::Matcher)?;
    Ok(Json(PeerList { peers: node.peers().await }))
}

#[utoipa::path(
    post,
    path = "/v1/entries",
    tag = "entries",
    description = "Needs the submitter role.",
    request_body = SubmitEntry,
    responses(
        (status = 201, description = "The entry is signed, stored and gossiped.", body = Written),
        (status = 403, description = "The token may not submit, or this node is a read-only follower.", body = ErrorBody),
        (status = 409, description = "This member is proven to have forked its log: it cannot write.", body = ErrorBody),
        (status = 422, description = "The entry breaks a rule: a category the federation does not accept, no fingerprints, a link or note too long.", body = ErrorBody),
        (status = 503, description = "This node cannot write yet: its own log is not confirmed by a peer, or the store failed.", body = ErrorBody),
    )
)]
pub(super) async fn submit(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    body: std::result::Result<Json<SubmitEntry>, JsonRejection>,
) -> Result<(StatusCode, Json<Written>)> {
    authorize(&node.shared, &headers, Role::Submitter)?;
    let Json(req) = body?;
    Ok((StatusCode::CREATED, Json(node.submit(req).await?)))
}

#[utoipa::path(
    get,
    path = "/v1/entries",
    tag = "entries",
    params(EntryFilter),
    responses(
        (status = 200, description = "A page of entries, in id order.", body = EntryPage),
        (status = 400, description = "The query string is not valid.", body = ErrorBody),
    )
)]
pub(super) async fn list(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    query: std::result::Result<Query<EntryFilter>, QueryRejection>,
) -> Result<Json<EntryPage>> {
    authorize(&node.shared, &headers, Role::Matcher)?;
    let Query(filter) = query?;
    Ok(Json(node.entries(&filter)))
}

#[utoipa::path(
    get,
    path = "/v1/entries/{id}",
    tag = "entries",
    params(("id" = RecordId, Path, description = "The entry id.")),
    responses(
        (status = 200, description = "The entry with its status and every member's latest vote.", body = EntryView),
        (status = 400, description = "The id is not 64 hex digits.", body = ErrorBody),
        (status = 404, description = "No such entry.", body = ErrorBody),
    )
)]
pub(super) async fn show(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    path: std::result::Result<Path<String>, PathRejection>,
) -> Result<Json<EntryView>> {
    authorize(&node.shared, &headers, Role::Matcher)?;
    Ok(Json(node.entry(&entry_id(path)?)?))
}

#[utoipa::path(
    post,
    path = "/v1/entries/{id}/votes",
    tag = "entries",
    description = "Needs the admin role.",
    request_body = CastVote,
    params(("id" = RecordId, Path, description = "The entry id.")),
    responses(
        (status = 201, description = "The vote is signed, stored and gossiped.", body = Written),
        (status = 400, description = "The id is not 64 hex digits.", body = ErrorBody),
        (status = 403, description = "The token may not vote, the entry is this member's own, or this node is a follower.", body = ErrorBody),
        (status = 404, description = "No such entry.", body = ErrorBody),
        (status = 409, description = "The entry is retracted, or this member forked its log.", body = ErrorBody),
        (status = 422, description = "The vote breaks a rule (a reason too long).", body = ErrorBody),
        (status = 503, description = "This node cannot write yet.", body = ErrorBody),
    )
)]
pub(super) async fn vote(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    path: std::result::Result<Path<String>, PathRejection>,
    body: std::result::Result<Json<CastVote>, JsonRejection>,
) -> Result<(StatusCode, Json<Written>)> {
    let caller = authorize(&node.shared, &headers, Role::Admin)?;
    let id = entry_id(path)?;
    let Json(req) = body?;
    Ok((StatusCode::CREATED, Json(node.vote(id, req, Some(caller.name)).await?)))
}

#[utoipa::path(
    post,
    path = "/v1/entries/{id}/retract",
    tag = "entries",
    description = "Needs the admin role.",
    request_body = Option<RetractEntry>,
    params(("id" = RecordId, Path, description = "The entry id.")),
    responses(
        (status = 201, description = "The retraction is signed, stored and gossiped.", body = Written),
        (status = 400, description = "The id is not 64 hex digits.", body = ErrorBody),
        (status = 403, description = "The token may not retract, the entry is another member's, or this node is a follower.", body = ErrorBody),
        (status = 404, description = "No such entry.", body = ErrorBody),
        (status = 409, description = "The entry is already retracted, or this member forked its log.", body = ErrorBody),
        (status = 422, description = "The retraction breaks a rule (a reason too long).", body = ErrorBody),
        (status = 503, description = "This node cannot write yet.", body = ErrorBody),
    )
)]
pub(super) async fn retract(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    path: std::result::Result<Path<String>, PathRejection>,
    body: std::result::Result<Json<Option<RetractEntry>>, JsonRejection>,
) -> Result<(StatusCode, Json<Written>)> {
    authorize(&node.shared, &headers, Role::Admin)?;
    let id = entry_id(path)?;
    // The body is optional: a bare POST, or `null`, retracts without a reason.
    let req = match body {
        Ok(Json(req)) => req.unwrap_or_default(),
        Err(JsonRejection::MissingJsonContentType(_)) => RetractEntry::default(),
        Err(e) => return Err(e.into()),
    };
    Ok((StatusCode::CREATED, Json(node.retract(id, req).await?)))
}

#[utoipa::path(
    post,
    path = "/v1/match/hashes",
    tag = "matching",
    request_body = MatchHashes,
    responses(
        (status = 200, description = "One result per fingerprint, in request order, and the strongest action.", body = MatchResponse),
        (status = 422, description = "The body is not a list of `kind:hex` fingerprints, it is empty, or it holds more than 10,000.", body = ErrorBody),
    )
)]
pub(super) async fn match_hashes(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    body: std::result::Result<Json<MatchHashes>, JsonRejection>,
) -> Result<Json<MatchResponse>> {
    authorize(&node.shared, &headers, Role::Matcher)?;
    let Json(req) = body?;
    if req.hashes.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "`hashes` is empty: send at least one kind:hex",
        ));
    }
    if req.hashes.len() > MAX_MATCH_HASHES {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("at most {MAX_MATCH_HASHES} hashes per call: split the list"),
        ));
    }
    // Thousands of lookups are CPU work: off the async workers.
    let matcher = node.clone();
    let queries: Vec<crate::hashers::Computed> =
        req.hashes.into_iter().map(crate::hashers::Computed::plain).collect();
    let results = tokio::task::spawn_blocking(move || matcher.match_and_act(&queries))
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "matching failed"))?;
    Ok(Json(respond(results)))
}

#[utoipa::path(
    post,
    path = "/v1/match",
    tag = "matching",
    request_body(content((super::openapi::Binary = "application/octet-stream"), (super::openapi::FileForm = "multipart/form-data")), description = "The file's bytes, or a multipart form whose first file part (or part named `file`) is the file."),
    responses(
        (status = 200, description = "The file's fingerprints, each matched, and the strongest action.", body = MatchResponse),
        (status = 400, description = "The body is empty, or a multipart form without a file part.", body = ErrorBody),
        (status = 413, description = "The upload is larger than rpc.max_body_bytes.", body = ErrorBody),
        (status = 503, description = "The node is shutting down.", body = ErrorBody),
    )
)]
pub(super) async fn match_file(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> Result<Json<MatchResponse>> {
    authorize(&node.shared, &headers, Role::Matcher)?;
    let body = upload(&headers, request).await?;
    if body.is_empty() {
        return Err(ApiError::bad_request("empty body: send the file's bytes as the request body"));
    }
    // Hashing and decoding are CPU and memory heavy: at most one job per core, off the async
    // workers.
    let _permit = node
        .shared
        .hashing
        .acquire()
        .await
        .map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the node is shutting down"))?;
    let matcher = node.clone();
    let (hashed, results) = tokio::task::spawn_blocking(move || {
        let hashed = crate::hashers::fingerprint_bytes(&body, &matcher.shared.video);
        let results = matcher.match_and_act(&hashed.computed);
        (hashed, results)
    })
    .await
    .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "hashing the upload failed"))?;
    let mut response = respond(results);
    response.image_error = hashed.image_error;
    response.video_error = hashed.video_error;
    Ok(Json(response))
}

/// The uploaded file: the raw body, or the first file part of a multipart form.
async fn upload(headers: &HeaderMap, request: axum::extract::Request) -> Result<axum::body::Bytes> {
    use axum::extract::FromRequest;
    let is_multipart = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("multipart/form-data"));
    let too_large = |e: &dyn std::fmt::Display| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("cannot read the upload: {e} (rpc.max_body_bytes limits it)"),
        )
    };
    if !is_multipart {
        return axum::body::Bytes::from_request(request, &()).await.map_err(|e| too_large(&e));
    }
    let mut form = axum::extract::Multipart::from_request(request, &())
        .await
        .map_err(|e| ApiError::bad_request(format!("invalid multipart body: {e}")))?;
    while let Some(field) =
        form.next_field().await.map_err(|e| ApiError::bad_request(format!("invalid multipart body: {e}")))?
    {
        if field.file_name().is_some() || field.name() == Some("file") {
            return field.bytes().await.map_err(|e| too_large(&e));
        }
    }
    Err(ApiError::bad_request("the multipart form has no file part: send it as `file`"))
}

fn respond(results: Vec<crate::api::MatchResult>) -> MatchResponse {
    let action = results
        .iter()
        .flat_map(|r| r.hits.iter().map(|h| h.action))
        .min_by_key(|a| action_rank(*a))
        .unwrap_or(Action::None);
    MatchResponse { results, action, image_error: None, video_error: None }
}

#[utoipa::path(
    get,
    path = "/v1/records",
    tag = "audit",
    params(RecordsQuery),
    responses(
        (status = 200, description = "The author's signed records from `from_seq`, for audit.", body = Vec<RawRecord>),
        (status = 400, description = "The query string is not valid.", body = ErrorBody),
        (status = 503, description = "The store failed.", body = ErrorBody),
    )
)]
pub(super) async fn records(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    query: std::result::Result<Query<RecordsQuery>, QueryRejection>,
) -> Result<Json<Vec<RawRecord>>> {
    authorize(&node.shared, &headers, Role::Matcher)?;
    let Query(q) = query?;
    let records = node.records(&q.author, q.from_seq.unwrap_or(1), q.limit.map_or(100, |l| l as usize))?;
    Ok(Json(records.iter().map(RawRecord::of).collect()))
}

#[utoipa::path(
    get,
    path = "/v1/alerts",
    tag = "audit",
    responses(
        (status = 200, description = "Proofs that members signed two records at one position of their log.", body = AlertList),
    )
)]
pub(super) async fn alerts(State(node): State<NodeHandle>, headers: HeaderMap) -> Result<Json<AlertList>> {
    authorize(&node.shared, &headers, Role::Matcher)?;
    Ok(Json(node.alerts()))
}

#[utoipa::path(
    get,
    path = "/v1/membership",
    tag = "membership",
    responses(
        (status = 200, description = "The manifest in force, pending proposals and every epoch.", body = MembershipView),
    )
)]
pub(super) async fn membership(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
) -> Result<Json<MembershipView>> {
    authorize(&node.shared, &headers, Role::Matcher)?;
    Ok(Json(node.membership()))
}

#[utoipa::path(
    post,
    path = "/v1/membership/proposals",
    tag = "membership",
    description = "Needs the admin role.",
    request_body = ProposeChanges,
    responses(
        (status = 201, description = "The proposal and this member's approval are signed and gossiped.", body = ProposalWritten),
        (status = 403, description = "The token may not propose, or this node is a follower.", body = ErrorBody),
        (status = 409, description = "Not the next epoch, or this member forked its log.", body = ErrorBody),
        (status = 422, description = "The changes break a rule (a duplicate member, an unknown key, an empty proposal).", body = ErrorBody),
        (status = 503, description = "This node cannot write yet.", body = ErrorBody),
    )
)]
pub(super) async fn propose(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    body: std::result::Result<Json<ProposeChanges>, JsonRejection>,
) -> Result<(StatusCode, Json<ProposalWritten>)> {
    authorize(&node.shared, &headers, Role::Admin)?;
    let Json(req) = body?;
    Ok((StatusCode::CREATED, Json(node.propose(req).await?)))
}

#[utoipa::path(
    post,
    path = "/v1/membership/proposals/{id}/approve",
    tag = "membership",
    description = "Needs the admin role.",
    params(("id" = ProposalId, Path, description = "The proposal id.")),
    responses(
        (status = 201, description = "This member's approval is signed and gossiped.", body = ProposalWritten),
        (status = 400, description = "The id is not 64 hex digits.", body = ErrorBody),
        (status = 403, description = "The token may not approve, or this node is a follower.", body = ErrorBody),
        (status = 404, description = "No such pending proposal.", body = ErrorBody),
        (status = 409, description = "The proposal is stale, already approved by this member, or this member forked its log.", body = ErrorBody),
        (status = 503, description = "This node cannot write yet.", body = ErrorBody),
    )
)]
pub(super) async fn approve(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    path: std::result::Result<Path<String>, PathRejection>,
) -> Result<(StatusCode, Json<ProposalWritten>)> {
    authorize(&node.shared, &headers, Role::Admin)?;
    let Path(raw) = path?;
    let id = raw
        .parse()
        .map_err(|_| ApiError::bad_request(format!("{raw:?} is not a proposal id (64 hex digits)")))?;
    Ok((StatusCode::CREATED, Json(node.approve(id).await?)))
}

#[utoipa::path(
    get,
    path = "/v1/queue",
    tag = "entries",
    description = "Needs the admin role.",
    params(QueueQuery),
    responses(
        (status = 200, description = "Entries awaiting this member's vote, oldest first.", body = QueueView),
        (status = 400, description = "The query string is not valid.", body = ErrorBody),
        (status = 403, description = "The token may not vote.", body = ErrorBody),
    )
)]
pub(super) async fn queue(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    query: std::result::Result<Query<QueueQuery>, QueryRejection>,
) -> Result<Json<QueueView>> {
    authorize(&node.shared, &headers, Role::Admin)?;
    let Query(q) = query?;
    Ok(Json(node.queue(&q)))
}

#[utoipa::path(
    get,
    path = "/v1/entries/{id}/history",
    tag = "audit",
    params(("id" = RecordId, Path, description = "The entry id.")),
    responses(
        (status = 200, description = "The entry record, then each vote and retraction, with the status after each.", body = HistoryView),
        (status = 400, description = "The id is not 64 hex digits.", body = ErrorBody),
        (status = 404, description = "No such entry.", body = ErrorBody),
    )
)]
pub(super) async fn history(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    path: std::result::Result<Path<String>, PathRejection>,
) -> Result<Json<HistoryView>> {
    authorize(&node.shared, &headers, Role::Matcher)?;
    Ok(Json(node.history(&entry_id(path)?)?))
}

#[utoipa::path(
    get,
    path = "/v1/entries/{id}/proof",
    tag = "audit",
    params(("id" = RecordId, Path, description = "The entry id.")),
    responses(
        (status = 200, description = "Everything needed to check the entry's status offline (`hashmesh verify-proof`).", body = crate::audit::ProofBundle),
        (status = 400, description = "The id is not 64 hex digits.", body = ErrorBody),
        (status = 404, description = "No such entry.", body = ErrorBody),
        (status = 503, description = "The store failed.", body = ErrorBody),
    )
)]
pub(super) async fn export_proof(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    path: std::result::Result<Path<String>, PathRejection>,
) -> Result<Json<crate::audit::ProofBundle>> {
    authorize(&node.shared, &headers, Role::Matcher)?;
    Ok(Json(node.export_proof(&entry_id(path)?)?))
}

#[utoipa::path(
    get,
    path = "/v1/webhooks",
    tag = "node",
    description = "Needs the admin role.",
    responses(
        (status = 200, description = "Each configured webhook and its delivery state.", body = crate::api::WebhookList),
        (status = 403, description = "The token is not an admin's.", body = ErrorBody),
    )
)]
pub(super) async fn webhooks(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
) -> Result<Json<crate::api::WebhookList>> {
    authorize(&node.shared, &headers, Role::Admin)?;
    let actioner = std::sync::Arc::clone(&node.shared.actioner);
    let webhooks = tokio::task::spawn_blocking(move || actioner.webhooks())
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "reading the webhooks failed"))?;
    Ok(Json(crate::api::WebhookList { webhooks }))
}

#[utoipa::path(
    get,
    path = "/v1/stats",
    tag = "stats",
    params(crate::api::StatsQuery),
    responses(
        (status = 200, description = "Members' published counters, summed by day and category.", body = crate::api::StatsView),
        (status = 400, description = "The query string is not valid.", body = ErrorBody),
        (status = 422, description = "A day is not a date (`YYYY-MM-DD`), `from` is after `to`, or the range is too long.", body = ErrorBody),
    )
)]
pub(super) async fn stats(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    query: std::result::Result<Query<crate::api::StatsQuery>, QueryRejection>,
) -> Result<Json<crate::api::StatsView>> {
    authorize(&node.shared, &headers, Role::Matcher)?;
    let Query(query) = query?;
    Ok(Json(node.stats(&query)?))
}

#[utoipa::path(
    post,
    path = "/v1/stats/publish",
    tag = "stats",
    description = "Needs the admin role.",
    responses(
        (status = 201, description = "One `stats` record per day whose counters changed.", body = crate::api::StatsPublished),
        (status = 403, description = "The token is not an admin's, or this node is a follower.", body = ErrorBody),
        (status = 409, description = "This member forked its log.", body = ErrorBody),
        (status = 503, description = "This node cannot write yet.", body = ErrorBody),
    )
)]
pub(super) async fn publish_stats(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<crate::api::StatsPublished>)> {
    authorize(&node.shared, &headers, Role::Admin)?;
    Ok((StatusCode::CREATED, Json(crate::api::StatsPublished { records: node.publish_stats().await? })))
}

/// A follower's report of its counters. The matcher role: it is the token a follower holds
/// for its member node, and what it reports is its matching.
#[utoipa::path(
    post,
    path = "/v1/stats/followers",
    tag = "stats",
    request_body = crate::api::FollowerCounters,
    responses(
        (status = 200, description = "The counters are taken.", body = crate::api::CountersTaken),
        (status = 403, description = "This node is a follower itself.", body = ErrorBody),
        (status = 422, description = "The report is not valid.", body = ErrorBody),
        (status = 503, description = "The store failed.", body = ErrorBody),
    )
)]
pub(super) async fn follower_counters(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    body: std::result::Result<Json<crate::api::FollowerCounters>, JsonRejection>,
) -> Result<Json<crate::api::CountersTaken>> {
    authorize(&node.shared, &headers, Role::Matcher)?;
    let Json(report) = body?;
    let store = node.clone();
    let days = report.days.len();
    tokio::task::spawn_blocking(move || store.merge_follower_counters(&report))
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "taking the counters failed"))??;
    Ok(Json(crate::api::CountersTaken { days }))
}
