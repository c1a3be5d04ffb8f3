//! RPC errors: a status code and a message that says what to do.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::api::ErrorBody;
use crate::node::NodeError;

/// An error answered to an RPC client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    /// An error with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }

    /// 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// The status and message, for endpoints that answer errors in another shape (HMA's).
    pub(super) fn into_parts(self) -> (StatusCode, String) {
        (self.status, self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(ErrorBody { error: self.message })).into_response()
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        let status = match &e {
            NodeError::UnknownEntry(_) | NodeError::UnknownProposal(_) => StatusCode::NOT_FOUND,
            NodeError::OwnEntry(_)
            | NodeError::NotAuthor(_)
            | NodeError::NotMember(_)
            | NodeError::Follower(_) => StatusCode::FORBIDDEN,
            NodeError::AlreadyRetracted(_) | NodeError::Conflict(_) => StatusCode::CONFLICT,
            NodeError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            NodeError::Store(_) | NodeError::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
            NodeError::Forked(_) => StatusCode::CONFLICT,
        };
        Self::new(status, e.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let message = match &r {
            JsonRejection::MissingJsonContentType(_) => {
                "send the body as JSON with `Content-Type: application/json`".to_owned()
            }
            JsonRejection::BytesRejection(_) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                "request body is larger than rpc.max_body_bytes allows".to_owned()
            }
            _ => format!("invalid JSON body: {}", r.body_text()),
        };
        // Unknown fields, bad fingerprints and wrong types all come back as 422 from axum; a
        // client that sent syntactically broken JSON gets 400.
        Self::new(r.status(), message)
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::bad_request(format!("invalid query string: {}", r.body_text()))
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::bad_request(format!("invalid path: {}", r.body_text()))
    }
}
