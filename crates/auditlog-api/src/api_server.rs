//! What `auditlog serve` runs: the API listener (API, page and operational routes, with a
//! reserve for the operational ones) and, when asked for, a separate operational listener.

use std::net::SocketAddr;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::watch;

use crate::http::{self, HttpLimits};
use crate::{ApiState, Authenticator, Error, readiness, router, ui};

/// Where the API listens, and what one client may take of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeOptions {
    /// The API, the page and the operational routes.
    pub listen: SocketAddr,
    /// A separate address for `/healthz`, `/readyz` and `/metrics` only.
    pub ops_listen: Option<SocketAddr>,
    /// The per-client limits; `max_connections` may be lowered to fit the open-file limit.
    pub limits: HttpLimits,
}

/// Refuses an API without tokens anywhere but on loopback, and says loudly that it is open.
///
/// Without tokens every caller is an auditor, so only local processes may reach it.
pub fn refuse_open_exposure(auth: &Authenticator, listen: SocketAddr) -> Result<(), Error> {
    if !auth.is_open() {
        return Ok(());
    }
    if !listen.ip().is_loopback() {
        return Err(Error::OpenOnNetwork { listen });
    }
    tracing::warn!(
        %listen,
        "NO API TOKENS CONFIGURED: the audit api is OPEN to every local process, which reads every audit log as an auditor; configure [[api.tokens]] before exposing it"
    );
    Ok(())
}

/// The bound listeners, ready to run.
#[derive(Debug)]
pub struct ApiServer {
    api: http::Server,
    ops: Option<http::Server>,
    limits: HttpLimits,
}

impl ApiServer {
    /// Binds the listeners; `/readyz` reports whether `state`'s ClickHouse answers.
    pub async fn bind(
        options: ServeOptions,
        state: ApiState,
        metrics: PrometheusHandle,
    ) -> Result<Self, Error> {
        let mut limits = options.limits;
        let readiness = readiness::spawn_clickhouse_probe(Arc::clone(&state.runner));
        let ops = http::ops_router(metrics, readiness);
        // The ops listener's connections, and those it sheds, take descriptors too.
        let ops_connections = options
            .ops_listen
            .map_or(0, |_| http::OPS_MAX_CONNECTIONS + http::MAX_SHEDDING);
        limits.max_connections = http::fit_connections_to_file_limit(
            limits.max_connections,
            http::RESERVED_CONNECTIONS + ops_connections,
        );
        let api = http::Server::bind(
            "api",
            options.listen,
            router(state).merge(ui::router()).merge(ops.clone()),
            limits.max_connections,
            limits,
        )
        .await?
        .with_reserve(
            http::reserve_router(ops.clone()),
            http::RESERVED_CONNECTIONS,
        );
        let ops = match options.ops_listen {
            Some(address) => Some(
                http::Server::bind("ops", address, ops, http::OPS_MAX_CONNECTIONS, limits).await?,
            ),
            None => None,
        };
        Ok(Self { api, ops, limits })
    }

    /// The limits in force, `max_connections` as fitted to the open-file limit.
    pub fn limits(&self) -> HttpLimits {
        self.limits
    }

    /// Serves until `shutdown` turns true, then lets open connections finish.
    pub async fn run(self, shutdown: watch::Receiver<bool>) -> Result<(), Error> {
        match self.ops {
            Some(ops) => {
                tokio::try_join!(self.api.run(shutdown.clone()), ops.run(shutdown))?;
                Ok(())
            }
            None => self.api.run(shutdown).await,
        }
    }
}
