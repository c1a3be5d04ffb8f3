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

mod curation;
mod hashing;
mod matching;
mod signal;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hashmesh_protocol::Action;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiError;
use super::auth::authorize;
use crate::NodeHandle;
use crate::config::Role;

/// HMA's open routes: `/status` answers like `/healthz`.
pub(super) fn open_routes() -> OpenApiRouter<NodeHandle> {
    OpenApiRouter::new().routes(routes!(status)).routes(routes!(status_live))
}

/// HMA's uploads: limited to `rpc.max_body_bytes`.
pub(super) fn upload_routes() -> OpenApiRouter<NodeHandle> {
    OpenApiRouter::new()
        .routes(routes!(hashing::hash_url, hashing::hash_upload))
        .routes(routes!(matching::lookup, matching::lookup_upload))
}

/// The rest of HMA's routes: their bodies are JSON-sized.
pub(super) fn json_routes() -> OpenApiRouter<NodeHandle> {
    OpenApiRouter::new()
        .routes(routes!(matching::raw_lookup))
        .routes(routes!(curation::banks))
        .routes(routes!(curation::bank))
        .routes(routes!(curation::bank_content))
        .routes(routes!(curation::signal_types))
        .routes(routes!(curation::content_types))
}

/// [`super::auth::known_token`], answering in HMA's error shape.
pub(super) async fn known_token(
    axum::extract::State(node): axum::extract::State<NodeHandle>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match matcher(&node, request.headers()) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
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

/// HMA's error body.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(super) struct HmaErrorBody {
    /// What went wrong.
    message: String,
}

impl IntoResponse for HmaError {
    fn into_response(self) -> Response {
        (self.status, Json(HmaErrorBody { message: self.message })).into_response()
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
#[utoipa::path(
    get,
    path = "/status",
    tag = "hma",
    security(()),
    responses((status = 200, description = "`I-AM-ALIVE`.", body = String, content_type = "text/plain"))
)]
async fn status() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "I-AM-ALIVE")
}

/// `GET /status/live`: the same.
#[utoipa::path(
    get,
    path = "/status/live",
    tag = "hma",
    security(()),
    responses((status = 200, description = "`I-AM-ALIVE`.", body = String, content_type = "text/plain"))
)]
async fn status_live() -> impl IntoResponse {
    status().await
}

/// Whether a hit is a match for an HMA client: its action is remove or review (see the
/// module doc).
fn counts(action: Action) -> bool {
    action != Action::None
}
