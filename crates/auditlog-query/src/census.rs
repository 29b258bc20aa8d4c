//! The chart's day census: what a day of the table holds, as last counted (see
//! [`crate::chart`]), and the cache a runner keeps of it.

use std::collections::HashMap;

use serde::Deserialize;

/// Stored rows and distinct `(time, id)` keys of one UTC day of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub(crate) struct Census {
    pub(crate) day: i64,
    pub(crate) rows: u64,
    pub(crate) events: u64,
}

/// The day census cache: UTC day start (Unix seconds) → its last census.
pub(crate) type CensusCache = HashMap<i64, Census>;
