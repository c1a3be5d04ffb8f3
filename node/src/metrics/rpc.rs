//! RPC requests by method, route and status class, and how long each took: an axum
//! middleware around every route and the fallbacks.
//!
//! Labels stay few so a client cannot grow the series without bound: the route is the
//! router's path template (`/v1/entries/{id}`), or `unmatched` for a path no route has;
//! methods other than the usual ones are `other`; the status is its class (`2xx`).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use super::Listed;

/// Upper bounds of the latency buckets, in seconds: a hash lookup takes well under a
/// millisecond, an image upload tens to hundreds, a follower's long poll up to 20 s.
const BUCKETS: [f64; 14] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// The route of a request no route matched.
const UNMATCHED: &str = "unmatched";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

type Durations = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// The RPC's counters.
#[derive(Debug, Clone)]
pub struct RpcMetrics {
    requests: Family<RequestLabels, Counter>,
    durations: Durations,
    refused: Counter,
}

impl RpcMetrics {
    pub(super) fn new(registry: &mut Registry) -> Self {
        let metrics = Self {
            requests: Family::default(),
            durations: Family::new_with_constructor(|| Histogram::new(BUCKETS)),
            refused: Counter::default(),
        };
        registry.register(
            "rpc_connections_refused",
            "RPC connections closed as they arrived because rpc.max_connections were open",
            metrics.refused.clone(),
        );
        registry.register(
            "rpc_requests",
            "RPC requests answered, by `method`, `route` (the path template; unmatched: no route) and `status` class (2xx)",
            Listed(metrics.requests.clone()),
        );
        registry.register_with_unit(
            "rpc_request_duration",
            "Time from a request's arrival to its response head, by `method` and `route` (a streamed export's body may take longer)",
            Unit::Seconds,
            Listed(metrics.durations.clone()),
        );
        metrics
    }

    /// A connection over the cap was closed.
    pub fn refuse_connection(&self) {
        self.refused.inc();
    }

    fn observe(&self, method: &'static str, route: String, status: StatusCode, seconds: f64) {
        let status = match status.as_u16() / 100 {
            1 => "1xx",
            2 => "2xx",
            3 => "3xx",
            4 => "4xx",
            _ => "5xx",
        };
        self.durations.get_or_create(&RouteLabels { method, route: route.clone() }).observe(seconds);
        self.requests.get_or_create(&RequestLabels { method, route, status }).inc();
    }
}

fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// The middleware: times the request and counts its answer.
pub async fn record(State(metrics): State<RpcMetrics>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or(UNMATCHED, MatchedPath::as_str).to_owned();
    let method = method_name(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.observe(method, route, response.status(), started.elapsed().as_secs_f64());
    response
}
