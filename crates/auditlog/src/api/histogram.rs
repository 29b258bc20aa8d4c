//! `GET /api/v2/audit/histogram?q=`: the matching events per time bucket, for the audit
//! page's chart.
//!
//! The same checks as the page (401/403, `q` once and bounded, then `q` itself), the same
//! rights and the same deduplication: the buckets add up to the exact count of `q`, uncapped.
//! Body: `{"bucket_seconds":N,"buckets":[{"start":<unix seconds>,"count":N},...],"total":N}`,
//! empty buckets left out.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::{ApiError, ApiState, resolved_filter};

/// The histogram handler.
pub async fn histogram(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let caller = state.auth.authenticate(&headers)?;
    let (_, filter) = resolved_filter(&state, &caller, &pairs).await?;
    let histogram = state.runner.histogram(&caller.visibility, &filter).await?;
    Ok(Json(histogram).into_response())
}
