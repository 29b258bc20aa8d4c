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
//! ```
//!
//! The grammar, value rules and error texts are Coder's (`coderd/searchquery/search.go` and
//! `coderd/httpapi/queryparams.go`), so a client written against Coder sees the same
//! validations.
//!
//! ```
//! use auditlog_query::{Actor, AuditFilter, Resolver};
//!
//! let filter = AuditFilter::parse("resource_type:workspace action:delete username:me")?;
//! let resolved = filter.resolve(&Resolver::new().with_caller_username("alice"))?;
//! assert_eq!(resolved.actor, Some(Actor::Username("alice".to_owned())));
//! # Ok::<(), auditlog_query::Error>(())
//! ```

mod date;
mod error;
mod filter;
mod grammar;
mod quote;
mod resolve;

pub use error::{Error, InvalidQuery, Validation};
pub use filter::{AuditFilter, OrganizationRef, Username};
pub use resolve::{Actor, OrganizationLookup, ResolvedFilter, Resolver};
