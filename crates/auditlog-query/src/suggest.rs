//! Values to complete a filter with: keys, enum values, and values seen in the data.
//!
//! ```text
//!  (key, prefix) ──► "" key        → the filter keys
//!                    enum key      → the enum's values            (no query)
//!                    organization  → the caller's organization names (the cached directory)
//!                    string key    → the most frequent stored values, scoped like the page
//! ```
//!
//! Seen values come from one `GROUP BY` over one column, with the caller's organization scope
//! from [`SqlBuilder`], so an `org_auditor` is never offered another organization's users or
//! targets. Duplicate rows cannot add a value. The values come from the newest weeks first
//! ([`SUGGEST_WINDOWS`]): completion runs on every keystroke, the values an auditor types are
//! mostly current ones, and a read of the newest weeks costs the same at any history. Only a
//! prefix with fewer than [`MAX_SUGGESTIONS`] recent values reads further back.

use auditlog_event::{Action, BuildReason, ResourceType};

use crate::filter::KEYS_IN_CODER_ORDER;
use crate::grammar::go_lowercase;
use crate::resolve::ResolvedFilter;
use crate::sql::{Column, ParamValue, SqlBuilder, SqlQuery, Window};
use crate::window::WINDOWS;

/// The most values one suggestion answer holds.
pub const MAX_SUGGESTIONS: u64 = 10;

/// The windows completions read, newest first, before reading all history: the last week,
/// then the last 64 days.
pub const SUGGEST_WINDOWS: [Window; 2] = [WINDOWS[1], WINDOWS[2]];

/// What a key's values are completed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuggestSource {
    /// The filter keys themselves (an empty key).
    Keys,
    /// A closed list known without a query.
    Enum(EnumKey),
    /// Organization names the caller may see.
    Organizations,
    /// Values stored in a column (`username`, `email`, `resource_target`).
    Column(SuggestColumn),
}

/// A column whose stored values are suggested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuggestColumn {
    /// `username:`
    Username,
    /// `email:`
    Email,
    /// `resource_target:`
    ResourceTarget,
}

impl SuggestColumn {
    fn column(self) -> Column {
        match self {
            SuggestColumn::Username => Column::UserUsername,
            SuggestColumn::Email => Column::UserEmail,
            SuggestColumn::ResourceTarget => Column::ResourceTarget,
        }
    }
}

impl SuggestSource {
    /// Where `key`'s values come from; `None` for a key that has nothing to suggest (dates,
    /// ids) or is not a filter key.
    pub fn for_key(key: &str) -> Option<Self> {
        match key {
            "" => Some(SuggestSource::Keys),
            "resource_type" => Some(SuggestSource::Enum(EnumKey::ResourceType)),
            "action" => Some(SuggestSource::Enum(EnumKey::Action)),
            "build_reason" => Some(SuggestSource::Enum(EnumKey::BuildReason)),
            "organization" => Some(SuggestSource::Organizations),
            "username" => Some(SuggestSource::Column(SuggestColumn::Username)),
            "email" => Some(SuggestSource::Column(SuggestColumn::Email)),
            "resource_target" => Some(SuggestSource::Column(SuggestColumn::ResourceTarget)),
            _ => None,
        }
    }
}

/// A key whose values are one of the event crate's enums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnumKey {
    /// `resource_type:`
    ResourceType,
    /// `action:`
    Action,
    /// `build_reason:`
    BuildReason,
}

impl EnumKey {
    /// The enum's wire values, in the event crate's order.
    pub fn values(self) -> Vec<&'static str> {
        match self {
            EnumKey::ResourceType => ResourceType::ALL.iter().map(ResourceType::as_str).collect(),
            EnumKey::Action => Action::ALL.iter().map(Action::as_str).collect(),
            EnumKey::BuildReason => BuildReason::ALL.iter().map(BuildReason::as_str).collect(),
        }
    }
}

/// The filter keys, in Coder's order.
pub fn filter_keys() -> &'static [&'static str] {
    &KEYS_IN_CODER_ORDER
}

/// The values of `candidates` that start with `prefix` (lowercased, as the filter is), at
/// most [`MAX_SUGGESTIONS`], in the list's order.
pub fn matching<'v>(candidates: impl IntoIterator<Item = &'v str>, prefix: &str) -> Vec<String> {
    let prefix = go_lowercase(prefix);
    candidates
        .into_iter()
        .filter(|candidate| candidate.starts_with(&prefix))
        .take(MAX_SUGGESTIONS as usize)
        .map(str::to_owned)
        .collect()
}

impl SqlBuilder {
    /// The most frequent stored values of `column` that start with `prefix`, lowercased (the
    /// filter compares them case-insensitively), in the caller's scope.
    pub fn suggest(&self, column: SuggestColumn, prefix: &str) -> SqlQuery {
        self.suggest_within(column, prefix, None)
    }

    /// [`Self::suggest`] over the `window` newest seconds only.
    pub fn suggest_within(
        &self,
        column: SuggestColumn,
        prefix: &str,
        window: Option<Window>,
    ) -> SqlQuery {
        let mut conditions = self.conditions(&ResolvedFilter::default());
        if let Some(window) = window {
            let bound =
                self.window_bound(&mut conditions, &ResolvedFilter::default(), None, window);
            conditions
                .predicates
                .push(format!("{} >= {bound}", Column::Time.name()));
        }
        let name = column.column().name();
        let prefix = conditions.bind("prefix", ParamValue::String(go_lowercase(prefix)));
        conditions
            .predicates
            .push(format!("startsWith(lower({name}), {prefix})"));
        conditions.predicates.push(format!("{name} != ''"));
        let limit = conditions.bind("limit", ParamValue::UInt64(MAX_SUGGESTIONS));
        let text = format!(
            "SELECT lower({name}) AS value\n{from}{where_clause}\nGROUP BY value\nORDER BY count() DESC, value\nLIMIT {limit}",
            from = self.table_clause(),
            where_clause = conditions.where_clause(),
        );
        conditions.into_query(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_enums_are_completed_without_a_query() {
        assert_eq!(SuggestSource::for_key(""), Some(SuggestSource::Keys));
        assert_eq!(
            SuggestSource::for_key("action"),
            Some(SuggestSource::Enum(EnumKey::Action))
        );
        assert_eq!(
            matching(EnumKey::Action.values(), "Lo"),
            ["login", "logout"]
        );
        assert_eq!(
            matching(filter_keys().iter().copied(), "res"),
            ["resource_id", "resource_target", "resource_type"]
        );
        assert_eq!(SuggestSource::for_key("date_from"), None);
        assert_eq!(SuggestSource::for_key("nope"), None);
    }

    #[test]
    fn seen_values_are_scoped_and_parameterized() {
        let builder = SqlBuilder::try_new("db", "t")
            .unwrap()
            .with_organization_scope([uuid::Uuid::from_u128(1)]);
        let query = builder.suggest(SuggestColumn::Username, "Al'");
        assert!(
            query
                .text
                .contains("organization_id IN {scope_organization_ids:Array(UUID)}")
        );
        assert!(
            query
                .text
                .contains("startsWith(lower(user_username), {prefix:String})")
        );
        assert!(!query.text.contains("Al'"));
        assert!(
            query
                .params
                .contains(&("prefix".to_owned(), ParamValue::String("al'".to_owned())))
        );
    }
}
