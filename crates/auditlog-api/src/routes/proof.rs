//! `GET /api/v2/audit/{id}/proof`: the proof that one stored event is the one its batch
//! recorded and that a signed checkpoint covers it (`docs/integrity.md` documents the
//! format; an auditor checks it offline with any SHA-256 and Ed25519 tool).
//!
//! The same rights as the page: an `org_auditor` gets proofs of its organizations' events
//! only; any other event is a 404, exactly as an id that does not exist. An event stored
//! before digests, or whose batch no longer verifies, is a 409 that says why. Before the
//! next checkpoint covers the event's batch, `checkpoint` is `null`.

use auditlog_verify::ProofOutcome;
use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use uuid::Uuid;

use super::{ApiError, ApiState};
use crate::Caller;

/// The proof handler.
///
/// The path is read before the token is checked (as every route reads its parameters'
/// encoding first); the id is judged only for an authenticated caller.
pub(super) async fn proof(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound {
        detail: "The event id is not a UUID.",
    })?;
    match state
        .evidence
        .proof(id, &caller.visibility, None)
        .await
        .map_err(|error| ApiError::Internal(with_causes(&error)))?
    {
        ProofOutcome::Proof(proof) => Ok(Json(proof).into_response()),
        ProofOutcome::NotFound => Err(ApiError::NotFound {
            detail: "No audit event with this id is visible to this token.",
        }),
        ProofOutcome::Unprovable(reason) => Err(ApiError::Unprovable(reason)),
    }
}

/// The error and every cause under it, for the log of a 500.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
