//! The read side of the audit log: Coder's audit filter language, parsed into a typed filter
//! and translated into parameterized ClickHouse SQL, and what comes back turned into Coder's
//! response types and bulk formats.
//!
//! ```text
//!  "action:delete username:me"                      q= text (Coder's language)
//!        │ AuditFilter::parse          errors: InvalidQuery, Coder's 400 validations and order
//!        ▼
//!  AuditFilter { action, username: Me, .. }         typed, `me` and org names unresolved
//!        │ AuditFilter::resolve(&Resolver)          caller + organization lookup
//!        ▼                                          (QueryRunner::resolve: both, one parse)
//!  ResolvedFilter { action, actor, .. }
//!        │ SqlBuilder::{page, count_capped, count_exact}
//!        ▼
//!  SqlQuery { text, params }                        text with {name:Type} placeholders only;
//!        │                                          point filters read `{table}_lookup`
//!        │ QueryRunner (max_execution_time + client timeout)
//!        ▼
//!  RowBinary ─decode_rows─► AuditLogRow (one per event: copies dropped)
//!        ▼
//!  AuditEvent → AuditLog                            Coder's JSON (AuditLogsResponse),
//!                                │                  with Coder's description text
//!                                ▼ write_ndjson, write_csv_header + write_csv_rows
//!                          NDJSON or CSV bytes      the API's export and the CLI
//! ```
//!
//! Paging parameters (`limit`, `offset`, `after`) are read by [`parse_page_params`], whose
//! rejections are the same [`InvalidQuery`] type with Coder's other 400 message.
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
//! // One point key: answered from the lookup table, the value a parameter.
//! assert!(query.text.contains("FROM `auditlog`.`audit_logs_lookup`"));
//! assert!(query.params.iter().any(|(name, _)| name == "lookup_value"));
//! assert!(!query.text.contains("alice"));
//! # Ok::<(), auditlog_query::Error>(())
//! ```

mod census;
mod chart;
mod cursor;
mod date;
mod description;
mod engine_time;
mod error;
mod export;
mod filter;
#[doc(hidden)]
pub mod fuzz_checks;
mod go_quote;
mod grammar;
mod histogram;
mod keyed_page;
mod lookup;
mod paging;
mod range;
mod resolve;
mod response;
mod runner;
mod sql;
mod suggest;
mod window;

pub use auditlog_store::{AuditLogRow, COLUMNS};
pub use cursor::Cursor;
pub use engine_time::{EngineTime, measure as measure_engine_time};
pub use error::{Error, InvalidQuery, Validation};
pub use export::{write_csv_header, write_csv_rows, write_ndjson};
pub use filter::{AuditFilter, OrganizationRef, Username};
pub use histogram::{
    BUCKET_WIDTHS_SECONDS, Bucket, Histogram, MAX_BUCKETS, Span, bucket_width_seconds,
};
pub use lookup::LookupKey;
pub use paging::{DEFAULT_LIMIT, PageRequest, parse_page_params};
pub use resolve::{Actor, OrganizationLookup, ResolvedFilter, Resolver};
pub use response::{AuditLog, AuditLogsResponse, CSV_HEADER, MinimalOrganization, User};
pub use runner::{
    DEFAULT_ORGANIZATION_CACHE_TTL, DEFAULT_QUERY_TIMEOUT, OrganizationDirectory, QueryRunner,
    ScopedDirectory, Visibility,
};
pub use sql::{COUNT_CAP, Page, ParamValue, SqlBuilder, SqlQuery, Window};
pub use suggest::{
    EnumKey, MAX_SUGGESTIONS, SUGGEST_WINDOWS, SuggestColumn, SuggestSource, filter_keys, matching,
};
pub use window::{WINDOWS, count_windows, page_windows, windows_for};
