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
mod openapi;
mod sync;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::NodeHandle;
pub use error::ApiError;

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

/// The routes, in groups that pass through the same middleware. The router and the OpenAPI
/// document are both made from these groups, and what each group's middleware does and which
/// answers it adds to its routes are written side by side in [`Group`], so the document can
/// leave out neither a route nor a status the router has.
fn groups() -> [(OpenApiRouter<NodeHandle>, Group); 7] {
    let open = OpenApiRouter::new()
        .routes(routes!(handlers::healthz))
        .routes(routes!(handlers::readyz))
        .routes(routes!(handlers::openapi));
    let json = OpenApiRouter::new()
        .routes(routes!(handlers::metrics))
        .routes(routes!(handlers::status))
        .routes(routes!(handlers::peers))
        .routes(routes!(handlers::submit, handlers::list))
        .routes(routes!(handlers::show))
        .routes(routes!(handlers::vote))
        .routes(routes!(handlers::retract))
        .routes(routes!(handlers::history))
        .routes(routes!(handlers::export_proof))
        .routes(routes!(handlers::queue))
        .routes(routes!(handlers::match_hashes))
        .routes(routes!(handlers::records))
        .routes(routes!(sync::sync))
        .routes(routes!(handlers::alerts))
        .routes(routes!(handlers::webhooks))
        .routes(routes!(handlers::stats))
        .routes(routes!(handlers::publish_stats))
        .routes(routes!(handlers::follower_counters))
        .routes(routes!(handlers::membership))
        .routes(routes!(handlers::propose))
        .routes(routes!(handlers::approve));
    let uploads = OpenApiRouter::new().routes(routes!(handlers::match_file));
    let lists = OpenApiRouter::new().routes(routes!(lists::import)).routes(routes!(lists::export));
    [
        (open, Group::Open),
        (json, Group::Json),
        (uploads, Group::Uploads),
        (lists, Group::Lists),
        (hma::open_routes(), Group::Open),
        (hma::upload_routes(), Group::HmaUploads),
        (hma::json_routes(), Group::HmaJson),
    ]
}

/// The middleware a group of routes passes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    /// No token: probes and the document.
    Open,
    /// JSON requests: a token, bodies up to [`MAX_JSON_BYTES`] read before the handler, and
    /// `rpc.request_timeout`.
    Json,
    /// File uploads: a token, bodies up to `rpc.max_body_bytes`.
    Uploads,
    /// Lists: a token; the body streams through in batches, with no size limit.
    Lists,
    /// HMA's uploads: as [`Group::Uploads`], refused in HMA's error shape.
    HmaUploads,
    /// HMA's other routes: a token, JSON-sized bodies.
    HmaJson,
}

impl Group {
    /// Wraps the group's routes in its middleware. The token is checked first, before any of
    /// the body is read; then the body's size, from its declared length and as it streams.
    fn layer(self, routes: OpenApiRouter<NodeHandle>, node: &NodeHandle) -> OpenApiRouter<NodeHandle> {
        let uploads = node.shared.max_body_bytes;
        let json = uploads.min(MAX_JSON_BYTES);
        let limited = |routes: OpenApiRouter<NodeHandle>, limit: usize| {
            routes
                .layer(DefaultBodyLimit::max(limit))
                .layer(axum::middleware::from_fn_with_state(limit, reject_oversized))
        };
        let token = || axum::middleware::from_fn_with_state(node.clone(), auth::known_token);
        let hma_token = || axum::middleware::from_fn_with_state(node.clone(), hma::known_token);
        let timeout = node.shared.rpc_limits.request_timeout;
        match self {
            Self::Open => routes,
            Self::Json => limited(
                routes
                    .layer(axum::middleware::from_fn_with_state(json, read_body))
                    .layer(axum::middleware::from_fn_with_state(timeout, time_limit)),
                json,
            )
            .route_layer(token()),
            Self::Uploads => limited(routes, uploads).route_layer(token()),
            Self::Lists => routes.route_layer(token()),
            Self::HmaUploads => limited(routes, uploads).route_layer(hma_token()),
            Self::HmaJson => limited(routes, json).route_layer(hma_token()),
        }
    }

    /// The answers [`Group::layer`]'s middleware may give on each of the group's routes.
    fn responses(self) -> Vec<openapi::Answer> {
        use openapi::Answer;
        let token = Answer::error(401, "No `Authorization: Bearer <token>` header, or an unknown token.");
        let too_large = Answer::error(
            413,
            "The body is larger than this endpoint allows (JSON 1 MiB, uploads rpc.max_body_bytes).",
        );
        match self {
            Self::Open => vec![],
            Self::Json => {
                vec![
                    token,
                    Answer::error(408, "The request took longer than rpc.request_timeout."),
                    too_large,
                ]
            }
            Self::Uploads => vec![token, too_large],
            Self::Lists => vec![token],
            Self::HmaUploads | Self::HmaJson => vec![token.hma(), too_large],
        }
    }
}

/// The OpenAPI document, made from the routes (served at `/openapi.json`; `docs/openapi.json`
/// is a copy a test keeps equal).
pub fn openapi() -> serde_json::Value {
    let mut document = serde_json::to_value(described()).unwrap_or_default();
    openapi::unsigned_ranges(&mut document);
    document
}

/// The document as utoipa makes it from the routes.
fn described() -> utoipa::openapi::OpenApi {
    let mut api = openapi::base();
    for (routes, group) in groups() {
        let mut part = routes.into_openapi();
        openapi::add_answers(&mut part, &group.responses());
        api.merge(part);
    }
    openapi::add_json_body_answers(&mut api);
    api
}

/// The router. Every route but the probes and the API document needs a known token, checked
/// before any of the body is read; JSON bodies are limited to [`MAX_JSON_BYTES`], uploads to
/// `rpc.max_body_bytes`, and lists stream through in batches with no limit.
pub fn router(node: NodeHandle) -> Router {
    let metrics = node.shared.metrics.rpc.clone();
    let mut routes = OpenApiRouter::new();
    for (group, kind) in groups() {
        routes = routes.merge(kind.layer(group, &node));
    }
    let (router, _) = routes.split_for_parts();
    router
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

#[cfg(test)]
mod tests {
    /// `docs/openapi.json` is the document the node serves, for readers of the repository.
    #[test]
    fn the_document_in_docs_is_the_generated_one() {
        let document =
            serde_json::to_string_pretty(&super::openapi()).expect("the document serialises") + "\n";
        crate::assert_generated_doc("openapi.json", &document, "rpc::tests");
    }
}
