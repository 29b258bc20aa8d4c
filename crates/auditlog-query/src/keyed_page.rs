//! A point filter's page and capped count from one read of the lookup table (migration 0003).
//!
//! ```text
//!  page + capped count ──► the value's newest 2,001 distinct keys, from the lookup table
//!                              │ count = how many came back (Coder's cap: 2,000 + 1)
//!                              │ page  = the keys at offset .. offset + limit
//!                              ▼
//!                          those events' rows, fetched from the table by key
//! ```
//!
//! A read of the lookup costs a range per part, about the same whether it stops at 25 keys
//! or at 2,001. A page and its count asked apart paid it twice, at the same moment on the same
//! cores: on the bench's 10M events (67 parts) a workspace's page took 164 ms alone and 270-310
//! ms beside its count (80-90 ms alone). Read once, the keys answer both, and the page's rows
//! are fetched by key as before. A key whose windows are worth trying ([`crate::window`]) keeps
//! its page and count apart, since a window that fills answers without the lookup: the runner
//! plans the one read only for a filter with no window to try.

use serde::Deserialize;
use uuid::Uuid;

use crate::lookup::LookupKey;
use crate::resolve::ResolvedFilter;
use crate::sql::{COUNT_CAP, Column, Page, ParamValue, SqlBuilder, SqlQuery};

/// An event's sorting key as the lookup table returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub(crate) struct EventKey {
    /// `time`, µs since the Unix epoch.
    pub(crate) time: i64,
    #[serde(with = "clickhouse::serde::uuid")]
    pub(crate) id: Uuid,
}

/// What one read of a point filter's keys answers: the keys of the page (an offset page
/// whose end lies within the capped count), and the count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyedPage {
    pub(crate) offset: u64,
    pub(crate) limit: u64,
}

impl KeyedPage {
    /// The plan for `page` of `filter`, when one read of its keys could answer both: a point
    /// filter, routed to the lookup, and an offset page that ends within the [`COUNT_CAP`] + 1
    /// keys the count reads (a later page, or a cursor, reads on its own). The caller first
    /// tries the windows the filter's key has, if any ([`crate::window`]).
    pub(crate) fn plan(filter: &ResolvedFilter, page: &Page) -> Option<Self> {
        LookupKey::route(filter)?;
        match *page {
            Page::Offset { limit, offset } if offset.saturating_add(limit) <= COUNT_CAP + 1 => {
                Some(Self { offset, limit })
            }
            _ => None,
        }
    }

    /// The page's keys among `keys` (the newest first, at most [`COUNT_CAP`] + 1 of them).
    pub(crate) fn select(self, keys: &[EventKey]) -> Vec<(i64, Uuid)> {
        keys.iter()
            .skip(usize::try_from(self.offset).unwrap_or(usize::MAX))
            .take(usize::try_from(self.limit).unwrap_or(usize::MAX))
            .map(|key| (key.time, key.id))
            .collect()
    }
}

impl SqlBuilder {
    /// The newest `limit` distinct event keys matching `filter`, newest first, read where
    /// [`SqlBuilder::source`] says (the lookup table for a point filter).
    pub(crate) fn newest_keys(&self, filter: &ResolvedFilter, limit: u64) -> SqlQuery {
        let mut source = self.source(filter);
        let limit = source.conditions.bind("limit", ParamValue::UInt64(limit));
        let text = format!(
            "SELECT DISTINCT {time}, {id}\n{from}{where_clause}\n\
             ORDER BY {time} DESC, {id} DESC\nLIMIT {limit}",
            time = Column::Time.name(),
            id = Column::Id.name(),
            from = source.from,
            where_clause = source.conditions.where_clause(),
        );
        source.conditions.into_query(text)
    }

    /// The rows of the events with these keys, ordered as pages are; copies of one event
    /// come back next to each other. The keys were read under the caller's scope, so no
    /// other predicate applies.
    pub(crate) fn rows_by_keys(&self, keys: Vec<(i64, Uuid)>) -> SqlQuery {
        let mut conditions = crate::sql::Conditions::default();
        let time = Column::Time.name();
        let id = Column::Id.name();
        let keys = conditions.bind("keys", ParamValue::KeyArray(keys));
        let text = format!(
            "SELECT {columns}\nFROM {table}\nWHERE ({time}, {id}) IN {keys}\n\
             ORDER BY {time} DESC, {id} DESC",
            columns = auditlog_store::COLUMNS.join(", "),
            table = self.qualified_table,
        );
        conditions.into_query(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::resolved;

    const RESOURCE: &str = "resource_id:00000000-0000-0000-0000-000000000001";

    #[test]
    fn one_read_serves_point_filters_and_pages_within_the_cap() {
        let first = Page::Offset {
            limit: 25,
            offset: 0,
        };
        assert_eq!(
            KeyedPage::plan(&resolved(RESOURCE), &first),
            Some(KeyedPage {
                offset: 0,
                limit: 25
            })
        );
        let last_within = Page::Offset {
            limit: 1,
            offset: COUNT_CAP,
        };
        assert!(KeyedPage::plan(&resolved(RESOURCE), &last_within).is_some());
        let beyond = Page::Offset {
            limit: 2,
            offset: COUNT_CAP,
        };
        assert_eq!(KeyedPage::plan(&resolved(RESOURCE), &beyond), None);
        let cursor = Page::After {
            limit: 25,
            cursor: crate::Cursor::new(0, Uuid::nil()),
        };
        assert_eq!(KeyedPage::plan(&resolved(RESOURCE), &cursor), None);
        // Filters that are not point filters read the table.
        assert_eq!(KeyedPage::plan(&resolved("action:login"), &first), None);
    }

    #[test]
    fn the_page_is_the_keys_at_its_offset() {
        let keys: Vec<EventKey> = (0..5)
            .map(|index| EventKey {
                time: 100 - index,
                id: Uuid::from_u128(index as u128),
            })
            .collect();
        let page = KeyedPage {
            offset: 3,
            limit: 25,
        };
        assert_eq!(
            page.select(&keys),
            vec![(97, Uuid::from_u128(3)), (96, Uuid::from_u128(4))]
        );
        assert!(
            KeyedPage {
                offset: 9,
                limit: 2
            }
            .select(&keys)
            .is_empty()
        );
    }

    #[test]
    fn keys_come_from_the_lookup_and_rows_by_key_from_the_table() {
        let builder = SqlBuilder::try_new("db", "t").unwrap();
        let keys = builder.newest_keys(&resolved(&format!("{RESOURCE} action:start")), 2001);
        assert!(keys.text.contains("FROM `db`.`t_lookup`"), "{}", keys.text);
        assert!(keys.text.contains("action = "), "{}", keys.text);
        assert!(keys.text.ends_with("LIMIT {limit:UInt64}"), "{}", keys.text);
        let rows = builder.rows_by_keys(vec![(0, Uuid::nil())]);
        assert!(
            rows.text.contains(
                "FROM `db`.`t`\nWHERE (time, id) IN {keys:Array(Tuple(DateTime64(6, 'UTC'), UUID))}"
            ),
            "{}",
            rows.text
        );
    }
}
