//! `GET /api/v2/audit/{id}/proof`: the proof that one stored event is the one its batch
//! recorded and that a signed checkpoint covers it (`docs/integrity.md` documents the
//! format; an auditor checks it offline with any SHA-256 and Ed25519 tool).
//!
//! The same rights as the page: an `org_auditor` gets proofs of its organizations' events
//! only; any other event is a 404, exactly as an id that does not exist. An event stored
//! before digests, or whose batch no longer verifies, is a 409 that says why. Before the
//! next checkpoint covers the event's batch, `checkpoint` is `null`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use uuid::Uuid;

use super::{ApiError, ApiState};
use crate::evidence::ProofOutcome;

/// The proof handler.
pub async fn proof(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let caller = state.auth.authenticate(&headers)?;
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound {
        detail: "The event id is not a UUID.",
    })?;
    match state
        .evidence
        .proof(id, &caller.visibility, None)
        .await
        .map_err(|error| ApiError::Internal(format!("{error:#}")))?
    {
        ProofOutcome::Proof(proof) => Ok(Json(proof).into_response()),
        ProofOutcome::NotFound => Err(ApiError::NotFound {
            detail: "No audit event with this id is visible to this token.",
        }),
        ProofOutcome::Unprovable(reason) => Err(ApiError::Unprovable(reason)),
    }
}
