//! Matching events over time: the audit page's chart, exact and deduplicated like the count.
//!
//! ```text
//!  span of the caller's rows in the filter's dates: min(time), max(time)   (cheap)
//!      │ coarse width: the first of BUCKET_WIDTHS_SECONDS giving < MAX_BUCKETS buckets
//!      ▼
//!  buckets: intDiv(seconds, width) * width AS start, uniqExact(time, id)   (the count's FROM and WHERE)
//!      │ the matches occupy a much shorter span? (a narrow filter)
//!      ▼
//!  buckets again at the finer width, bounded to that span (the sorting key is time: cheap)
//! ```
//!
//! The bucket queries take their FROM and WHERE from [`SqlBuilder`], so the caller's
//! organization scope, the filter semantics, the lookup table for point filters and the
//! counting of distinct `(time, id)` keys are those of the page and the count: the buckets add up to the
//! exact count of the filter, whatever duplicates the table holds. The span query only picks
//! a width, and duplicates cannot move a minimum or a maximum, so it reads without the
//! filter's other keys (one full scan saved: at 10M rows a filtered span cost as much as the
//! buckets themselves).

use serde::{Deserialize, Serialize};

use crate::resolve::ResolvedFilter;
use crate::sql::{Column, ParamValue, Source, SqlBuilder, SqlQuery};

/// The most bars a chart gets; the width is the smallest of [`BUCKET_WIDTHS_SECONDS`] that fits.
pub const MAX_BUCKETS: u64 = 120;

/// Bucket widths a chart may use, in seconds: calendar-like steps an auditor reads at once.
pub const BUCKET_WIDTHS_SECONDS: [u64; 16] = [
    1,
    5,
    15,
    60,
    5 * 60,
    15 * 60,
    30 * 60,
    3600,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    86_400,
    2 * 86_400,
    7 * 86_400,
    30 * 86_400,
    365 * 86_400,
];

pub(crate) const MICROS_PER_SECOND: i64 = 1_000_000;

/// The bucket width for events spanning `[first_micros, last_micros]`: the narrowest of
/// [`BUCKET_WIDTHS_SECONDS`] that needs at most [`MAX_BUCKETS`] buckets (the widest otherwise).
pub fn bucket_width_seconds(first_micros: i64, last_micros: i64) -> u64 {
    let span_seconds = (last_micros.saturating_sub(first_micros).max(0) / MICROS_PER_SECOND) as u64;
    BUCKET_WIDTHS_SECONDS
        .into_iter()
        .find(|width| span_seconds / width < MAX_BUCKETS)
        .unwrap_or(BUCKET_WIDTHS_SECONDS[BUCKET_WIDTHS_SECONDS.len() - 1])
}

/// The time span of the rows a histogram can count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub struct Span {
    /// The oldest row, µs since the epoch (0 when none).
    pub first_micros: i64,
    /// The newest row, µs since the epoch (0 when none).
    pub last_micros: i64,
}

/// One bar of the chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clickhouse::Row, Deserialize, Serialize)]
pub struct Bucket {
    /// The bucket's start, seconds since the epoch (a multiple of the width).
    pub start: i64,
    /// Matching events in `[start, start + width)`.
    pub count: u64,
}

/// The chart's data: `GET /api/v2/audit/histogram`'s body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Histogram {
    /// Every bucket's width in seconds.
    pub bucket_seconds: u64,
    /// Buckets holding at least one event, oldest first; empty ones are left out.
    pub buckets: Vec<Bucket>,
    /// The exact number of matching events (the buckets' sum).
    pub total: u64,
}

impl SqlBuilder {
    /// The first and last time of the caller's rows within the filter's dates: what the
    /// chart's width is chosen from. Duplicates cannot move either end.
    pub fn histogram_span(&self, filter: &ResolvedFilter) -> SqlQuery {
        let dates_only = ResolvedFilter {
            date_from: filter.date_from,
            date_to: filter.date_to,
            ..ResolvedFilter::default()
        };
        let conditions = self.conditions(&dates_only);
        let time = Column::Time.name();
        let text = format!(
            "SELECT toInt64(toUnixTimestamp64Micro(min({time}))) AS first_micros, \
             toInt64(toUnixTimestamp64Micro(max({time}))) AS last_micros\n{from}{where_clause}",
            from = self.table_clause(),
            where_clause = conditions.where_clause(),
        );
        conditions.into_query(text)
    }

    /// The matching events per bucket of `bucket_seconds`, oldest first; with `within`
    /// (`[from, to)` in Unix seconds) only that span is read.
    pub fn histogram_buckets(
        &self,
        filter: &ResolvedFilter,
        bucket_seconds: u64,
        within: Option<(i64, i64)>,
    ) -> SqlQuery {
        let Source {
            from,
            mut conditions,
        } = self.source(filter);
        let time = Column::Time.name();
        if let Some(within) = within {
            conditions.time_within(("bucket_from", "bucket_to"), within);
        }
        let width = conditions.bind("bucket_seconds", ParamValue::UInt64(bucket_seconds.max(1)));
        // Whole seconds first, then the bucket: integer arithmetic, so no bucket edge
        // depends on a timezone or on floating point.
        let text = format!(
            "SELECT toInt64(intDiv(toUnixTimestamp({time}), {width}) * {width}) AS start, uniqExact({time}, {id}) AS count\n\
             {from}{where_clause}\nGROUP BY start\nORDER BY start",
            id = Column::Id.name(),
            where_clause = conditions.where_clause(),
        );
        conditions.into_query(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_width_is_the_narrowest_that_fits() {
        let second = MICROS_PER_SECOND;
        assert_eq!(bucket_width_seconds(0, 0), 1);
        assert_eq!(bucket_width_seconds(0, 119 * second), 1);
        assert_eq!(bucket_width_seconds(0, 120 * second), 5);
        assert_eq!(bucket_width_seconds(0, 14 * 86_400 * second), 3 * 3600);
        assert_eq!(bucket_width_seconds(0, 90 * 86_400 * second), 86_400);
        assert_eq!(bucket_width_seconds(0, i64::MAX), 365 * 86_400);
        assert_eq!(bucket_width_seconds(10, 0), 1, "a reversed span is empty");
    }

    #[test]
    fn the_buckets_use_the_scope_and_the_filter() {
        let builder = SqlBuilder::try_new("db", "t")
            .unwrap()
            .with_organization_scope([uuid::Uuid::from_u128(1)]);
        let filter = crate::AuditFilter::parse("action:delete")
            .unwrap()
            .resolve(&crate::Resolver::new())
            .unwrap();
        let query = builder.histogram_buckets(&filter, 3600, None);
        assert!(query.text.contains("FROM `db`.`t`\n"));
        assert!(query.text.contains("uniqExact(time, id)"));
        assert!(
            query
                .text
                .contains("organization_id IN {scope_organization_ids:Array(UUID)}")
        );
        assert!(query.text.contains("action = {action:String}"));
        assert!(query.text.contains("{bucket_seconds:UInt64}"));
        assert!(!query.text.contains("bucket_from"));
        let bounded = builder.histogram_buckets(&filter, 60, Some((3600, 7200)));
        assert!(
            bounded
                .text
                .contains("time >= {bucket_from:DateTime64(6, 'UTC')}")
        );
        assert!(
            bounded
                .text
                .contains("time < {bucket_to:DateTime64(6, 'UTC')}")
        );
        // The span reads the caller's scope, never the filter's other keys.
        let span = builder.histogram_span(&filter);
        assert!(span.text.contains("{scope_organization_ids:Array(UUID)}"));
        assert!(!span.text.contains("{action:String}"));
        // A point filter's buckets come from the lookup table, like its page and count.
        let point = crate::AuditFilter::parse("username:alice")
            .unwrap()
            .resolve(&crate::Resolver::new())
            .unwrap();
        let query = builder.histogram_buckets(&point, 60, None);
        assert!(
            query.text.contains("FROM `db`.`t_lookup`"),
            "{}",
            query.text
        );
    }
}
