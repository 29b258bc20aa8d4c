//! The operational routes every long-running subcommand serves: `/metrics`, `/healthz`,
//! `/readyz`; and what a reserved connection gets when the API's connections are taken.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;

use super::answers::busy_response;

/// Says whether the process can do its job right now (`Err` carries the reason).
pub type Readiness = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

#[derive(Clone)]
struct OpsState {
    metrics: PrometheusHandle,
    readiness: Readiness,
}

/// `/metrics` (Prometheus text), `/healthz` (the process is alive), `/readyz` (it can work).
pub fn ops_router(metrics: PrometheusHandle, readiness: Readiness) -> Router {
    Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(OpsState { metrics, readiness })
}

/// The router a reserved connection gets: the operational routes, and 503 for the rest.
pub fn reserve_router(ops: Router) -> Router {
    ops.fallback(|| async {
        busy_response(
            "Every API connection is taken; /healthz, /readyz and /metrics are still answered. Try again shortly.",
        )
    })
}

async fn render_metrics(State(state): State<OpsState>) -> Response {
    (
        [("content-type", "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

async fn ready(State(state): State<OpsState>) -> Response {
    match (state.readiness)() {
        Ok(()) => (StatusCode::OK, "ready\n".to_owned()).into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        )
            .into_response(),
    }
}
