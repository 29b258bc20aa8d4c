//! Coder's audit filter language, parsed into a typed filter and translated into
//! parameterized ClickHouse SQL.
//!
//! ```text
//!  "action:delete username:me"                      q= text (Coder's language)
//!        │ AuditFilter::parse          errors: Coder's 400 validations, Coder's order
//!        ▼
//!  AuditFilter { action, username: Me, .. }         typed, `me` and org names unresolved
//!        │ AuditFilter::resolve(&Resolver)          caller + organization lookup
//!        ▼
//!  ResolvedFilter { action, actor, .. }
//!        │ SqlBuilder::{page, count_capped, count_exact}
//!        ▼
//!  SqlQuery { text, params }                        text with {name:Type} placeholders only
//!        │ QueryRunner (max_execution_time + client timeout)
//!        ▼
//!  AuditLogRow → AuditEvent → AuditLog              Coder's JSON (AuditLogsResponse)
//! ```
//!
//! The grammar, value rules and error texts are Coder's (`coderd/searchquery/search.go` and
//! `coderd/httpapi/queryparams.go`), so a client written against Coder sees the same
//! validations. The SQL side applies the reference's fixes of Coder's quirks, described on
//! [`SqlBuilder`]: case-insensitive `email`/`resource_target`, whole-day `date_to`, and a
//! `time DESC, id DESC` order that pages cannot skip through.
//!
//! ```
//! use auditlog_query::{AuditFilter, Page, Resolver, SqlBuilder};
//!
//! let filter = AuditFilter::parse("resource_type:workspace action:delete username:me")?;
//! let resolved = filter.resolve(&Resolver::new().with_caller_username("alice"))?;
//! let builder = SqlBuilder::try_new("auditlog", "audit_logs")?;
//! let query = builder.page(&resolved, &Page::Offset { limit: 50, offset: 0 });
//!
//! assert!(query.text.contains("lower(user_username) = {username:String}"));
//! assert!(!query.text.contains("alice"));
//! # Ok::<(), auditlog_query::Error>(())
//! ```

mod cursor;
mod date;
mod error;
mod filter;
#[doc(hidden)]
pub mod fuzz_checks;
mod grammar;
mod histogram;
mod paging;
mod quote;
mod resolve;
mod response;
mod runner;
mod sql;
mod suggest;

pub use cursor::Cursor;
pub use error::{Error, InvalidQuery, Validation};
pub use filter::{AuditFilter, OrganizationRef, Username};
pub use histogram::{
    BUCKET_WIDTHS_SECONDS, Bucket, Histogram, MAX_BUCKETS, Span, bucket_width_seconds,
};
pub use paging::{DEFAULT_LIMIT, InvalidParams, PageRequest, parse_page_params};
pub use resolve::{Actor, OrganizationLookup, ResolvedFilter, Resolver};
pub use response::{AuditLog, AuditLogsResponse, CSV_HEADER, MinimalOrganization, User};
pub use runner::{
    AuditLogRow, DEFAULT_ORGANIZATION_CACHE_TTL, DEFAULT_QUERY_TIMEOUT, OrganizationDirectory,
    QueryRunner, ScopedDirectory, Visibility,
};
pub use sql::{COLUMNS, COUNT_CAP, Page, ParamValue, SqlBuilder, SqlQuery};
pub use suggest::{EnumKey, MAX_SUGGESTIONS, SuggestColumn, SuggestSource, filter_keys, matching};
