//! HMA's matching blueprint, `/m`: one signal or one upload looked up, answered by bank with
//! content ids and string distances.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

use super::signal::{self, SignalType};
use super::{HmaError, HmaErrorBody, NO_DOWNLOADS, Result, counts, hashing, matcher};
use crate::NodeHandle;
use crate::api::Hit;
use crate::hashers::Computed;

/// `GET /m/raw_lookup` query.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct RawLookupQuery {
    /// The hash, in hex (the URL itself for `url`).
    #[param(required = true)]
    signal: Option<String>,
    /// `pdq`, `video_md5`, `video_sha256` or `url`.
    #[param(required = true, value_type = SignalType)]
    signal_type: Option<String>,
    /// Comma-separated bank names to keep (case ignored); absent or empty: every bank.
    banks: Option<String>,
    /// `true` or `false` (pydantic's booleans: also `1`, `yes`, `on`…).
    #[param(value_type = Option<bool>)]
    include_distance: Option<String>,
}

/// One match with its distance, as HMA's `MatchWithDistance`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct MatchWithDistance {
    /// The entry's HMA content id: the first 53 bits of its 32-byte id.
    bank_content_id: u64,
    /// A string even for PDQ (`"4"`), `"-"` for exact types: python-threatexchange's
    /// `pretty_str`.
    distance: String,
}

/// HMA's `RawLookupResponse`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct RawLookupResponse {
    /// Content ids, or with `include_distance` ids with their distances.
    matches: Vec<RawMatch>,
}

/// HMA's `RawLookupResponse.matches` item: an id, or an id with its distance.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
enum RawMatch {
    Id(u64),
    WithDistance(MatchWithDistance),
}

/// `GET /m/raw_lookup?signal=&signal_type=[&banks=][&include_distance=]` →
/// `{"matches": [id…]}` or `{"matches": [{"bank_content_id", "distance"}…]}`.
#[utoipa::path(
    get,
    path = "/m/raw_lookup",
    tag = "hma",
    params(RawLookupQuery),
    responses(
        (status = 200, description = "The matches; only entries whose action is remove or review match.", body = RawLookupResponse),
        (status = 400, description = "The signal type is unknown or the signal is not a hash of it.", body = HmaErrorBody),
        (status = 422, description = "`signal` or `signal_type` is missing, or `include_distance` is not a boolean.", body = HmaErrorBody),
    )
)]
pub(super) async fn raw_lookup(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    query: std::result::Result<Query<RawLookupQuery>, QueryRejection>,
) -> Result<Json<RawLookupResponse>> {
    matcher(&node, &headers)?;
    let Query(q) = query?;
    let (Some(signal), Some(signal_type)) = (q.signal, q.signal_type) else {
        return Err(HmaError::invalid_query("signal and signal_type: field required"));
    };
    let with_distance = match q.include_distance {
        Some(text) => signal::parse_bool("include_distance", &text).map_err(HmaError::invalid_query)?,
        None => false,
    };
    let by_bank = lookup_signal(&node, &signal, &signal_type, q.banks.as_deref())?;
    let matches: Vec<RawMatch> = by_bank
        .into_values()
        .flatten()
        .map(|m| if with_distance { RawMatch::WithDistance(m) } else { RawMatch::Id(m.bank_content_id) })
        .collect();
    Ok(Json(RawLookupResponse { matches }))
}

/// `GET /m/lookup` query (`banks` alone for `POST`).
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct LookupQuery {
    /// Refused: this node does not download what callers name.
    url: Option<String>,
    /// The hash, in hex (the URL itself for `url`); with `signal_type`.
    signal: Option<String>,
    /// `pdq`, `video_md5`, `video_sha256` or `url`; with `signal`.
    #[param(value_type = Option<SignalType>)]
    signal_type: Option<String>,
    /// Comma-separated bank names to keep (case ignored); absent or empty: every bank.
    banks: Option<String>,
    /// Accepted and ignored: every bank is matched, there is no coinflip.
    #[serde(default)]
    #[expect(dead_code, reason = "HMA's parameter, accepted and ignored")]
    seed: Option<String>,
    /// Accepted and ignored.
    #[serde(default)]
    #[expect(dead_code, reason = "HMA's parameter, accepted and ignored")]
    bypass_coinflip: Option<String>,
}

/// `POST /m/lookup` query.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct UploadLookupQuery {
    /// Comma-separated bank names to keep (case ignored); absent or empty: every bank.
    banks: Option<String>,
    /// Accepted and ignored: every bank is matched, there is no coinflip.
    #[serde(default)]
    #[expect(dead_code, reason = "HMA's parameter, accepted and ignored")]
    seed: Option<String>,
    /// Accepted and ignored.
    #[serde(default)]
    #[expect(dead_code, reason = "HMA's parameter, accepted and ignored")]
    bypass_coinflip: Option<String>,
}

/// Matches by bank name, as HMA's `TMatchByBank`; a bank appears only with a match.
pub(super) type MatchByBank = BTreeMap<String, Vec<MatchWithDistance>>;

/// `GET /m/lookup?signal=&signal_type=[&banks=]` → `{"<BANK>": [{"bank_content_id",
/// "distance"}…]}` (no signal type level, as in HMA); `url=` is refused.
#[utoipa::path(
    get,
    path = "/m/lookup",
    tag = "hma",
    params(LookupQuery),
    responses(
        (status = 200, description = "Matches by bank; `{}` when none.", body = inline(MatchByBank)),
        (status = 400, description = "`url` given (refused), neither `signal` nor `url`, an unknown signal type or a signal that is not a hash of it.", body = HmaErrorBody),
    )
)]
pub(super) async fn lookup(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    query: std::result::Result<Query<LookupQuery>, QueryRejection>,
) -> Result<Json<MatchByBank>> {
    matcher(&node, &headers)?;
    let Query(q) = query?;
    if q.url.is_some() {
        return Err(HmaError::bad_request(NO_DOWNLOADS));
    }
    let (Some(signal), Some(signal_type)) = (q.signal, q.signal_type) else {
        return Err(HmaError::bad_request("Either url or both signal and signal_type are required"));
    };
    Ok(Json(lookup_signal(&node, &signal, &signal_type, q.banks.as_deref())?))
}

/// `POST /m/lookup?[banks=]` with one multipart file → `{"<signal type>": {"<BANK>":
/// [{"bank_content_id", "distance"}…]}}`.
#[utoipa::path(
    post,
    path = "/m/lookup",
    tag = "hma",
    params(UploadLookupQuery),
    request_body(content = crate::rpc::openapi::HmaUpload, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "Matches by signal type, then by bank; a photo matches with PDQ's mirrored and rotated variants.", body = inline(BTreeMap<String, MatchByBank>)),
        (status = 400, description = "No file, more than one, a field that names no content type, or a photo that does not decode.", body = HmaErrorBody),
        (status = 503, description = "The node is shutting down.", body = HmaErrorBody),
    )
)]
pub(super) async fn lookup_upload(
    State(node): State<NodeHandle>,
    headers: HeaderMap,
    query: std::result::Result<Query<UploadLookupQuery>, QueryRejection>,
    request: axum::extract::Request,
) -> Result<Json<BTreeMap<&'static str, MatchByBank>>> {
    matcher(&node, &headers)?;
    let Query(q) = query?;
    let filter = BankFilter::parse(q.banks.as_deref());
    let hashes = hashing::hash_form(&node, &headers, request).await?;
    // One upload is one match request, whatever its signal types: an entry its md5 and its
    // PDQ both hit counts once in the day's counters, and the request once in `/metrics`.
    let (signal_types, queries): (Vec<SignalType>, Vec<Computed>) =
        hashes.iter().filter_map(|(t, c)| Some((*t, c.clone()?))).unzip();
    let results = node.match_and_act(&queries);
    let mut out = BTreeMap::new();
    for (signal_type, _) in &hashes {
        // A signal type without a hash was too low in quality to trust: HMA would answer 400
        // for its empty hash; no match is what it means.
        out.insert(signal_type.name(), MatchByBank::new());
    }
    for (signal_type, result) in signal_types.into_iter().zip(&results) {
        out.insert(signal_type.name(), by_bank(signal_type, std::slice::from_ref(result), &filter));
    }
    Ok(Json(out))
}

/// Looks one HMA signal up.
fn lookup_signal(
    node: &NodeHandle,
    signal: &str,
    signal_type: &str,
    banks: Option<&str>,
) -> Result<MatchByBank> {
    let signal_type = SignalType::parse(signal_type).map_err(HmaError::bad_request)?;
    let Some(fingerprint) = signal_type.fingerprint(signal).map_err(HmaError::bad_request)? else {
        return Ok(MatchByBank::new());
    };
    let results = node.match_and_act(&[Computed::plain(fingerprint)]);
    Ok(by_bank(signal_type, &results, &BankFilter::parse(banks)))
}

/// The `banks` parameter: comma-separated bank names; absent or empty means every bank.
struct BankFilter(Option<Vec<String>>);

impl BankFilter {
    fn parse(banks: Option<&str>) -> Self {
        Self(
            banks
                .filter(|b| !b.is_empty())
                .map(|b| b.split(',').map(|n| n.trim().to_ascii_uppercase()).collect()),
        )
    }

    fn admits(&self, bank: &str) -> bool {
        self.0.as_ref().is_none_or(|names| names.iter().any(|n| n == bank))
    }
}

/// Groups the hits to act on by bank, nearest first within a bank.
fn by_bank(signal_type: SignalType, results: &[crate::api::MatchResult], filter: &BankFilter) -> MatchByBank {
    let mut out = MatchByBank::new();
    let mut hits: Vec<&Hit> = results.iter().flat_map(|r| &r.hits).filter(|h| counts(h.action)).collect();
    hits.sort_by_key(|h| (h.distance, h.entry));
    for hit in hits {
        let bank = signal::bank_name(&hit.category);
        if filter.admits(&bank) {
            out.entry(bank).or_default().push(MatchWithDistance {
                bank_content_id: signal::content_id(&hit.entry),
                distance: signal_type.distance(hit.distance),
            });
        }
    }
    out
}
