//! The server's own answers, all in the API's JSON error shape: heads over the limits,
//! axum's plain-text 4xx, a busy server, and whole raw answers written to a socket before
//! any request reached the router.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::limits::HttpLimits;
use crate::api_error::MessageBody;

/// A JSON error answer in the API's shape.
pub fn error_response(status: StatusCode, message: &str, detail: &str) -> Response {
    (status, axum::Json(MessageBody { message, detail })).into_response()
}

pub(super) fn busy_response(detail: &str) -> Response {
    let mut response = error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "The server is busy.",
        detail,
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// Middleware: a request line or headers over [`HttpLimits`] is a 414 or 431 with a JSON
/// body that names the limit.
async fn enforce_head_limits(
    State(limits): State<HttpLimits>,
    request: Request,
    next: Next,
) -> Response {
    let target = request
        .uri()
        .path_and_query()
        .map_or(1, |target| target.as_str().len());
    // "METHOD SP target SP HTTP/1.1"
    let line = request.method().as_str().len() + 1 + target + 1 + "HTTP/1.1".len();
    if line > limits.max_request_line_bytes {
        count_rejection("request_line");
        return error_response(
            StatusCode::URI_TOO_LONG,
            "The request line is too long.",
            &format!(
                "The request line is {line} bytes; this server accepts at most {}. Shorten the query (the filter `q` is limited to 4096 bytes).",
                limits.max_request_line_bytes
            ),
        );
    }
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + 2 + value.len() + 2)
        .sum();
    if headers > limits.max_header_bytes {
        count_rejection("headers");
        return error_response(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "The request headers are too large.",
            &format!(
                "The request headers are {headers} bytes; this server accepts at most {}.",
                limits.max_header_bytes
            ),
        );
    }
    next.run(request).await
}

/// Middleware: a 4xx without a JSON body (a 404, a 405, an extractor's rejection) gets the
/// API's JSON error shape, its text as the detail.
async fn json_client_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if !response.status().is_client_error() || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // These bodies are short texts written by axum; anything longer is not worth echoing.
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let message = parts.status.canonical_reason().unwrap_or("Client error.");
    let json = error_response(
        parts.status,
        &format!("{message}."),
        String::from_utf8_lossy(&text).trim(),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    let (json_parts, json_body) = json.into_parts();
    parts.headers.extend(json_parts.headers);
    Response::from_parts(parts, json_body)
}

/// `router` with the head limits checked first and every 4xx in the JSON error shape.
pub fn with_limits(router: Router, limits: HttpLimits) -> Router {
    router
        .layer(axum::middleware::from_fn(json_client_errors))
        .layer(axum::middleware::from_fn_with_state(
            limits,
            enforce_head_limits,
        ))
}

pub(super) fn count_rejection(reason: &'static str) {
    metrics::counter!("auditlog_http_rejected_requests_total", "reason" => reason).increment(1);
}

/// A whole HTTP/1.1 answer with a JSON error body, ending the connection.
pub(super) fn raw_answer(status: StatusCode, message: &str, detail: &str) -> Bytes {
    // Serializing two strings cannot fail.
    let body = serde_json::to_string(&MessageBody { message, detail }).unwrap_or_default();
    let mut answer = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    );
    if status == StatusCode::SERVICE_UNAVAILABLE {
        answer.push_str("retry-after: 1\r\n");
    }
    answer.push_str("\r\n");
    answer.push_str(&body);
    Bytes::from(answer)
}
