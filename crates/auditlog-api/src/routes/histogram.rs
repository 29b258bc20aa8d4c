//! `GET /api/v2/audit/histogram?q=`: the matching events per time bucket, for the audit
//! page's chart.
//!
//! The same checks as the page (401/403, `q` once and bounded, then `q` itself), the same
//! rights and the same deduplication: the buckets add up to the exact count of `q`, uncapped.
//! Body: `{"bucket_seconds":N,"buckets":[{"start":<unix seconds>,"count":N},...],"total":N}`,
//! empty buckets left out.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::{ApiError, ApiState, AuditRequest};

/// The histogram handler.
pub(super) async fn histogram(
    State(state): State<ApiState>,
    request: AuditRequest,
) -> Result<Response, ApiError> {
    let (_, filter) = request.filter(&state.runner).await?;
    let histogram = state
        .runner
        .histogram(&request.caller.visibility, &filter)
        .await?;
    Ok(Json(histogram).into_response())
}
