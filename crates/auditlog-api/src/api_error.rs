//! The API's one error type and its HTTP mapping.

use std::time::Duration;

use auditlog_query::{InvalidQuery, Validation};
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Coder's message when no valid session token came with the request.
const SIGNED_OUT_MESSAGE: &str =
    "You are signed out or your session has expired. Please sign in again to continue.";

/// Everything a handler can fail with.
#[derive(Debug)]
pub enum ApiError {
    /// No token, or one that no configured token matches: 401.
    Unauthenticated {
        /// Why, for the client.
        detail: &'static str,
    },
    /// A valid token whose role may not read audit logs: 403.
    Forbidden,
    /// A bad `q`, or bad paging or format parameters: 400 with Coder's body.
    InvalidQuery(InvalidQuery),
    /// A query ran out of time: 503.
    Timeout {
        /// The limit that was exceeded.
        limit: Duration,
    },
    /// No such resource, or not one the caller may see: 404.
    NotFound {
        /// Why, for the client.
        detail: &'static str,
    },
    /// An event whose proof cannot be built (stored before digests, or its batch fails
    /// verification): 409 with the reason.
    Unprovable(String),
    /// Anything else: a generic 500; the cause is logged once, never sent.
    Internal(String),
}

/// Coder's `codersdk.Response` for the bodies that have no validations.
#[derive(Debug, Serialize)]
pub(crate) struct MessageBody<'a> {
    pub(crate) message: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub(crate) detail: &'a str,
}

/// Validations a 400 lists; the rest are summed up in one "and N more" entry, so a
/// request cannot make its answer many times its own size.
pub const MAX_VALIDATIONS: usize = 20;

/// Coder's 400 body with validations, at most [`MAX_VALIDATIONS`] of them and a summary.
#[derive(Debug, Serialize)]
struct ValidationsBody<'a> {
    message: &'a str,
    validations: Vec<Validation>,
}

fn validations_response(message: &str, validations: &[Validation]) -> Response {
    let mut listed: Vec<Validation> = validations.iter().take(MAX_VALIDATIONS).cloned().collect();
    if validations.len() > MAX_VALIDATIONS {
        listed.push(Validation::new(
            "",
            format!("and {} more", validations.len() - MAX_VALIDATIONS),
        ));
    }
    (
        StatusCode::BAD_REQUEST,
        Json(ValidationsBody {
            message,
            validations: listed,
        }),
    )
        .into_response()
}

impl From<auditlog_query::Error> for ApiError {
    fn from(error: auditlog_query::Error) -> Self {
        match error {
            auditlog_query::Error::InvalidQuery(invalid) => ApiError::InvalidQuery(invalid),
            auditlog_query::Error::Timeout { limit } => ApiError::Timeout { limit },
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<InvalidQuery> for ApiError {
    fn from(invalid: InvalidQuery) -> Self {
        ApiError::InvalidQuery(invalid)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Unauthenticated { detail } => {
                let mut response = (
                    StatusCode::UNAUTHORIZED,
                    Json(MessageBody {
                        message: SIGNED_OUT_MESSAGE,
                        detail,
                    }),
                )
                    .into_response();
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                response
            }
            ApiError::Forbidden => (
                StatusCode::FORBIDDEN,
                Json(MessageBody {
                    message: "Forbidden.",
                    detail: "Only auditors may read audit logs: this token's role is neither auditor nor org_auditor.",
                }),
            )
                .into_response(),
            ApiError::InvalidQuery(invalid) => {
                validations_response(invalid.message(), invalid.validations())
            }
            ApiError::Timeout { limit } => {
                metrics::counter!("auditlog_api_query_timeouts_total").increment(1);
                let detail = format!(
                    "The query ran longer than the {}s limit. Narrow the filter (a date_from/date_to range helps most) and try again.",
                    limit.as_secs_f64()
                );
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(MessageBody {
                        message: "The audit log query timed out.",
                        detail: &detail,
                    }),
                )
                    .into_response()
            }
            ApiError::NotFound { detail } => (
                StatusCode::NOT_FOUND,
                Json(MessageBody {
                    message: "Resource not found.",
                    detail,
                }),
            )
                .into_response(),
            ApiError::Unprovable(reason) => (
                StatusCode::CONFLICT,
                Json(MessageBody {
                    message: "This event cannot be proven.",
                    detail: &reason,
                }),
            )
                .into_response(),
            ApiError::Internal(cause) => {
                tracing::error!(%cause, "audit api request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Json(MessageBody {
                        message: "An internal error occurred. Please try again or contact the system administrator.",
                        detail: "",
                    }),
                )
                    .into_response()
            }
        }
    }
}
