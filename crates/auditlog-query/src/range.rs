//! Reading every match of a time range, oldest first, page after page: what `auditlog stream
//! backfill` re-sends from the store.
//!
//! ```text
//!  [from, to) + filter ──range_page(after = None)──▶ rows 1..=n  (time ASC, id ASC)
//!                      ──range_page(after = row n)─▶ rows n+1..  ... until a page is short
//! ```
//!
//! A keyset over the sorting key `(time, id)`, never `OFFSET`: each page is one bounded read
//! however deep into the range it is, and rows written meanwhile behind the cursor cannot shift
//! what comes next. Copies of one event are one key, so each event comes back once (the same
//! `DISTINCT` keys as [`SqlBuilder::page`]).

use auditlog_store::COLUMNS;

use crate::cursor::Cursor;
use crate::resolve::ResolvedFilter;
use crate::sql::{Column, ParamValue, Source, SqlBuilder, SqlQuery};

impl SqlBuilder {
    /// At most `limit` rows matching `filter` with `from_micros <= time < to_micros` (µs since
    /// the Unix epoch), strictly after `after`, ordered `time ASC, id ASC`; columns as
    /// [`COLUMNS`]. Copies of one event come back next to each other; the reader keeps one.
    ///
    /// ```
    /// use auditlog_query::{Cursor, ResolvedFilter, SqlBuilder};
    ///
    /// let builder = SqlBuilder::try_new("auditlog", "audit_logs")?;
    /// let after = Cursor::new(1_000, uuid::Uuid::nil());
    /// let query = builder.range_page(&ResolvedFilter::default(), 0, 2_000, Some(after), 500);
    /// assert!(query.text.ends_with("ORDER BY time ASC, id ASC"));
    /// assert_eq!(query.params.len(), 5); // from, to, cursor time and id, limit
    /// # Ok::<(), auditlog_query::Error>(())
    /// ```
    pub fn range_page(
        &self,
        filter: &ResolvedFilter,
        from_micros: i64,
        to_micros: i64,
        after: Option<Cursor>,
        limit: u64,
    ) -> SqlQuery {
        let Source {
            from,
            mut conditions,
        } = self.source(filter);
        let time = Column::Time.name();
        let id = Column::Id.name();
        conditions.time_within_micros(("range_from", "range_to"), (from_micros, to_micros));
        // The outer read repeats the range on the same parameters.
        let bound = |name| conditions.placeholder_of(name).expect("bound just above");
        let (from_placeholder, to_placeholder) = (bound("range_from"), bound("range_to"));
        if let Some(cursor) = after {
            let cursor_time = conditions.bind(
                "cursor_time",
                ParamValue::DateTime64Micros(cursor.time_micros()),
            );
            let cursor_id = conditions.bind("cursor_id", ParamValue::Uuid(cursor.id()));
            // Spelled out, with a leading bound on the sorting key's first column, so that
            // ClickHouse skips the granules before the cursor (as `page` does the other way).
            conditions
                .predicates
                .push(format!("{time} >= {cursor_time}"));
            conditions
                .predicates
                .push(format!("({time} > {cursor_time} OR {id} > {cursor_id})"));
        }
        let limit = conditions.bind("limit", ParamValue::UInt64(limit));
        let in_operator = if self.distributed { "GLOBAL IN" } else { "IN" };
        let text = format!(
            "SELECT {columns}\nFROM {table}\nWHERE {time} >= {from_placeholder}\n  AND {time} < {to_placeholder}\n  \
             AND ({time}, {id}) {in_operator} (\n\
             SELECT DISTINCT {time}, {id}\n{from}{where_clause}\n\
             ORDER BY {time} ASC, {id} ASC\nLIMIT {limit}\n)\n\
             ORDER BY {time} ASC, {id} ASC",
            columns = COLUMNS.join(", "),
            table = self.qualified_table,
            where_clause = conditions.where_clause(),
        );
        conditions.into_query(text)
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::{AuditFilter, Resolver};

    #[test]
    fn pages_go_forward_from_the_cursor_within_the_range() {
        let builder = SqlBuilder::try_new("db", "audit_logs").unwrap();
        let filter = AuditFilter::parse("action:delete")
            .unwrap()
            .resolve(&Resolver::new())
            .unwrap();
        let first = builder.range_page(&filter, 10, 20, None, 3);
        assert!(
            first
                .text
                .contains("time >= {range_from:DateTime64(6, 'UTC')}")
        );
        assert!(
            first
                .text
                .contains("time < {range_to:DateTime64(6, 'UTC')}")
        );
        assert!(first.text.contains("action = {action:String}"));
        assert!(!first.text.contains("cursor"));
        let next = builder.range_page(
            &filter,
            10,
            20,
            Some(Cursor::new(15, Uuid::from_u128(7))),
            3,
        );
        assert!(
            next.text
                .contains("(time > {cursor_time:DateTime64(6, 'UTC')} OR id > {cursor_id:UUID})")
        );
        assert!(
            next.params
                .contains(&("cursor_id".to_owned(), ParamValue::Uuid(Uuid::from_u128(7))))
        );
        assert!(!next.text.contains("DESC"));
    }

    #[test]
    fn a_point_filter_reads_its_keys_from_the_lookup_table() {
        let builder = SqlBuilder::try_new("db", "audit_logs").unwrap();
        let filter = AuditFilter::parse("username:alice")
            .unwrap()
            .resolve(&Resolver::new())
            .unwrap();
        let query = builder.range_page(&filter, 0, 1, None, 10);
        assert!(query.text.contains("FROM `db`.`audit_logs_lookup`"));
    }
}
