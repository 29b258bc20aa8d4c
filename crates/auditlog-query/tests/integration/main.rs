//! The query crate's integration tests, built as one binary.

mod grammar_table;
mod properties;
mod sql_snapshots;
