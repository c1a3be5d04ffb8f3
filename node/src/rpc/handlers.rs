//! One function per endpoint.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use hashmesh_protocol::{Action, RecordId};

use super::ApiError;
use super::auth::authorize;
use crate::NodeHandle;
use crate::api::{
    AlertList, CastVote, EntryFilter, EntryPage, EntryView, HistoryView, MAX_MATCH_HASHES, MatchHashes,
    MatchResponse, MembershipView, PeerList, ProposalWritten, ProposeChanges, QueueQuery, QueueView,
    RawRecord, RecordsQuery, RetractEntry, StatusView, SubmitEntry, Written,
};
use crate::config::Role;
use crate::node::action_rank;

type Result<T> = std::result::Result<T, ApiError>;

fn entry_id(path: std::result::Result<Path<String>, PathRejection>) -> Result<RecordId> {
    let Path(raw) = path?;
    raw.parse().map_err(|_| ApiError::bad_request(format!("{raw:?} is not an entry id (64 hex digits)")))
}

pub(super) async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], super::OPENAPI)
}

pub(super) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such endpoint; see /openapi.json")
}

pub(super) async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this endpoint; see /openapi.json")
}

pub(super) async fn status(State(node): State<NodeHandle>, headers: HeaderMap) -> Result<Json<StatusView>> {
    authorize(&node.shared, &headers, Role::Matcher)?;
    Ok(Json(node.status().await?))
}

/// Readiness for traffic: 200 once caught up, 503 with the reason before. No token, like
/// `/healthz`: probes carry none, and it says nothing about the replica's content.
pub(super) async fn readyz(State(node): State<NodeHandle>) -> impl IntoResponse {
    let readiness = node.readiness().await;
    let code = if readiness.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(readiness))
}

/// The metrics registry in the OpenMetrics text format. The network's state is asked of its
/// task here, since a collector cannot wait; the rest is read as the registry is encoded.
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

pub(super) async fn peers(State(node): State<NodeHandle>, headers: HeaderMap) -> Result<Json<PeerList>> {
    authorize(&node.shared, &headers, Role::Matcher)?;
    Ok(Json(PeerList { peers: node.peers().await }))
}

pub(super) async fn submit(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    body: std::result::Result<Json<SubmitEntry>, JsonRejection>,
) -> Result<(StatusCode, Json<Written>)> {
    authorize(&node.shared, &headers, Role::Submitter)?;
    let Json(req) = body?;
    Ok((StatusCode::CREATED, Json(node.submit(req).await?)))
}

pub(super) async fn list(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    query: std::result::Result<Query<EntryFilter>, QueryRejection>,
) -> Result<Json<EntryPage>> {
    authorize(&node.shared, &headers, Role::Matcher)?;
    let Query(filter) = query?;
    Ok(Json(node.entries(&filter)))
}

pub(super) async fn show(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    path: std::result::Result<Path<String>, PathRejection>,
) -> Result<Json<EntryView>> {
    authorize(&node.shared, &headers, Role::Matcher)?;
    Ok(Json(node.entry(&entry_id(path)?)?))
}

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

pub(super) async fn retract(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    path: std::result::Result<Path<String>, PathRejection>,
    body: std::result::Result<Json<RetractEntry>, JsonRejection>,
) -> Result<(StatusCode, Json<Written>)> {
    authorize(&node.shared, &headers, Role::Admin)?;
    let id = entry_id(path)?;
    // The body is optional: a bare POST retracts without a reason.
    let req = match body {
        Ok(Json(req)) => req,
        Err(JsonRejection::MissingJsonContentType(_)) => RetractEntry::default(),
        Err(e) => return Err(e.into()),
    };
    Ok((StatusCode::CREATED, Json(node.retract(id, req).await?)))
}

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
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("at most {MAX_MATCH_HASHES} hashes per call"),
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
        let hashed = crate::hashers::fingerprint_bytes(&body);
        let results = matcher.match_and_act(&hashed.computed);
        (hashed, results)
    })
    .await
    .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "hashing the upload failed"))?;
    let mut response = respond(results);
    response.image_error = hashed.image_error;
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
    MatchResponse { results, action, image_error: None }
}

pub(super) async fn records(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    query: std::result::Result<Query<RecordsQuery>, QueryRejection>,
) -> Result<Json<Vec<RawRecord>>> {
    authorize(&node.shared, &headers, Role::Matcher)?;
    let Query(q) = query?;
    let records = node.records(&q.author, q.from_seq.unwrap_or(1), q.limit.unwrap_or(100))?;
    Ok(Json(records.iter().map(RawRecord::of).collect()))
}

pub(super) async fn alerts(State(node): State<NodeHandle>, headers: HeaderMap) -> Result<Json<AlertList>> {
    authorize(&node.shared, &headers, Role::Matcher)?;
    Ok(Json(node.alerts()))
}

pub(super) async fn membership(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
) -> Result<Json<MembershipView>> {
    authorize(&node.shared, &headers, Role::Matcher)?;
    Ok(Json(node.membership()))
}

pub(super) async fn propose(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    body: std::result::Result<Json<ProposeChanges>, JsonRejection>,
) -> Result<(StatusCode, Json<ProposalWritten>)> {
    authorize(&node.shared, &headers, Role::Admin)?;
    let Json(req) = body?;
    Ok((StatusCode::CREATED, Json(node.propose(req).await?)))
}

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

pub(super) async fn queue(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    query: std::result::Result<Query<QueueQuery>, QueryRejection>,
) -> Result<Json<QueueView>> {
    authorize(&node.shared, &headers, Role::Admin)?;
    let Query(q) = query?;
    Ok(Json(node.queue(&q)))
}

pub(super) async fn history(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    path: std::result::Result<Path<String>, PathRejection>,
) -> Result<Json<HistoryView>> {
    authorize(&node.shared, &headers, Role::Matcher)?;
    Ok(Json(node.history(&entry_id(path)?)?))
}

pub(super) async fn export_proof(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    path: std::result::Result<Path<String>, PathRejection>,
) -> Result<Json<crate::audit::ProofBundle>> {
    authorize(&node.shared, &headers, Role::Matcher)?;
    Ok(Json(node.export_proof(&entry_id(path)?)?))
}

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

pub(super) async fn stats(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    query: std::result::Result<Query<crate::api::StatsQuery>, QueryRejection>,
) -> Result<Json<crate::api::StatsView>> {
    authorize(&node.shared, &headers, Role::Matcher)?;
    let Query(query) = query?;
    Ok(Json(node.stats(&query)?))
}

pub(super) async fn publish_stats(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<crate::api::StatsPublished>)> {
    authorize(&node.shared, &headers, Role::Admin)?;
    Ok((StatusCode::CREATED, Json(crate::api::StatsPublished { records: node.publish_stats().await? })))
}

/// A follower's report of its counters. The matcher role: it is the token a follower holds
/// for its member node, and what it reports is its matching.
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
