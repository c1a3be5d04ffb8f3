//! The HTTP/JSON RPC under `/v1`, described by `/openapi.json`.
//!
//! Handlers only parse, authorize and call [`NodeHandle`] methods; every failure becomes a
//! JSON `{"error": …}` with a 4xx status that says what was wrong. Beside `/v1`, `hma`
//! answers the paths and shapes of Meta's Hasher-Matcher-Actioner for its existing clients.

mod auth;
mod error;
mod handlers;
mod hma;
mod lists;
mod sync;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::NodeHandle;
pub use error::ApiError;

/// The OpenAPI document.
pub const OPENAPI: &str = include_str!("openapi.json");

/// The RPC's connection cap and timeouts (`rpc.*` in the config).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Longest wait for a request's head.
    pub header_timeout: Duration,
    /// Longest a JSON request may take.
    pub request_timeout: Duration,
}

/// Longest a stopping node waits for requests in flight.
const DRAIN: Duration = Duration::from_secs(5);

/// Largest JSON request body, whatever `rpc.max_body_bytes` allows uploads: a JSON request of
/// this API is small (10,000 hashes to match fit in under 1 MiB).
pub const MAX_JSON_BYTES: usize = 1024 * 1024;

/// The router. Every route but the probes and the API document needs a known token, checked
/// before any of the body is read; JSON bodies are limited to [`MAX_JSON_BYTES`], uploads to
/// `rpc.max_body_bytes`, and lists stream through in batches with no limit.
pub fn router(node: NodeHandle) -> Router {
    let uploads = node.shared.max_body_bytes;
    let json = uploads.min(MAX_JSON_BYTES);
    let metrics = node.shared.metrics.rpc.clone();
    let limited = |router: Router<NodeHandle>, limit: usize| {
        router
            .layer(DefaultBodyLimit::max(limit))
            .layer(axum::middleware::from_fn_with_state(limit, reject_oversized))
    };
    let request_timeout = node.shared.rpc_limits.request_timeout;
    let json_routes = Router::new()
        .route("/metrics", get(handlers::metrics))
        .route("/v1/status", get(handlers::status))
        .route("/v1/peers", get(handlers::peers))
        .route("/v1/entries", post(handlers::submit).get(handlers::list))
        .route("/v1/entries/{id}", get(handlers::show))
        .route("/v1/entries/{id}/votes", post(handlers::vote))
        .route("/v1/entries/{id}/retract", post(handlers::retract))
        .route("/v1/entries/{id}/history", get(handlers::history))
        .route("/v1/entries/{id}/proof", get(handlers::export_proof))
        .route("/v1/queue", get(handlers::queue))
        .route("/v1/match/hashes", post(handlers::match_hashes))
        .route("/v1/records", get(handlers::records))
        .route("/v1/sync", post(sync::sync))
        .route("/v1/alerts", get(handlers::alerts))
        .route("/v1/webhooks", get(handlers::webhooks))
        .route("/v1/stats", get(handlers::stats))
        .route("/v1/stats/publish", post(handlers::publish_stats))
        .route("/v1/stats/followers", post(handlers::follower_counters))
        .route("/v1/membership", get(handlers::membership))
        .route("/v1/membership/proposals", post(handlers::propose))
        .route("/v1/membership/proposals/{id}/approve", post(handlers::approve));
    let upload_routes = Router::new().route("/v1/match", post(handlers::match_file));
    // Lists stream through a batch at a time, so they may be of any size.
    let list_routes =
        Router::new().route("/v1/import", post(lists::import)).route("/v1/export", get(lists::export));
    let json_routes = json_routes
        .layer(axum::middleware::from_fn_with_state(json, read_body))
        .layer(axum::middleware::from_fn_with_state(request_timeout, time_limit));
    let with_token = limited(json_routes, json)
        .merge(limited(upload_routes, uploads))
        .merge(list_routes)
        .route_layer(axum::middleware::from_fn_with_state(node.clone(), auth::known_token));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(handlers::readyz))
        .route("/openapi.json", get(handlers::openapi))
        .merge(with_token)
        .merge(hma::routes(&node, |router, limit| limited(router, limit.min(uploads)), json))
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        // Last, so it wraps every route and both fallbacks and sees every answer, 413s included.
        .layer(axum::middleware::from_fn_with_state(metrics, crate::metrics::rpc::record))
        .with_state(node)
}

/// Answers 413 from the `Content-Length` header alone, before any of the body is read, so a
/// client learns at once that its upload is too large. (Bodies without a length are still
/// cut off at the limit as they stream in.)
async fn reject_oversized(
    axum::extract::State(limit): axum::extract::State<usize>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "request body is larger than this endpoint allows ({limit} bytes: uploads up to rpc.max_body_bytes, JSON up to 1 MiB)"
            ),
        )
        .into_response();
    }
    next.run(request).await
}

/// Reads a JSON request's whole body (at most `limit` bytes) before its handler runs, so a
/// handler that takes no body still leaves the connection ready for the client's next
/// request: hyper closes a keep-alive connection whose body was left unread, and a client
/// that reuses it then finds it gone.
async fn read_body(
    axum::extract::State(limit): axum::extract::State<usize>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => next.run(axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes))).await,
        Err(_) => ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body could not be read, or is larger than this endpoint allows ({limit} bytes of JSON)"),
        )
        .into_response(),
    }
}

/// Answers 408 when a JSON request takes longer than `rpc.request_timeout` from its head to
/// its answer (a client that sends its body slowly, or a call stuck behind the store).
async fn time_limit(
    axum::extract::State(limit): axum::extract::State<Duration>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            format!("the request took longer than rpc.request_timeout ({limit:?}) allows; send it faster, or in smaller parts"),
        )
        .into_response(),
    }
}

/// Serves the RPC on `listener` until `cancel` fires: at most `rpc.max_connections`
/// connections at once (more are closed as they arrive, and counted), each cut off if its
/// client takes longer than `rpc.header_timeout` to send a request's head. On `cancel`, the
/// requests in flight get [`DRAIN`] to finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    node: NodeHandle,
    cancel: CancellationToken,
) {
    let limits = node.shared.rpc_limits;
    let refused = node.shared.metrics.rpc.clone();
    let app = router(node);
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let stream = tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, say: wait a little rather than spin.
                    tracing::warn!(error = %e, "cannot accept an RPC connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&open).try_acquire_owned() else {
            refused.refuse_connection();
            continue; // dropping the stream closes it
        };
        let _ = stream.set_nodelay(true);
        let (app, watcher, tls) = (app.clone(), graceful.watcher(), tls.clone());
        tokio::spawn(async move {
            let served = match tls {
                // The handshake is part of the head: a client that stalls in it is cut off too.
                Some(tls) => match tokio::time::timeout(limits.header_timeout, tls.accept(stream)).await {
                    Ok(Ok(stream)) => serve_connection(stream, app, limits, watcher).await,
                    Ok(Err(e)) => Err(format!("TLS handshake failed: {e}")),
                    Err(_) => Err("TLS handshake took longer than rpc.header_timeout".into()),
                },
                None => serve_connection(stream, app, limits, watcher).await,
            };
            if let Err(e) = served {
                tracing::debug!(error = %e, "RPC connection ended");
            }
            drop(permit);
        });
    }
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN) => tracing::warn!("RPC requests still in flight at shutdown were cut off"),
    }
}

/// Serves HTTP/1.1 on one connection, plain or TLS, cut off if a request's head is slow.
async fn serve_connection<S>(
    stream: S,
    app: Router,
    limits: Limits,
    watcher: hyper_util::server::graceful::Watcher,
) -> Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper_util::service::TowerToHyperService::new(app);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    watcher.watch(http.serve_connection(TokioIo::new(stream), service)).await.map_err(|e| e.to_string())
}
