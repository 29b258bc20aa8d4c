//! What can go wrong in the kit's fallible helpers (the rest panic: they are fixtures).

/// A failed HTTP exchange; tests often expect one (a server not up yet, a refused attack).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("GET {path}: invalid request: {source}")]
    InvalidRequest {
        path: String,
        source: hyper::http::Error,
    },
    #[error("GET {path}: {source}")]
    Request {
        path: String,
        source: hyper_util::client::legacy::Error,
    },
    #[error("GET {path}: reading the body: {source}")]
    Body { path: String, source: hyper::Error },
    /// A request of any method ([`crate::http_request`]) that got no answer.
    #[error("{what}: {reason}")]
    Exchange { what: String, reason: String },
    #[error("{name} did not answer {path} with 200 within {seconds} s; log:\n{log}")]
    NotReady {
        name: String,
        path: String,
        seconds: u64,
        log: String,
    },
}
