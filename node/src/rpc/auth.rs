//! Bearer-token authorization. Tokens are compared by their blake3 hash, so the config holds
//! nothing that would let a reader of it call the RPC.

use axum::http::{HeaderMap, StatusCode, header};

use super::ApiError;
use crate::config::{Role, token_hash};
use crate::node::Shared;

/// Who made a request.
pub(crate) struct Caller {
    /// The token's name.
    pub(crate) name: String,
}

/// Checks the request's bearer token grants at least `needed`.
pub(crate) fn authorize(shared: &Shared, headers: &HeaderMap, needed: Role) -> Result<Caller, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing `Authorization: Bearer <token>` header (the CLI reads HASHMESH_TOKEN)",
            )
        })?;
    let hash = token_hash(token.trim());
    let entry = shared
        .tokens
        .iter()
        .find(|t| t.blake3 == hash)
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "unknown token"))?;
    if entry.role < needed {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("token {:?} has role {:?}; this call needs {:?}", entry.name, entry.role, needed),
        ));
    }
    Ok(Caller { name: entry.name.clone() })
}

/// Answers 401 to a request without a known token before any of its body is read, so a
/// stranger cannot make the node take in megabytes; each handler then checks its role.
/// Applied as a route layer: the open routes and unknown paths do not pass through it.
pub(super) async fn known_token(
    axum::extract::State(node): axum::extract::State<crate::NodeHandle>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match authorize(&node.shared, request.headers(), Role::Matcher) {
        Ok(_) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}
