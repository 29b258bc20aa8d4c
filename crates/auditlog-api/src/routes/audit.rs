//! `GET /api/v2/audit?q=&limit=&offset=`: Coder's audit page, plus `after=` cursors.
//!
//! Order of checks: authentication (401/403), paging parameters (400, Coder's
//! "Query parameters have invalid values."), `q` given once and at most
//! [`super::MAX_FILTER_BYTES`] long (400, the same message), then `q` itself (400,
//! "Invalid audit search query."). The page and the capped count come from one read of the
//! filter's keys where that answers both, else run concurrently; the response is Coder's
//! `{"audit_logs":[...],"count":N,"count_cap":2000}`, and the page's last row's cursor
//! comes in the [`NEXT_CURSOR_HEADER`] header when the page is full.

use auditlog_query::{AuditLog, AuditLogsResponse, Cursor, parse_page_params};
use axum::Json;
use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};

use super::{ApiError, ApiState, AuditRequest, MAX_PAGE_LIMIT, NEXT_CURSOR_HEADER};

/// The audit page handler.
pub(super) async fn audit_logs(
    State(state): State<ApiState>,
    request: AuditRequest,
) -> Result<Response, ApiError> {
    let page_request = parse_page_params(&request.pairs, MAX_PAGE_LIMIT)?;
    let (_, filter) = request.filter(&state.runner).await?;
    let caller = &request.caller;
    let page = page_request.page();
    let (rows, count) = state
        .runner
        .page_and_count(&caller.visibility, &filter, &page)
        .await?;
    let next_cursor = rows
        .last()
        .filter(|_| rows.len() as u64 == page_request.limit)
        .map(|row| Cursor::from(row).encode());
    let audit_logs = rows
        .into_iter()
        .map(|row| AuditLog::from_event(&row.into_event()))
        .collect();
    let mut response = Json(AuditLogsResponse::new(audit_logs, count)).into_response();
    if let Some(cursor) = next_cursor
        && let Ok(value) = HeaderValue::from_str(&cursor)
    {
        response.headers_mut().insert(NEXT_CURSOR_HEADER, value);
    }
    Ok(response)
}
