//! The parts of the OpenAPI document that no single handler states: the API's description and
//! security scheme, and the answers a group's middleware adds to each of its routes. Each
//! route's own parameters, bodies and answers are in its `#[utoipa::path]`.

use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{AdditionalProperties, KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};
use utoipa::{OpenApi as _, ToSchema};

use super::hma::HmaErrorBody;
use crate::api::ErrorBody;

/// The document before the routes are merged in.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "hashmesh node RPC",
        description = "One member node of a hashmesh federation: submit and vote on signed entries, match \
fingerprints and files against the replica, audit records, govern the membership, and HMA-compatible \
endpoints for existing clients. Every route but the probes and this document needs \
`Authorization: Bearer <token>`; the token's role (matcher < submitter < admin) bounds what it may do.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(ErrorBody, HmaErrorBody, crate::signals::SignalType)),
    security(("bearer" = [])),
    tags(
        (name = "probes", description = "Liveness, readiness and this document; no token."),
        (name = "entries", description = "Entries and their votes."),
        (name = "matching", description = "Looking fingerprints and files up."),
        (name = "lists", description = "Importing and exporting hash lists."),
        (name = "audit", description = "Signed records, equivocation alerts, proofs."),
        (name = "membership", description = "The federation's members and proposals to change them."),
        (name = "stats", description = "Members' published daily counters."),
        (name = "node", description = "This node's state, peers, webhooks and metrics."),
        (name = "sync", description = "Replication for followers."),
        (name = "hma", description = "Meta's Hasher-Matcher-Actioner paths and shapes."),
    ),
    modifiers(&Bearer),
)]
struct Base;

/// The `bearer` security scheme.
struct Bearer;

impl utoipa::Modify for Bearer {
    fn modify(&self, api: &mut OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A token from the node's `rpc-tokens` file (`hashmesh token`)."))
                    .build(),
            ),
        );
    }
}

/// The document's description, security scheme and shared schemas.
pub(super) fn base() -> OpenApi {
    Base::openapi()
}

/// An answer that middleware may give on any route of its group.
#[derive(Debug, Clone, Copy)]
pub(super) struct Answer {
    status: u16,
    description: &'static str,
    schema: fn() -> std::borrow::Cow<'static, str>,
}

impl Answer {
    /// An error answered as `{"error": …}`.
    pub(super) fn error(status: u16, description: &'static str) -> Self {
        Self { status, description, schema: ErrorBody::name }
    }

    /// The same error, answered in HMA's shape `{"message": …}`.
    pub(super) fn hma(self) -> Self {
        Self { schema: HmaErrorBody::name, ..self }
    }
}

/// Adds `answers` to every operation of `api` that does not state that status itself.
pub(super) fn add_answers(api: &mut OpenApi, answers: &[Answer]) {
    for operation in operations(api) {
        add_to(operation, answers);
    }
}

/// Every operation of the document.
fn operations(api: &mut OpenApi) -> impl Iterator<Item = &mut Operation> {
    api.paths.paths.values_mut().flat_map(|item| {
        [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch]
            .into_iter()
            .flatten()
    })
}

fn add_to(operation: &mut Operation, answers: &[Answer]) {
    for answer in answers {
        let schema = Ref::from_schema_name((answer.schema)());
        operation.responses.responses.entry(answer.status.to_string()).or_insert_with(|| {
            ResponseBuilder::new()
                .description(answer.description)
                .content("application/json", ContentBuilder::new().schema(Some(schema)).build())
                .build()
                .into()
        });
    }
}

/// Raw bytes: a file, or a CBOR message.
pub(super) struct Binary;

impl utoipa::PartialSchema for Binary {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}
impl ToSchema for Binary {}

/// `POST /v1/match` as a form: the file in a part named `file`.
pub(super) struct FileForm;

impl utoipa::PartialSchema for FileForm {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .property("file", Binary::schema())
            .required("file")
            .description(Some("The file, in a part named `file` (or the first part with a file name)."))
            .into()
    }
}
impl ToSchema for FileForm {}

/// HMA's upload form: exactly one file, in a part named for its content type.
pub(super) struct HmaUpload;

impl utoipa::PartialSchema for HmaUpload {
    fn schema() -> RefOr<Schema> {
        let part = |what: &str| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
                .description(Some(what))
        };
        ObjectBuilder::new()
            .property("photo", part("An image: hashed to `pdq`."))
            .property("video", part("A video: hashed to `video_md5` and `video_sha256` of its bytes."))
            .min_properties(Some(1))
            .max_properties(Some(1))
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .description(Some("Exactly one file, in a part named for its content type: `photo` or `video`."))
            .into()
    }
}
impl ToSchema for HmaUpload {}

/// Every operation whose request body is JSON may also answer what axum's JSON extractor
/// answers: 400 for a body that is not JSON, 415 without `Content-Type: application/json`,
/// 422 for JSON of the wrong shape.
pub(super) fn add_json_body_answers(api: &mut OpenApi) {
    let answers = [
        Answer::error(400, "The body is not valid JSON."),
        Answer::error(415, "The body is not sent as `Content-Type: application/json`."),
        Answer::error(422, "The JSON does not have the shape the schema gives."),
    ];
    for operation in operations(api) {
        let json = operation.request_body.as_ref().is_some_and(|body| match body {
            RefOr::T(body) => body.content.contains_key("application/json"),
            RefOr::Ref(_) => false,
        });
        if json {
            add_to(operation, &answers);
        }
    }
}

/// Gives each unsigned integer its true range. utoipa writes Rust's `u32` and `u64` as the
/// signed formats `int32` and `int64` with a minimum of 0, which promise clients nothing above
/// 2^31 - 1 and 2^63 - 1 though the node takes values up to 2^32 - 1 and 2^64 - 1.
pub(super) fn unsigned_ranges(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(object) => {
            let integer = match object.get("type") {
                Some(serde_json::Value::String(t)) => t == "integer",
                Some(serde_json::Value::Array(types)) => types.iter().any(|t| t == "integer"),
                _ => false,
            };
            let unsigned = object.get("minimum").and_then(serde_json::Value::as_u64) == Some(0);
            let maximum = match object.get("format").and_then(serde_json::Value::as_str) {
                Some("int32") => Some(u64::from(u32::MAX)),
                Some("int64") => Some(u64::MAX),
                _ => None,
            };
            if let (true, true, Some(maximum)) = (integer, unsigned, maximum) {
                object.remove("format");
                object.entry("maximum").or_insert(maximum.into());
            }
            object.values_mut().for_each(unsigned_ranges);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(unsigned_ranges),
        _ => {}
    }
}
