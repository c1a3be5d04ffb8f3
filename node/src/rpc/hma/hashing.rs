//! HMA's hashing blueprint, `/h`: an upload's hashes by signal type; no downloads.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde::Deserialize;

use super::signal::{self, ContentType, UploadHashes};
use super::{HmaError, HmaErrorBody, NO_DOWNLOADS, Result, matcher};
use crate::NodeHandle;

/// `GET /h/hash?url=…`: refused; HMA would download the URL.
#[utoipa::path(
    get,
    path = "/h/hash",
    tag = "hma",
    params(UrlQuery),
    responses(
        (status = 400, description = "Refused: this node does not download what callers name; upload the file with `POST /h/hash`.", body = HmaErrorBody),
        (status = 422, description = "`url` is missing.", body = HmaErrorBody),
    )
)]
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

/// `GET /h/hash` query.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct UrlQuery {
    /// The URL HMA would download.
    #[param(required = true)]
    url: Option<String>,
}

/// `POST /h/hash`: one multipart file whose field names its content type →
/// `{"<signal type>": "<hash>"}`, `""` for a PDQ too low in quality.
#[utoipa::path(
    post,
    path = "/h/hash",
    tag = "hma",
    request_body(content = crate::rpc::openapi::HmaUpload, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "The hash of each signal type, in hex: `pdq` for a photo (`\"\"` when too low in quality), `video_md5` and `video_sha256` for a video.", body = BTreeMap<String, String>),
        (status = 400, description = "No file, more than one, a field that names no content type, or a photo that does not decode.", body = HmaErrorBody),
        (status = 503, description = "The node is shutting down.", body = HmaErrorBody),
    )
)]
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
        // Exactly one part, named for its content type: a part that names none is refused
        // rather than skipped, so a typo in the field name is not a silent miss.
        let content = ContentType::parse(&name).map_err(HmaError::bad_request)?;
        if file.is_some() {
            return Err(HmaError::bad_request("Only one file allowed per request"));
        }
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
