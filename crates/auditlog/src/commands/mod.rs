//! One module per subcommand; each takes resolved settings and does its job.

pub mod access_ddl;
pub mod dlq;
pub mod generate;
pub mod ingest;
pub mod keygen;
pub mod migrate;
pub mod query;
pub mod serve;
pub mod stream;
pub mod stream_backfill;
pub mod verify;
pub mod verify_archive;
