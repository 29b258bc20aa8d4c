//! Windowed reads: the newest matches of a filter almost always lie in its newest days.
//!
//! ```text
//!  page / capped count ──► try the newest day ──full?──► done (exact)
//!                             │ short
//!                             ▼
//!                          8 days ──► 64 days ──► everything
//! ```
//!
//! A table sorted by time answers `ORDER BY time DESC LIMIT n` by opening every part of
//! every month, and each part opened costs about a millisecond whether or not it holds a
//! match. A lower bound on `time` prunes whole partitions before any part is opened, so a
//! page that finds its rows in the newest day reads one month's parts, however many months
//! are stored.
//!
//! Exactness: every row inside the window sorts before every row outside it, so when the
//! window yields a full page (or a count at the cap) that page is the unbounded query's
//! page. A short answer proves nothing and the next, wider window is tried, ending with no
//! bound at all.
//!
//! The window ends at its anchor: the newest stored time (a metadata read, the table's
//! min/max projection), or earlier when the page's cursor or the filter's `date_to` says so.

use crate::lookup::LookupKey;
use crate::resolve::ResolvedFilter;
use crate::sql::{Column, Conditions, ParamValue, SqlBuilder, Window};

const DAY_SECONDS: u64 = 86_400;

/// The windows a page or count tries, narrowest first, before reading without a bound.
///
/// Each step is 8 times the last: a filter that matches a few events a day (one busy
/// workspace) is found in the second or third; a rare one (one request) pays three short,
/// pruned reads before the unbounded one.
pub const WINDOWS: [Window; 3] = [
    Window {
        seconds: DAY_SECONDS,
    },
    Window {
        seconds: 8 * DAY_SECONDS,
    },
    Window {
        seconds: 64 * DAY_SECONDS,
    },
];

/// The windows worth trying for `filter`: none when the filter's own dates span no more
/// than a window, since its range already bounds the read.
pub fn windows_for(filter: &ResolvedFilter) -> &'static [Window] {
    let Some((from, to)) = filter.date_from.zip(filter.date_to) else {
        return &WINDOWS;
    };
    let days = u64::try_from((to - from).whole_days() + 1).unwrap_or(0);
    let keep = WINDOWS
        .iter()
        .take_while(|window| window.seconds < days.saturating_mul(DAY_SECONDS))
        .count();
    &WINDOWS[..keep]
}

/// The windows a page of `filter` tries on the table before the unbounded read.
pub fn page_windows(filter: &ResolvedFilter) -> &'static [Window] {
    windows_of(filter, |point| point.page)
}

/// The windows a capped count of `filter` tries on the table before the unbounded read.
pub fn count_windows(filter: &ResolvedFilter) -> &'static [Window] {
    windows_of(filter, |point| point.count)
}

/// [`windows_for`] `filter`, cut for a point filter to as many as `allowed` picks out of its
/// key's [`PointWindows`].
fn windows_of(filter: &ResolvedFilter, allowed: fn(PointWindows) -> usize) -> &'static [Window] {
    let windows = windows_for(filter);
    match LookupKey::route(filter) {
        Some((key, ..)) => &windows[..allowed(point_windows(key)).min(windows.len())],
        None => windows,
    }
}

/// How many windows a point filter's page and count try on the table before the lookup
/// table answers them unbounded.
struct PointWindows {
    page: usize,
    count: usize,
}

/// A point filter's unbounded read goes to the lookup table, whose cost hardly depends on
/// the value (a range per part, then the page's rows fetched one by one from wherever they
/// lie); a window on the table is cheap when the value's newest events fill it and wasted
/// when they do not. Which holds follows from what the key names, so each key has its
/// windows. On the bench's 10M events over a year (67 parts), engine-side:
///
/// | key | page: lookup / table, newest day | capped count: lookup / table, newest day |
/// |---|---|---|
/// | an organization (1.9M events) | 145 / 17 ms | 121 / 13 ms |
/// | a busy user (49k events) | 82 / 22 ms | 75 ms / short |
/// | a workspace (642 events) | 164 ms / short | 78 ms / short |
/// | a request (one event) | 26 ms / short | 8 ms / short |
///
/// A short window costs a read of the newest day (20-40 ms) for nothing. So an organization
/// tries the day and the week for both (a small one falls through to the lookup in two short
/// reads), a user only the day for the page (the count's cap is out of a day's reach), and a
/// resource, target or request none.
fn point_windows(key: LookupKey) -> PointWindows {
    match key {
        LookupKey::OrganizationId => PointWindows { page: 2, count: 2 },
        LookupKey::Username | LookupKey::UserId | LookupKey::Email => {
            PointWindows { page: 1, count: 0 }
        }
        LookupKey::RequestId | LookupKey::ResourceId | LookupKey::ResourceTarget => {
            PointWindows { page: 0, count: 0 }
        }
    }
}

impl SqlBuilder {
    /// The window's lower bound as SQL: its anchor (the newest stored time, or the cursor's
    /// time, or the end of `date_to`, whichever is earliest) minus its length.
    pub(crate) fn window_bound(
        &self,
        conditions: &mut Conditions,
        filter: &ResolvedFilter,
        cursor_time: Option<String>,
        window: Window,
    ) -> String {
        let time = Column::Time.name();
        let mut anchors = vec![format!(
            "(SELECT max({time}) FROM {table})",
            table = self.qualified_table
        )];
        anchors.extend(cursor_time);
        if filter.date_to.is_some() {
            anchors.extend(conditions.placeholder_of("date_to"));
        }
        let seconds = conditions.bind("window_seconds", ParamValue::UInt64(window.seconds));
        let anchor = if anchors.len() == 1 {
            anchors.remove(0)
        } else {
            format!("least({})", anchors.join(", "))
        };
        format!("{anchor} - toIntervalSecond({seconds})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::resolved;
    use crate::{Cursor, Page};
    use uuid::Uuid;

    const FIRST_PAGE: Page = Page::Offset {
        limit: 25,
        offset: 0,
    };

    #[test]
    fn a_window_bounds_the_keys_and_the_rows_read() {
        let (builder, page) = (SqlBuilder::try_new("db", "t").unwrap(), FIRST_PAGE);
        let query = builder.page_within(&resolved("action:login"), &page, Some(WINDOWS[0]));
        let bound = "(SELECT max(time) FROM `db`.`t`) - toIntervalSecond({window_seconds:UInt64})";
        assert_eq!(query.text.matches(&format!("time >= {bound}")).count(), 2);
        assert!(
            query
                .params
                .contains(&("window_seconds".to_owned(), ParamValue::UInt64(86_400)))
        );
        // Without a window the text is the unbounded page's.
        assert_eq!(
            builder.page_within(&resolved("action:login"), &page, None),
            builder.page(&resolved("action:login"), &page)
        );
    }

    #[test]
    fn the_anchor_is_the_earliest_of_newest_cursor_and_date_to() {
        let builder = SqlBuilder::try_new("db", "t").unwrap();
        let cursor = Cursor::new(1_700_000_000_000_000, Uuid::from_u128(7));
        let page = Page::After { limit: 10, cursor };
        let filter = resolved("date_to:2024-01-31 username:alice");
        let query = builder.page_within(&filter, &page, Some(WINDOWS[1]));
        assert!(query.text.contains(
            "least((SELECT max(time) FROM `db`.`t`), {cursor_time:DateTime64(6, 'UTC')}, {date_to:DateTime64(6, 'UTC')})"
        ));
        let count = builder.count_capped_within(&filter, Some(WINDOWS[2]));
        assert!(count.text.contains(
            "time >= least((SELECT max(time) FROM `db`.`t`), {date_to:DateTime64(6, 'UTC')}) - toIntervalSecond({window_seconds:UInt64})"
        ));
    }

    #[test]
    fn point_filters_try_the_windows_their_key_fills() {
        let resource = resolved("resource_id:00000000-0000-0000-0000-000000000001");
        assert!(page_windows(&resource).is_empty());
        assert!(count_windows(&resource).is_empty());
        let user = resolved("username:alice");
        assert_eq!(page_windows(&user), &WINDOWS[..1]);
        assert!(count_windows(&user).is_empty());
        let organization = resolved("organization:00000000-0000-0000-0000-000000000002");
        assert_eq!(page_windows(&organization), &WINDOWS[..2]);
        assert_eq!(count_windows(&organization), &WINDOWS[..2]);
        let coarse = resolved("action:login");
        assert_eq!(page_windows(&coarse), &WINDOWS);
        assert_eq!(count_windows(&coarse), &WINDOWS);
        let one_day = resolved("username:alice date_from:2024-01-01 date_to:2024-01-01");
        assert!(page_windows(&one_day).is_empty());
    }

    #[test]
    fn a_windowed_point_filter_reads_the_table_and_an_unbounded_one_the_lookup() {
        let (builder, page) = (SqlBuilder::try_new("db", "t").unwrap(), FIRST_PAGE);
        let user = resolved("username:alice action:login");
        let windowed = builder.page_within(&user, &page, Some(WINDOWS[0]));
        assert!(!windowed.text.contains("t_lookup"), "{}", windowed.text);
        assert!(
            windowed.text.contains("lower(user_username) = "),
            "{}",
            windowed.text
        );
        assert!(windowed.text.contains("action = "), "{}", windowed.text);
        let count = builder.count_capped_within(&user, Some(WINDOWS[0]));
        assert!(!count.text.contains("t_lookup"), "{}", count.text);
        assert!(
            builder
                .page(&user, &page)
                .text
                .contains("FROM `db`.`t_lookup`")
        );
        assert!(
            builder
                .count_capped(&user)
                .text
                .contains("FROM `db`.`t_lookup`")
        );
    }

    #[test]
    fn short_date_ranges_skip_the_windows_they_fit_in() {
        assert_eq!(windows_for(&resolved("action:login")), &WINDOWS);
        assert_eq!(windows_for(&resolved("date_from:2024-01-01")), &WINDOWS);
        assert!(windows_for(&resolved("date_from:2024-01-01 date_to:2024-01-01")).is_empty());
        assert_eq!(
            windows_for(&resolved("date_from:2024-01-01 date_to:2024-01-30")),
            &WINDOWS[..2]
        );
        assert_eq!(
            windows_for(&resolved("date_from:2024-01-01 date_to:2024-12-31")),
            &WINDOWS
        );
    }
}
