//! HMA's hashing blueprint, `/h`: an upload's hashes by signal type; no downloads.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde::Deserialize;

use super::signal::{self, ContentType, UploadHashes};
use super::{HmaError, NO_DOWNLOADS, Result, matcher};
use crate::NodeHandle;

/// `GET /h/hash?url=…`: refused; HMA would download the URL.
pub(super) async fn hash_url(
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
pub(super) struct UrlQuery {
    url: Option<String>,
}

/// `POST /h/hash`: one multipart file whose field names its content type →
/// `{"<signal type>": "<hash>"}`, `""` for a PDQ too low in quality.
pub(super) async fn hash_upload(
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

/// Reads HMA's upload — exactly one multipart file, its field named for its content type —
/// and hashes it off the async workers, one job per core.
pub(super) async fn hash_form(
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
