//! The HTTP face of the audit log: the Coder-compatible audit API, the proof route, the
//! audit page, and the connection-capped server they are served by.
//!
//! ```text
//!  TCP ─► http::Server: a connection permit? else the reserve (ops routes only), else a 503
//!           │ per connection: idle and head timeouts; hyper's own 400/414/431 sent as JSON
//!           ▼
//!  http::with_limits: request line or headers over HttpLimits → 414/431; plain 4xx → JSON
//!           ▼
//!  router ─┬─ /api/v2/audit[/export|/histogram|/suggest|/{id}/proof]
//!          │     metrics ─► query decoded ─► Caller (401/403) ─► handler: parameters (400)
//!          │                                    ─► QueryRunner / Evidence ─► Coder's JSON
//!          ├─ / and /ui/{version}/{file}        the page's embedded assets (ui)
//!          └─ /healthz, /readyz, /metrics       http::ops_router
//! ```
//!
//! The crate owns what it answers with ([`ApiError`]: Coder's bodies), who may ask
//! ([`ConfiguredToken`] → [`Authenticator`] → the [`Caller`] extractor), and what one client
//! may take ([`HttpLimits`]). The `auditlog` binary turns its configuration into these,
//! builds the [`ApiState`] and runs an [`ApiServer`]; nothing here knows about files or
//! flags. The route reference is in [`routes`].
//!
//! ```
//! use auditlog_api::{Authenticator, ConfiguredToken, HttpLimits, ROLE_AUDITOR};
//! use axum::http::{HeaderMap, HeaderValue, header};
//!
//! // `printf %s s3cret | sha256sum`: the configuration holds hashes, never tokens.
//! let tokens = [ConfiguredToken {
//!     name: "ann".to_owned(),
//!     sha256: "1ec1c26b50d5d3c58d9583181af8076655fe00756bf7285940ba3670f99fcba0".to_owned(),
//!     role: ROLE_AUDITOR.to_owned(),
//!     organizations: Vec::new(),
//! }];
//! let auth = Authenticator::try_new(&tokens)?;
//! let mut headers = HeaderMap::new();
//! headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer s3cret"));
//! let caller = auth.authenticate(&headers).expect("a known auditor token");
//! assert_eq!(caller.name.as_deref(), Some("ann"));
//!
//! // Limits that would refuse every request stop the server before it starts.
//! let limits = HttpLimits { max_connections: 0, ..HttpLimits::default() };
//! assert!(limits.validate().is_err());
//! # Ok::<(), auditlog_api::Error>(())
//! ```

mod api_error;
mod api_server;
mod auth;
mod error;
pub mod http;
mod readiness;
pub mod routes;
pub mod ui;

pub use self::api_error::ApiError;
pub use self::api_server::{ApiServer, ServeOptions, refuse_open_exposure};
pub use self::auth::{
    Authenticator, Caller, ConfiguredToken, ROLE_AUDITOR, ROLE_MEMBER, ROLE_ORG_AUDITOR,
};
pub use self::error::Error;
pub use self::http::HttpLimits;
pub use self::routes::{
    ApiState, EXPORT_CHUNK_ROWS, MAX_FILTER_BYTES, MAX_PAGE_LIMIT, NEXT_CURSOR_HEADER, router,
};
