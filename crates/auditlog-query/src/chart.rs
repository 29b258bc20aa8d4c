//! The chart from the hourly rollup (migration 0007), exact day by day.
//!
//! ```text
//!  filter without point keys, bucket width a whole number of hours
//!      │
//!      ├─► rollup: rows per (bucket, day) for the filter          (thousands of rows a year)
//!      ├─► rollup: rows per day, everything                       ┐ a day is clean when the
//!      ├─► table:  rows and distinct (time, id) per day (cached)  ┘ three numbers agree
//!      ▼
//!  clean days: the rollup's counts; other days (today, a day with a copy): the table's
//! ```
//!
//! The rollup counts rows, and a copy of an event is a second row. A day whose rollup total,
//! stored rows and distinct keys agree holds no copy and lost no rollup row, so its hours are
//! exact. The census of a day is cached in the runner and taken again whenever the rollup's
//! total for that day moves (every insert moves both), so only days being written, or holding
//! copies, are ever counted from the table on a warm server.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use crate::census::Census;
use crate::error::Error;
use crate::histogram::Bucket;
use crate::resolve::ResolvedFilter;
use crate::runner::QueryRunner;
use crate::sql::{Column, ParamValue, SqlBuilder, SqlQuery};

const DAY_SECONDS: i64 = 86_400;
const HOUR_SECONDS: u64 = 3_600;
/// The most days one census query counts, so that each stays well inside the query timeout
/// at any ingest rate.
const CENSUS_DAYS_PER_QUERY: i64 = 31;

#[derive(Debug, Clone, Copy, clickhouse::Row, Deserialize)]
struct DayBucket {
    start: i64,
    day: i64,
    count: u64,
}

#[derive(Debug, Clone, Copy, clickhouse::Row, Deserialize)]
struct DayTotal {
    day: i64,
    rows: u64,
}

fn day_expression() -> String {
    format!(
        "toInt64(intDiv(toUnixTimestamp({}), {DAY_SECONDS}) * {DAY_SECONDS})",
        Column::Time.name()
    )
}

impl SqlBuilder {
    /// Whether the hourly rollup holds `filter`'s keys: organization, resource type, action,
    /// build reason and dates. Point keys (users, resources, requests, targets) are not in it.
    pub fn hourly_covers(filter: &ResolvedFilter) -> bool {
        filter.request_id.is_none()
            && filter.resource_id.is_none()
            && filter.resource_target.is_none()
            && filter.actor.is_none()
            && filter.email.is_none()
    }

    /// The rollup's rows for `filter` per bucket of `bucket_seconds` and UTC day, within
    /// `[from, to)` Unix seconds.
    pub fn hourly_buckets(
        &self,
        filter: &ResolvedFilter,
        bucket_seconds: u64,
        (from, to): (i64, i64),
    ) -> SqlQuery {
        let mut conditions = self.conditions(filter);
        let time = Column::Time.name();
        conditions.time_within(("bucket_from", "bucket_to"), (from, to));
        let width = conditions.bind("bucket_seconds", ParamValue::UInt64(bucket_seconds.max(1)));
        let text = format!(
            "SELECT toInt64(intDiv(toUnixTimestamp({time}), {width}) * {width}) AS start, \
             {day} AS day, toUInt64(sum(rows)) AS count\nFROM {table}{where_clause}\n\
             GROUP BY start, day\nORDER BY start, day",
            day = day_expression(),
            table = self.qualified_hourly,
            where_clause = conditions.where_clause(),
        );
        conditions.into_query(text)
    }

    /// The rollup's rows per UTC day, every organization and kind, within `[from, to)`.
    pub fn hourly_day_totals(&self, (from, to): (i64, i64)) -> SqlQuery {
        self.per_day(
            &self.qualified_hourly,
            "toUInt64(sum(rows)) AS rows",
            (from, to),
        )
    }

    /// The table's stored rows and distinct `(time, id)` keys per UTC day within `[from, to)`.
    pub fn day_census(&self, (from, to): (i64, i64)) -> SqlQuery {
        self.per_day(
            &self.qualified_table,
            &format!(
                "count() AS rows, uniqExact({}, {}) AS events",
                Column::Time.name(),
                Column::Id.name()
            ),
            (from, to),
        )
    }

    fn per_day(&self, table: &str, aggregates: &str, (from, to): (i64, i64)) -> SqlQuery {
        let mut conditions = crate::sql::Conditions::default();
        conditions.time_within(("day_from", "day_to"), (from, to));
        let text = format!(
            "SELECT {day} AS day, {aggregates}\nFROM {table}{where_clause}\nGROUP BY day\nORDER BY day",
            day = day_expression(),
            where_clause = conditions.where_clause(),
        );
        conditions.into_query(text)
    }
}

/// UTC day starts from the one holding `first` to the one holding `last` (Unix seconds).
fn days_between(first: i64, last: i64) -> Vec<i64> {
    let first = first.div_euclid(DAY_SECONDS) * DAY_SECONDS;
    let last = last.div_euclid(DAY_SECONDS) * DAY_SECONDS;
    (0..)
        .map(|step| first + step * DAY_SECONDS)
        .take_while(|day| *day <= last)
        .collect()
}

/// Consecutive days as `[start, end)` spans, each at most `max_days` long.
fn runs(days: &[i64], max_days: i64) -> Vec<(i64, i64)> {
    let mut spans: Vec<(i64, i64)> = Vec::new();
    for &day in days {
        match spans.last_mut() {
            Some((start, end)) if *end == day && (*end - *start) / DAY_SECONDS < max_days => {
                *end = day + DAY_SECONDS;
            }
            _ => spans.push((day, day + DAY_SECONDS)),
        }
    }
    spans
}

impl QueryRunner {
    /// The chart's buckets from the hourly rollup, or `None` when it cannot count `filter`
    /// at `bucket_seconds` (a point key, or a width under an hour).
    ///
    /// `span` is `[first, last]` in Unix seconds: the days whose events may match.
    pub(crate) async fn hourly_histogram(
        &self,
        builder: &SqlBuilder,
        filter: &ResolvedFilter,
        bucket_seconds: u64,
        span: (i64, i64),
    ) -> Result<Option<Vec<Bucket>>, Error> {
        if !SqlBuilder::hourly_covers(filter) || !bucket_seconds.is_multiple_of(HOUR_SECONDS) {
            return Ok(None);
        }
        let days = days_between(span.0, span.1);
        let (Some(&first_day), Some(&last_day)) = (days.first(), days.last()) else {
            return Ok(Some(Vec::new()));
        };
        let range = (first_day, last_day + DAY_SECONDS);
        let rollup = self
            .fetch_all::<DayBucket>(&builder.hourly_buckets(filter, bucket_seconds, range))
            .await?;
        let clean = self.clean_days(&days, range).await?;

        let mut counts: BTreeMap<i64, u64> = BTreeMap::new();
        for bucket in rollup.iter().filter(|bucket| clean.contains(&bucket.day)) {
            *counts.entry(bucket.start).or_default() += bucket.count;
        }
        let unclean: Vec<i64> = days
            .iter()
            .copied()
            .filter(|day| !clean.contains(day))
            .collect();
        for within in runs(&unclean, i64::MAX) {
            let exact = self
                .fetch_all::<Bucket>(&builder.histogram_buckets(
                    filter,
                    bucket_seconds,
                    Some(within),
                ))
                .await?;
            for bucket in exact {
                *counts.entry(bucket.start).or_default() += bucket.count;
            }
        }
        Ok(Some(
            counts
                .into_iter()
                .filter(|(_, count)| *count > 0)
                .map(|(start, count)| Bucket { start, count })
                .collect(),
        ))
    }

    /// The days of `days` whose rollup total, stored rows and distinct keys agree, taking a
    /// census of every day whose cached one no longer matches the rollup.
    async fn clean_days(
        &self,
        days: &[i64],
        range: (i64, i64),
    ) -> Result<std::collections::HashSet<i64>, Error> {
        // Totals and census are about whole days, whoever asks: never scoped.
        let unscoped = self.sql_builder(&crate::Visibility::All);
        let totals: HashMap<i64, u64> = self
            .fetch_all::<DayTotal>(&unscoped.hourly_day_totals(range))
            .await?
            .into_iter()
            .map(|total| (total.day, total.rows))
            .collect();
        let total_of = |day: &i64| totals.get(day).copied().unwrap_or(0);
        let stale: Vec<i64> = {
            let cache = self.census_cache();
            days.iter()
                .copied()
                .filter(|day| {
                    cache
                        .get(day)
                        .is_none_or(|census| census.rows != total_of(day))
                })
                .collect()
        };
        for within in runs(&stale, CENSUS_DAYS_PER_QUERY) {
            let counted = self
                .fetch_all::<Census>(&unscoped.day_census(within))
                .await?;
            let mut cache = self.census_cache();
            // A day with no stored row has an empty census, not a missing one.
            for day in days_between(within.0, within.1 - 1) {
                cache.insert(
                    day,
                    Census {
                        day,
                        rows: 0,
                        events: 0,
                    },
                );
            }
            for census in counted {
                cache.insert(census.day, census);
            }
        }
        let cache = self.census_cache();
        Ok(days
            .iter()
            .copied()
            .filter(|day| {
                cache.get(day).is_some_and(|census| {
                    census.rows == total_of(day) && census.events == census.rows
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_runs() {
        let day = DAY_SECONDS;
        assert_eq!(days_between(10, 10), vec![0]);
        assert_eq!(days_between(day - 1, day), vec![0, day]);
        assert_eq!(days_between(-1, 0), vec![-day, 0]);
        assert_eq!(
            runs(&[0, day, 3 * day, 4 * day, 5 * day], 2),
            vec![(0, 2 * day), (3 * day, 5 * day), (5 * day, 6 * day)]
        );
        assert!(runs(&[], 31).is_empty());
    }

    #[test]
    fn only_coarse_filters_are_counted_from_the_rollup() {
        let resolved = |query: &str| {
            crate::AuditFilter::parse(query)
                .unwrap()
                .resolve(&crate::Resolver::new())
                .unwrap()
        };
        for covered in [
            "",
            "resource_type:workspace action:create",
            "build_reason:autostop date_from:2025-01-01",
            "organization:00000000-0000-0000-0000-000000000001",
        ] {
            assert!(SqlBuilder::hourly_covers(&resolved(covered)), "{covered}");
        }
        for point in [
            "username:alice",
            "email:a@b.c",
            "resource_target:x",
            "request_id:00000000-0000-0000-0000-000000000001",
            "resource_id:00000000-0000-0000-0000-000000000001",
        ] {
            assert!(!SqlBuilder::hourly_covers(&resolved(point)), "{point}");
        }
    }

    #[test]
    fn the_rollup_query_applies_the_filter_and_scope() {
        let builder = SqlBuilder::try_new("db", "t")
            .unwrap()
            .with_organization_scope([uuid::Uuid::from_u128(1)]);
        let filter = crate::AuditFilter::parse("build_reason:autostop")
            .unwrap()
            .resolve(&crate::Resolver::new())
            .unwrap();
        let query = builder.hourly_buckets(&filter, 86_400, (0, 86_400));
        assert!(query.text.contains("FROM `db`.`t_hourly`"));
        assert!(
            query
                .text
                .contains("organization_id IN {scope_organization_ids:Array(UUID)}")
        );
        assert!(query.text.contains("build_reason = {build_reason:String}"));
        let census = builder.day_census((0, 86_400));
        assert!(census.text.contains("FROM `db`.`t`"));
        assert!(census.text.contains("uniqExact(time, id)"));
        assert!(!census.text.contains("scope"), "a census counts whole days");
    }
}
