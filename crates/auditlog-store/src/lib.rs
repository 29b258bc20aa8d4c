//! The ClickHouse table of audit events, and everything that must agree about it.
//!
//! ```text
//!  AuditEvent ──RowEncoder──► RowBinary ──INSERT (COLUMNS)──► audit_logs   (the ingester)
//!  AuditEvent ◄─into_event── AuditLogRow ◄──decode_rows── RowBinary ◄──SELECT (COLUMNS)  (queries)
//!                 schemas/clickhouse/*.sql ──migrate──► tables, views, lookups
//! ```
//!
//! One crate owns the column list, the DDL and its migrations, the row encoding both ways,
//! the client settings, the identifier check and the reading of the server's error codes, so
//! the writer and the readers cannot drift apart.
//!
//! ```
//! use auditlog_store::{COLUMNS, RowEncoder, decode_rows};
//!
//! let event = auditlog_event::testing::sample_event();
//! let mut bytes = Vec::new();
//! RowEncoder::default().encode(&event, &mut bytes);
//! let rows = decode_rows(&bytes)?;
//! assert_eq!(rows[0].clone().into_event(), event);
//! assert_eq!(COLUMNS[..2], ["id", "time"]);
//! # Ok::<(), auditlog_store::StoreError>(())
//! ```

mod client;
mod columns;
mod error;
mod identifier;
mod integrity_tables;
mod migrate;
mod row;
mod server_error;

pub use client::ClickHouseConfig;
pub use columns::{COLUMNS, SOURCE_COLUMNS, stored_columns};
pub use error::StoreError;
pub use identifier::{check_identifier, is_identifier};
pub use integrity_tables::{
    CHECKPOINT_COLUMNS, CHECKPOINTS_TABLE, CheckpointRow, DIGEST_COLUMNS, DIGESTS_TABLE, DigestRow,
};
pub use migrate::{
    CLUSTER_MIGRATIONS, MIGRATIONS, Migration, MigrationReport, SchemaTarget, apply as migrate,
    lookup_table,
};
pub use row::{
    AuditLogRow, RowEncoder, Source, StoredRow, decode_rows, split_stored_prefix, split_stored_rows,
};
pub use server_error::{ServerFailure, error_code};
