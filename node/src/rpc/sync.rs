//! `POST /v1/sync`: the sync protocol over HTTP, for followers (`hashmesh run --follow`).
//!
//! The same requests and answers member nodes exchange over libp2p, as CBOR. A heads request
//! with `?after=<digest>` is a long poll: it is answered once this node's clock digest differs
//! from `after` (the follower has seen that clock), or after [`LONG_POLL`] with the same clock.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::ApiError;
use super::auth::authorize;
use crate::NodeHandle;
use crate::api::ErrorBody;
use crate::config::Role;
use crate::net::follow::{CBOR, LONG_POLL};
use crate::replica::ReplicaHandle;
use crate::sync::{SyncRequest, digest};

/// The query of `POST /v1/sync`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct SyncQuery {
    /// Hex blake3 of a clock of this node's: a heads request waits until the clock moves on
    /// (for up to 20 s).
    #[param(pattern = "^[0-9a-fA-F]{64}$")]
    after: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/sync",
    tag = "sync",
    description = "For followers (`hashmesh run --follow`): the `/hashmesh/sync/3` messages of the peer protocol, as CBOR.",
    params(SyncQuery),
    request_body(content = super::openapi::Binary, content_type = "application/cbor", description = "A sync request: heads, a range of one author's log, or a proof."),
    responses(
        (status = 200, description = "The sync answer, as a member peer would give it.", body = super::openapi::Binary, content_type = "application/cbor"),
        (status = 400, description = "The body is not a sync request, or `after` is not 64 hex digits.", body = ErrorBody),
        (status = 415, description = "The body is not `application/cbor`.", body = ErrorBody),
    )
)]
pub(super) async fn sync(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    query: Result<Query<SyncQuery>, QueryRejection>,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize(&node.shared, &headers, Role::Matcher)?;
    let Query(query) = query?;
    let media = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if media != CBOR {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("send the sync request as {CBOR} (this endpoint is for `hashmesh run --follow`)"),
        ));
    }
    let request: SyncRequest = cbor4ii::serde::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the body is not a sync request: {e}")))?;
    let replica = node.replica().clone();
    if let (SyncRequest::Heads, Some(after)) = (&request, query.after) {
        let mut seen = [0u8; 32];
        hex::decode_to_slice(&after, &mut seen).map_err(|_| {
            ApiError::bad_request(format!("after={after:?} is not a clock digest (64 hex digits)"))
        })?;
        tokio::select! {
            () = until_moved_on(&replica, seen) => {}
            () = node.shared.stopping.cancelled() => {}
        }
    }
    let answer = tokio::task::spawn_blocking(move || replica.answer(request)).await.map_err(|_| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the sync answer failed; see the node's log")
    })?;
    let bytes = cbor4ii::serde::to_vec(Vec::new(), &answer).map_err(|e| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot encode the answer: {e}"))
    })?;
    Ok(([(header::CONTENT_TYPE, CBOR)], bytes).into_response())
}

/// Waits until the replica's clock digest differs from `seen`, or [`LONG_POLL`] has passed
/// (or the node stops: the caller selects on that).
async fn until_moved_on(replica: &ReplicaHandle, seen: [u8; 32]) {
    // Subscribed before the clock is read, so a commit in between is not missed.
    let mut commits = replica.commits();
    let deadline = tokio::time::Instant::now() + LONG_POLL;
    while digest(&replica.clock()) == seen {
        match tokio::time::timeout_at(deadline, commits.changed()).await {
            Ok(Ok(())) => {}
            // The time is up, or the writer is gone (shutting down): answer with what is held.
            Ok(Err(_)) | Err(_) => return,
        }
    }
}
