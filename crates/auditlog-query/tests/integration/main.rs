//! The query crate's integration tests, built as one binary.

mod fuzz_corpus;
mod grammar_table;
mod properties;
mod sql_snapshots;
