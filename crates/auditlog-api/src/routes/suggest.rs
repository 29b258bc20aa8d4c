//! `GET /api/v2/audit/suggest?key=&prefix=`: completions for the audit page's filter bar.
//!
//! `key` empty or absent: the filter keys. An enum key (`resource_type`, `action`,
//! `build_reason`): its values. `organization`: the names of the organizations the caller
//! may see. `username`, `email`, `resource_target`: the most frequent stored values in the
//! caller's organizations. Any other key is a 400. Every value starts with `prefix`
//! (compared lowercased, as the filter is), at most [`auditlog_query::MAX_SUGGESTIONS`].
//! Body: `{"key":"username","values":["alice",...]}`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::{ApiError, ApiState, AuditRequest, MAX_FILTER_BYTES, invalid_param};

#[derive(Debug, Serialize)]
struct Suggestions<'a> {
    key: &'a str,
    values: Vec<String>,
}

/// The suggestion handler.
pub(super) async fn suggest(
    State(state): State<ApiState>,
    request: AuditRequest,
) -> Result<Response, ApiError> {
    let key = request.value("key")?;
    let prefix = request.value("prefix")?;
    if prefix.len() > MAX_FILTER_BYTES {
        return Err(invalid_param(
            "prefix",
            format!("Query param \"prefix\" may be at most {MAX_FILTER_BYTES} bytes."),
        ));
    }
    let Some(values) = state
        .runner
        .suggest(&request.caller.visibility, key, prefix)
        .await?
    else {
        return Err(invalid_param(
            "key",
            format!(
                "Query param \"key\" has invalid value: {} has no suggestions",
                serde_json::Value::String(key.to_owned())
            ),
        ));
    };
    Ok(Json(Suggestions { key, values }).into_response())
}
