//! The crate's own failures: what stops a server before or while it serves. What a request
//! fails with is [`crate::ApiError`], an HTTP answer rather than an error of the process.

use std::io;
use std::net::SocketAddr;

/// Why the HTTP face could not be set up or keep serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configured token is unusable; the message names the entry (`api.tokens[i]`).
    #[error("{0}")]
    InvalidToken(String),
    /// [`crate::HttpLimits`] that would refuse every request.
    #[error("{0}")]
    InvalidLimits(String),
    /// No token is configured and the address is not loopback: every caller would be an
    /// auditor.
    #[error(
        "refusing to serve the audit api on {listen} without tokens: configure [[api.tokens]] or listen on a loopback address"
    )]
    OpenOnNetwork {
        /// The address asked for.
        listen: SocketAddr,
    },
    /// The listening socket could not be bound.
    #[error("cannot listen on {address}: {error}")]
    Bind {
        /// The address asked for.
        address: SocketAddr,
        /// What the system said (not a `source`: the message already carries it).
        error: io::Error,
    },
    /// The listener failed otherwise.
    #[error(transparent)]
    Io(#[from] io::Error),
}
