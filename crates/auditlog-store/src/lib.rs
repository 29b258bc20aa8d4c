//! The ClickHouse schema of the audit log, and everything that must agree with it.
//!
//! ```text
//!  AuditEvent ──RowEncoder──► RowBinary ──INSERT (COLUMNS)──► audit_logs   (the ingester)
//!  AuditEvent ◄─into_event── AuditLogRow ◄──decode_rows── RowBinary ◄──SELECT (COLUMNS)  (queries)
//!  schemas/clickhouse/{,cluster/}*.sql ──migrate──► tables, views, lookups, rollups
//!  tables::* names ──► the ingester's and verifier's queries;  AccessSpec ──► access-ddl
//! ```
//!
//! This crate is the schema's one owner: the column list ([`COLUMNS`]), the DDL and its
//! migrations for one server and for a cluster ([`MIGRATIONS`], [`CLUSTER_MIGRATIONS`],
//! [`migrate`]; a test holds each cluster migration to its single-server twin column by
//! column), the name of every table and view ([`tables`]), the row encoding both ways
//! ([`RowEncoder`], [`decode_rows`]), the integrity tables' rows ([`DigestRow`],
//! [`CheckpointRow`]), the analysts' read-only access ([`AccessSpec`]), the client settings
//! ([`ClickHouseConfig`]), the identifier check and the reading of the server's error codes.
//! The writer, the readers and the administrators' DDL therefore cannot drift apart.
//!
//! ```
//! use auditlog_store::access::{AccessRequest, AccessSpec};
//! use auditlog_store::{COLUMNS, RowEncoder, decode_rows, tables};
//!
//! let event = auditlog_event::testing::sample_event();
//! let mut bytes = Vec::new();
//! RowEncoder::default().encode(&event, &mut bytes);
//! let rows = decode_rows(&bytes)?;
//! assert_eq!(rows[0].clone().into_event(), event);
//! assert_eq!(COLUMNS[..2], ["id", "time"]);
//!
//! let access = AccessSpec::try_new(AccessRequest {
//!     database: "audit".into(),
//!     table: tables::AUDIT_LOGS.into(),
//!     service_users: vec!["ingester".into()],
//!     ..AccessRequest::default()
//! })?;
//! let grant = format!("GRANT SELECT ON audit.{} TO auditlog_analyst", tables::DAILY_EVENTS);
//! assert!(access.statements().contains(&grant));
//! # Ok::<(), auditlog_store::StoreError>(())
//! ```

pub mod access;
mod client;
mod columns;
mod error;
mod identifier;
mod integrity_tables;
mod migrate;
mod row;
mod server_error;
pub mod tables;

pub use client::ClickHouseConfig;
pub use columns::{COLUMNS, SOURCE_COLUMNS, stored_columns};
pub use error::StoreError;
pub use identifier::{check_identifier, is_identifier};
pub use integrity_tables::{CHECKPOINT_COLUMNS, CheckpointRow, DIGEST_COLUMNS, DigestRow};
pub use migrate::{
    CLUSTER_MIGRATIONS, MIGRATIONS, Migration, MigrationReport, SchemaTarget, apply as migrate,
};
pub use row::{
    AuditLogRow, RowEncoder, Source, StoredRow, decode_rows, split_stored_prefix, split_stored_rows,
};
pub use server_error::{ServerFailure, error_code};
pub use tables::{
    INGEST_CHECKPOINTS as CHECKPOINTS_TABLE, INGEST_DIGESTS as DIGESTS_TABLE, hourly_feed,
    hourly_table, lookup_table,
};
