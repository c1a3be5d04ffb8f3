//! `POST /v1/import` and `GET /v1/export`: hash lists streamed in and out, of any size (these
//! two routes have no body limit; the list is read a batch at a time).

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use tokio::sync::mpsc;
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::ApiError;
use super::auth::authorize;
use crate::NodeHandle;
use crate::api::{ErrorBody, ExportQuery, ImportQuery, ImportReport};
use crate::config::Role;
use crate::lists::Defaults;

type Result<T> = std::result::Result<T, ApiError>;

#[utoipa::path(
    post,
    path = "/v1/import",
    tag = "lists",
    description = "Needs the submitter role. The list streams through in batches, so it may be of any size.",
    params(ImportQuery),
    request_body(content = Option<String>, content_type = "text/plain", description = "The list, in the format named by `format`; no body is an empty list."),
    responses(
        (status = 200, description = "What the import did: rows read, imported, duplicates, and the first bad rows with their reasons.", body = ImportReport),
        (status = 400, description = "The query string is not valid.", body = ErrorBody),
        (status = 403, description = "The token may not submit, or this node is a follower.", body = ErrorBody),
        (status = 409, description = "This member forked its log.", body = ErrorBody),
        (status = 422, description = "The list cannot be read as the format says (a `plain` or `te` list needs `category`).", body = ErrorBody),
        (status = 503, description = "This node cannot write yet.", body = ErrorBody),
    )
)]
pub(super) async fn import(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    query: std::result::Result<Query<ImportQuery>, QueryRejection>,
    body: Body,
) -> Result<Json<ImportReport>> {
    authorize(&node.shared, &headers, Role::Submitter)?;
    let Query(query) = query?;
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let input = SyncIoBridge::new(StreamReader::new(stream));
    let defaults = Defaults { kind: query.kind, category: query.category };
    let report = tokio::task::spawn_blocking(move || node.import_list(query.format, &defaults, input))
        .await
        .map_err(|_| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the import failed; see the node's log")
        })??;
    Ok(Json(report))
}

#[utoipa::path(
    get,
    path = "/v1/export",
    tag = "lists",
    params(ExportQuery),
    responses(
        (status = 200, description = "The entries' fingerprints as a list, streamed: `jsonl` (the default) as `application/x-ndjson`, `csv` and `hma` as `text/csv`, `plain` and `te` as `text/plain`.",
            content(
                (String = "application/x-ndjson"),
                (String = "text/csv"),
                (String = "text/plain"),
            )),
        (status = 400, description = "The query string is not valid.", body = ErrorBody),
    )
)]
pub(super) async fn export(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    query: std::result::Result<Query<ExportQuery>, QueryRejection>,
) -> Result<Response> {
    authorize(&node.shared, &headers, Role::Matcher)?;
    let Query(query) = query?;
    let format = query.format.unwrap_or(crate::lists::Format::Jsonl);
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(8);
    tokio::task::spawn_blocking(move || {
        let mut out = Chunks { tx, buf: Vec::with_capacity(CHUNK) };
        // A client that hangs up ends the export: the next send fails.
        match node
            .export_list(&query, &mut out)
            .and_then(|done| std::io::Write::flush(&mut out).map(|()| done))
        {
            Ok(done) => tracing::info!(
                %format,
                entries = done.entries,
                fingerprints = done.fingerprints,
                unwritable = done.unwritable,
                "export done"
            ),
            Err(e) => {
                tracing::debug!(error = %e, "export ended early");
                let _ = out.tx.blocking_send(Err(e));
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    Ok(([(header::CONTENT_TYPE, format.content_type())], Body::from_stream(stream)).into_response())
}

const CHUNK: usize = 64 * 1024;

/// A `Write` that sends what is written to the response body in 64 KiB chunks.
struct Chunks {
    tx: mpsc::Sender<std::io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl std::io::Write for Chunks {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client hung up"))
    }
}
