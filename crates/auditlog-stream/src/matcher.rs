//! A resolved filter applied to one event in memory, with the same answer as the SQL the API
//! runs for it (`auditlog-query`'s `SqlBuilder`), so a sink streams exactly the events the
//! API returns for its filter.
//!
//! The SQL's rules, each mirrored here:
//! - every condition is ANDed;
//! - `username`, `email` and `resource_target` compare `lower(column)` with the lowercased
//!   value; ClickHouse's `lower` folds ASCII only, so the stored side is ASCII-folded and the
//!   filter's side lowercased as the parser does;
//! - an absent actor is stored as an empty username and email and a nil user id, an absent
//!   organization as a nil id: those are what the columns compare;
//! - `date_from` is `time >= D 00:00:00 UTC`, `date_to` is `time < (D+1) 00:00:00 UTC` (whole
//!   days);
//! - `build_reason` keeps `workspace_build` events with that reason and `workspace` + `create`
//!   events with that reason, nothing else;
//! - enums compare by their wire text, so values this build does not know compare as stored.

use auditlog_event::{Action, AuditEvent, ResourceType};
use auditlog_query::{Actor, ResolvedFilter};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

/// Whether `event` is one of the events `filter` selects.
///
/// ```
/// use auditlog_query::{AuditFilter, Resolver};
/// use auditlog_stream::matches;
///
/// let filter = AuditFilter::parse("username:ALICE action:delete")?.resolve(&Resolver::new())?;
/// let mut event = auditlog_event::testing::sample_event();
/// event.action = auditlog_event::Action::Delete;
/// assert!(matches(&filter, &event)); // the sample's actor is "alice"
/// # Ok::<(), auditlog_query::Error>(())
/// ```
pub fn matches(filter: &ResolvedFilter, event: &AuditEvent) -> bool {
    let user = event.user.as_ref();
    let username = user.map_or("", |user| user.username.as_str());
    let email = user.map_or("", |user| user.email.as_str());
    let time_is_from = |date: Date| event.time >= midnight(date);
    let time_is_to = |date: Date| match date.next_day() {
        Some(next) => event.time < midnight(next),
        None => true,
    };
    filter
        .resource_type
        .as_ref()
        .is_none_or(|wanted| wanted.as_str() == event.resource_type.as_str())
        && filter
            .action
            .as_ref()
            .is_none_or(|wanted| wanted.as_str() == event.action.as_str())
        && filter
            .resource_id
            .is_none_or(|wanted| wanted == event.resource_id)
        && filter
            .resource_target
            .as_deref()
            .is_none_or(|wanted| equal_ignoring_case(&event.resource_target, wanted))
        && filter.actor.as_ref().is_none_or(|actor| match actor {
            Actor::Username(wanted) => equal_ignoring_case(username, wanted),
            Actor::UserId(wanted) => *wanted == event.user_id(),
        })
        && filter
            .email
            .as_deref()
            .is_none_or(|wanted| equal_ignoring_case(email, wanted))
        && filter.date_from.is_none_or(time_is_from)
        && filter.date_to.is_none_or(time_is_to)
        && filter
            .organization_id
            .is_none_or(|wanted| wanted == event.organization_id())
        && filter
            .request_id
            .is_none_or(|wanted: Uuid| wanted == event.request_id)
        && filter.build_reason.as_ref().is_none_or(|wanted| {
            let carries_reason = event.resource_type == ResourceType::WorkspaceBuild
                || (event.resource_type == ResourceType::Workspace
                    && event.action == Action::Create);
            carries_reason
                && event
                    .build_reason
                    .as_ref()
                    .is_some_and(|reason| reason.as_str() == wanted.as_str())
        })
}

fn midnight(date: Date) -> OffsetDateTime {
    date.midnight().assume_utc()
}

/// `lower(stored) = lower(wanted)` as the SQL computes it: ClickHouse's `lower` folds ASCII
/// only; the wanted value is lowercased like the parser lowercases the query.
fn equal_ignoring_case(stored: &str, wanted: &str) -> bool {
    stored.to_ascii_lowercase() == parser_lowercase(wanted)
}

/// Go's `strings.ToLower`, as the filter parser applies it to the whole query: one character
/// for one, `İ` to `i`.
fn parser_lowercase(text: &str) -> String {
    text.chars()
        .map(|character| match character {
            '\u{130}' => 'i',
            _ => {
                let mut lowered = character.to_lowercase();
                match (lowered.next(), lowered.next()) {
                    (Some(single), None) => single,
                    _ => character,
                }
            }
        })
        .collect()
}

#[cfg(test)]
#[path = "matcher_tests.rs"]
mod tests;
