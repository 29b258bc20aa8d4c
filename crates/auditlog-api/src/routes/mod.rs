//! The Coder-compatible audit API.
//!
//! ```text
//!  request ─► metrics ─► query decoded ─► Caller (401/403: name + visibility)
//!                           │
//!        ┌──────────────────┴───────────────────┐
//!        ▼                                      ▼
//!  GET /api/v2/audit                      GET /api/v2/audit/export
//!  paging (400) → q (400) → page ∥ count  format (400) → q (400) → keyset chunks → ndjson|csv
//!        │                                      │
//!        └───────────► QueryRunner ◄────────────┘   timeouts → 503, failures → 500
//! ```
//!
//! One error type ([`ApiError`]) maps to HTTP: client errors get Coder's bodies, a timeout
//! a 503 that says what to do, anything else a generic 500 that is logged once.
//!
//! # Reference
//!
//! | route | parameters | answer |
//! |---|---|---|
//! | `GET /api/v2/audit` | `q`, `limit` (0 or absent: 100; at most [`MAX_PAGE_LIMIT`]), `offset`, `after` (a cursor), `after_id` (parsed and ignored, as in Coder) | `{"audit_logs":[...],"count":N,"count_cap":2000}`; header [`NEXT_CURSOR_HEADER`] when the page is full |
//! | `GET /api/v2/audit/export` | `q`, `format` = `ndjson` (default) or `csv` | every matching event, newest first, streamed |
//! | `GET /api/v2/audit/histogram` | `q` | `{"bucket_seconds":N,"buckets":[{"start":S,"count":N}],"total":N}`: exact, deduplicated, scoped |
//! | `GET /api/v2/audit/{id}/proof` | | the event's proof (`docs/integrity.md`); 404 if not visible, 409 if unprovable |
//! | `GET /api/v2/audit/suggest` | `key` (empty: the keys), `prefix` | `{"key":K,"values":[...]}`: completions the caller may see |
//! | `GET /` and `/ui/*` | | the audit page ([`crate::ui`]) |
//! | `GET /healthz`, `/readyz`, `/metrics` | | liveness, ClickHouse reachability, Prometheus text |
//!
//! Authentication: `Authorization: Bearer <token>` or Coder's `Coder-Session-Token: <token>`,
//! checked against `[[api.tokens]]` (`name`, `sha256` = `printf %s "$TOKEN" | sha256sum`,
//! `role` = `auditor` | `org_auditor` | `member`, `organizations` = ids an `org_auditor`
//! sees; anything else is a start-up error). No token or an unknown one: 401; `member`:
//! 403. `username:me` is the token's `name`.
//! Without any token the server runs open, and only on a loopback address.
//!
//! Where Coder's behaviour was unclear or unsuitable, and what this API does instead:
//! - authentication and the role are checked before the parameters (Coder checks the role
//!   in its database layer, after parsing), so nobody learns about validation without a
//!   valid auditor token;
//! - a `limit` above [`MAX_PAGE_LIMIT`] is a 400 (Coder has no bound), since a page is held
//!   in memory; the export is for bulk;
//! - `after` and a non-zero `offset` together are a 400;
//! - `count_cap` is sent with every answer, also when the count is 0.

mod audit;
mod export;
mod histogram;
mod proof;
mod suggest;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Instant;

use auditlog_query::{InvalidQuery, QueryRunner, ResolvedFilter, Validation, measure_engine_time};
use axum::Router;
use axum::extract::{FromRef, FromRequestParts, MatchedPath, Query, Request};
use axum::http::HeaderValue;
use axum::http::request::Parts;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub use self::export::EXPORT_CHUNK_ROWS;
use auditlog_verify::Evidence;

use crate::{ApiError, Authenticator, Caller};

/// The longest filter (`q`, decoded) in bytes: enough for any real filter, and it bounds
/// the work and the error body one request can cause.
pub const MAX_FILTER_BYTES: usize = 4096;

/// Rows a page may hold; more is what `/api/v2/audit/export` is for.
pub const MAX_PAGE_LIMIT: u64 = 10_000;

/// The response header that carries the cursor of the page's last row, for `after=`.
///
/// A header rather than a body field keeps the body exactly Coder's shape.
pub const NEXT_CURSOR_HEADER: &str = "x-audit-next-cursor";

/// What every handler needs.
#[derive(Debug, Clone)]
pub struct ApiState {
    /// Runs the queries.
    pub runner: Arc<QueryRunner>,
    /// Knows the tokens.
    pub auth: Arc<Authenticator>,
    /// Builds event proofs.
    pub evidence: Arc<Evidence>,
}

/// What the [`Caller`] extractor checks tokens with.
impl FromRef<ApiState> for Arc<Authenticator> {
    fn from_ref(state: &ApiState) -> Self {
        Arc::clone(&state.auth)
    }
}

/// The API's routes, with request metrics.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/v2/audit", get(audit::audit_logs))
        .route("/api/v2/audit/export", get(export::export))
        .route("/api/v2/audit/histogram", get(histogram::histogram))
        .route("/api/v2/audit/suggest", get(suggest::suggest))
        .route("/api/v2/audit/{id}/proof", get(proof::proof))
        .route_layer(middleware::from_fn(record_request))
        .with_state(state)
}

/// Counts requests by route and status and times them (`auditlog_api_request_duration_seconds`),
/// and says in `Server-Timing` how long ClickHouse itself took: the slowest of the request's
/// queries and their sum, so a slow answer names its side (engine, wire or server).
async fn record_request(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let started = Instant::now();
    let (mut response, engine) = measure_engine_time(next.run(request)).await;
    if engine.queries > 0
        && let Ok(value) = HeaderValue::from_str(&engine.server_timing())
    {
        response.headers_mut().insert("server-timing", value);
    }
    let status = response.status().as_u16().to_string();
    metrics::counter!("auditlog_api_requests_total", "route" => route.clone(), "status" => status)
        .increment(1);
    // For the export this is the time to the first chunk; the stream goes on after it.
    metrics::histogram!("auditlog_api_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// What the query routes start from: the decoded query pairs and the authenticated
/// [`Caller`] they are answered for.
///
/// The query string is decoded first (an undecodable one is a 400 whatever the token),
/// then the token is checked, both before the handler runs; parameters are validated by
/// the handler, after authentication.
#[derive(Debug)]
struct AuditRequest {
    caller: Caller,
    pairs: Vec<(String, String)>,
}

impl FromRequestParts<ApiState> for AuditRequest {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Response> {
        let Query(pairs) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let caller = Caller::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Self { caller, pairs })
    }
}

impl AuditRequest {
    /// The one value of `key`, empty when absent; a repeated key is a 400, as a repeated
    /// `limit` is (Coder would silently take the first).
    fn value(&self, key: &str) -> Result<&str, ApiError> {
        InvalidQuery::reject_repeated(&self.pairs, &[key])?;
        Ok(self
            .pairs
            .iter()
            .find(|(name, _)| name == key)
            .map_or("", |(_, value)| value.as_str()))
    }

    /// The filter `q` as given (at most one, of at most [`MAX_FILTER_BYTES`]) and resolved
    /// under the caller's rights: what the page, the export and the chart all filter by.
    async fn filter(&self, runner: &QueryRunner) -> Result<(&str, ResolvedFilter), ApiError> {
        let text = self.value("q")?;
        if text.len() > MAX_FILTER_BYTES {
            return Err(invalid_param(
                "q",
                format!(
                    "Query param \"q\" is {} bytes long; a filter may be at most {MAX_FILTER_BYTES} bytes.",
                    text.len()
                ),
            ));
        }
        let filter = runner
            .resolve(text, self.caller.name.as_deref(), &self.caller.visibility)
            .await?;
        Ok((text, filter))
    }
}

/// Coder's 400 for one bad query parameter.
fn invalid_param(field: &str, detail: String) -> ApiError {
    ApiError::InvalidQuery(InvalidQuery::params(vec![Validation::new(field, detail)]))
}
