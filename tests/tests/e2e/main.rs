//! The whole-system tests: every test here runs against the real local stack (Apache Kafka
//! and the chDB-backed ClickHouse server), usually through the `auditlog` binary itself.
//!
//! One test binary, so the shared fixtures are compiled and linked once. Tests that need no
//! stack live in the crates they test.

mod analysts;
mod api;
mod chart;
mod clickhouse_server;
mod cluster;
mod cookbook;
#[path = "query_support/dataset.rs"]
mod dataset;
mod dedup;
mod dlq_replay;
mod generate;
mod groups;
mod http_limits;
mod ingest;
mod integrity;
mod one_id;
mod query_cli;
mod query_oracle;
mod query_support;
mod smoke;
mod stream;
mod stream_archive;
mod stream_backfill;
mod stream_checkpoints;
mod stream_dead_letter;
mod stream_ocsf;
mod ui_browser;
