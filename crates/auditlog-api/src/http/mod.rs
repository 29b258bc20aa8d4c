//! The HTTP servers of the long-running subcommands: the operational endpoints
//! (`/metrics`, `/healthz`, `/readyz`) and the accept loop that enforces [`HttpLimits`].
//!
//! ```text
//!  accept ─► a primary permit? ─► hyper http1 (head/idle timeouts, head size) ─► router
//!               │ no
//!               ▼
//!           a reserve permit? ─► the same, ops routes only; anything else 503
//!               │ no
//!               ▼
//!           canned 503, close (at most [`MAX_SHEDDING`] at once, each briefly)
//! ```
//!
//! The cap on connections is kept below the process's open-file limit, so `accept` does
//! not fail with EMFILE: excess clients are shed at once instead of waiting in the
//! backlog. A connection's phase (idle, reading a head, busy with a request) decides which
//! timeout applies; the connection's guard (`connection.rs`) enforces it on the socket and
//! replaces hyper's own empty-bodied 400/414/431 answers with the API's JSON error body
//! (`answers.rs`, which also holds the middleware of [`with_limits`]).

mod answers;
mod connection;
mod limits;
mod ops;
mod server;
#[cfg(test)]
mod tests;

pub use self::answers::{error_response, with_limits};
pub use self::limits::{HttpLimits, MAX_SHEDDING, fit_connections_to_file_limit};
pub use self::ops::{Readiness, ops_router, reserve_router};
pub use self::server::{
    OPS_MAX_CONNECTIONS, RESERVED_CONNECTIONS, RESERVED_HEADER_READ_TIMEOUT, Server, serve,
};
