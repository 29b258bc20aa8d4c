//! The analysts' cookbook (`docs/analysts.md`) cannot rot: every SQL block of the page runs
//! against the real engine on generated events (plus duplicate copies, which the view and
//! the rollups must not count), and its rows must equal an independent answer to the same
//! question computed here, in plain Rust, over the generated events.
//!
//! A block is marked `<!-- cookbook: NAME -->` on the line before its ```sql fence; NAME
//! picks the Rust answer below. A block without an answer, or an answer without a block,
//! fails the test.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use auditlog_event::{Action, AuditEvent, ResourceType};
use serde_json::{Value, json};
use time::macros::{datetime, format_description};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::dataset::dataset;
use crate::query_support::{load_events, migrated_database};

const NUM_GENERATED_EVENTS: u64 = 50_000;
/// The cookbook's period: one week inside the generated two. Its end is the hand-made
/// events' day, so events on either side of the boundary microsecond exist.
const FROM: OffsetDateTime = datetime!(2025-03-03 00:00 UTC);
const TO: OffsetDateTime = datetime!(2025-03-10 00:00 UTC);
/// Generated failures rarely repeat an address (the last octet is random), so any will do.
const MIN_FAILURES: usize = 1;
/// The issue asks for at least this many real questions.
const MIN_QUERIES: usize = 12;
/// The questions `expected_rows` answers: exactly the page's blocks.
const ANSWERED: &[&str] = &[
    "deleted_workspaces",
    "failed_logins_by_ip",
    "failure_spikes",
    "failing_actors",
    "new_ips_of_actor",
    "secret_changes",
    "role_changes",
    "automatic_versus_people",
    "automatic_actors",
    "busiest_templates",
    "organization_activity",
    "top_actions",
    "build_reasons",
    "most_active_people",
    "request_events",
    "workspace_changes",
];

/// One SQL block of the page.
#[derive(Debug)]
struct CookbookQuery {
    name: String,
    sql: String,
}

fn cookbook_queries() -> Vec<CookbookQuery> {
    let path = auditlog_testkit::repo_root().join("docs/analysts.md");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
    let mut queries = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line
            .trim()
            .strip_prefix("<!-- cookbook:")
            .and_then(|rest| rest.strip_suffix("-->"))
        else {
            continue;
        };
        assert_eq!(
            lines.next().map(str::trim),
            Some("```sql"),
            "the marker of {name} is followed by a ```sql block"
        );
        let sql: Vec<&str> = lines.by_ref().take_while(|line| *line != "```").collect();
        queries.push(CookbookQuery {
            name: name.trim().to_owned(),
            sql: sql.join("\n"),
        });
    }
    queries
}

/// The values the test binds to the queries' `{name:Type}` parameters.
#[derive(Debug)]
struct Params {
    user_id: Uuid,
    organization: String,
    request_id: Uuid,
    resource_id: Uuid,
}

impl Params {
    fn pick(events: &[AuditEvent], organization: &str) -> Self {
        let mut activity: BTreeMap<Uuid, usize> = BTreeMap::new();
        for event in events.iter().filter(|event| event.user.is_some()) {
            *activity.entry(event.user_id()).or_default() += 1;
        }
        let busiest_user = activity
            .into_iter()
            .max_by_key(|(_, count)| *count)
            .map(|(id, _)| id)
            .expect("a user");
        let mut changes: BTreeMap<Uuid, usize> = BTreeMap::new();
        for event in events
            .iter()
            .filter(|event| event.resource_type == ResourceType::Workspace)
        {
            *changes.entry(event.resource_id).or_default() += event.diff.len();
        }
        let most_changed_workspace = changes
            .into_iter()
            .max_by_key(|(_, count)| *count)
            .map(|(id, _)| id)
            .expect("a workspace");
        Params {
            user_id: busiest_user,
            organization: organization.to_owned(),
            request_id: events[events.len() / 3].request_id,
            resource_id: most_changed_workspace,
        }
    }

    /// Binds the parameters `sql` names, and only those.
    fn bind(&self, sql: &str, query: clickhouse::query::Query) -> clickhouse::query::Query {
        let values: [(&str, Value); 9] = [
            ("from", json!(datetime64(FROM))),
            ("to", json!(datetime64(TO))),
            ("from_day", json!(FROM.date().to_string())),
            ("to_day", json!(TO.date().to_string())),
            ("min_failures", json!(MIN_FAILURES)),
            ("user_id", json!(self.user_id)),
            ("organization", json!(self.organization)),
            ("request_id", json!(self.request_id)),
            ("resource_id", json!(self.resource_id)),
        ];
        let mut query = query;
        for (name, value) in values {
            if sql.contains(&format!("{{{name}:")) {
                query = match value {
                    Value::String(text) => query.param(name, text),
                    other => query.param(name, other.as_u64().expect("a count")),
                };
            }
        }
        query
    }
}

/// ClickHouse's text of a DateTime64(6).
fn datetime64(time: OffsetDateTime) -> String {
    time.format(format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:6]"
    ))
    .expect("formats")
}

/// ClickHouse's text of a DateTime (whole seconds).
fn datetime(time: OffsetDateTime) -> String {
    time.format(format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second]"
    ))
    .expect("formats")
}

fn start_of_hour(time: OffsetDateTime) -> OffsetDateTime {
    time.replace_minute(0)
        .and_then(|time| time.replace_second(0))
        .and_then(|time| time.replace_nanosecond(0))
        .expect("valid")
}

/// ClickHouse orders UUIDs by their second half first.
fn uuid_order(id: Uuid) -> (u64, u64) {
    let (high, low) = id.as_u64_pair();
    (low, high)
}

/// A JSON value as the view's maps show it: a string unquoted, null empty, the rest as JSON.
fn as_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn username(event: &AuditEvent) -> &str {
    event
        .user
        .as_ref()
        .map_or("", |user| user.username.as_str())
}

fn organization_name(event: &AuditEvent) -> &str {
    event
        .organization
        .as_ref()
        .map_or("", |organization| organization.name.as_str())
}

fn ip(event: &AuditEvent) -> String {
    event.ip.map(|ip| ip.to_string()).unwrap_or_default()
}

fn failed(event: &AuditEvent) -> bool {
    event.status_code >= 400
}

fn automatic_actor(event: &AuditEvent) -> String {
    match event.additional_fields.get("automatic_actor") {
        Some(Value::String(actor)) => actor.clone(),
        _ => String::new(),
    }
}

fn is_automatic(event: &AuditEvent) -> bool {
    event.user.is_none() || event.additional_fields.contains_key("automatic_actor")
}

fn in_period(event: &AuditEvent) -> bool {
    event.time >= FROM && event.time < TO
}

fn in_days(day: Date) -> bool {
    day >= FROM.date() && day < TO.date()
}

/// Events ordered as `ORDER BY time, id`.
fn by_time<'e>(events: impl Iterator<Item = &'e AuditEvent>) -> Vec<&'e AuditEvent> {
    let mut selected: Vec<&AuditEvent> = events.collect();
    selected.sort_by_key(|event| (event.time, uuid_order(event.id)));
    selected
}

/// Groups in `ORDER BY count DESC, key` order: the map gives the keys in order, and a stable
/// sort by count keeps it among equal counts.
fn most_first<K: Ord, V>(groups: BTreeMap<K, V>, count: impl Fn(&V) -> usize) -> Vec<(K, V)> {
    let mut rows: Vec<(K, V)> = groups.into_iter().collect();
    rows.sort_by_key(|(_, value)| Reverse(count(value)));
    rows
}

/// Rows in `ORDER BY count DESC, name` order.
fn ranked(mut rows: Vec<(usize, String, Value)>) -> Vec<Value> {
    rows.sort_by(|left, right| (Reverse(left.0), &left.1).cmp(&(Reverse(right.0), &right.1)));
    rows.into_iter().map(|(_, _, row)| row).collect()
}

fn count_distinct<T: Ord>(values: impl Iterator<Item = T>) -> usize {
    values.collect::<BTreeSet<T>>().len()
}

/// The independent answer to the question `name` asks; `None` for an unknown name.
fn expected_rows(name: &str, events: &[AuditEvent], params: &Params) -> Option<Vec<Value>> {
    let period = || events.iter().filter(|event| in_period(event));
    let rows = match name {
        "deleted_workspaces" => by_time(period().filter(|event| {
            event.resource_type == ResourceType::Workspace
                && event.action == Action::Delete
                && !failed(event)
        }))
        .into_iter()
        .map(|event| {
            json!({
                "time": datetime64(event.time),
                "username": username(event),
                "organization_name": organization_name(event),
                "workspace": event.resource_target,
                "id": event.id,
            })
        })
        .collect(),
        "failed_logins_by_ip" => {
            let mut by_ip: BTreeMap<String, Vec<&AuditEvent>> = BTreeMap::new();
            for event in period().filter(|event| {
                event.resource_type == ResourceType::ApiKey
                    && event.action == Action::Login
                    && failed(event)
            }) {
                by_ip.entry(ip(event)).or_default().push(event);
            }
            let rows: Vec<(usize, String, Value)> = by_ip
                .into_iter()
                .filter(|(_, failures)| failures.len() >= MIN_FAILURES)
                .map(|(ip, failures)| {
                    let row = json!({
                        "ip": ip,
                        "failures": failures.len(),
                        "accounts": count_distinct(failures.iter().map(|event| event.user_id())),
                        "first_failure": datetime64(failures.iter().map(|event| event.time).min().unwrap()),
                        "last_failure": datetime64(failures.iter().map(|event| event.time).max().unwrap()),
                    });
                    (failures.len(), ip, row)
                })
                .collect();
            ranked(rows)
        }
        "failure_spikes" => {
            let mut by_hour: BTreeMap<OffsetDateTime, Vec<&AuditEvent>> = BTreeMap::new();
            for event in period().filter(|event| failed(event)) {
                by_hour
                    .entry(start_of_hour(event.time))
                    .or_default()
                    .push(event);
            }
            let mut rows: Vec<(usize, OffsetDateTime, Value)> = by_hour
                .into_iter()
                .map(|(hour, failures)| {
                    let row = json!({
                        "hour": datetime(hour),
                        "failures": failures.len(),
                        "actors": count_distinct(failures.iter().map(|event| event.user_id())),
                        "ips": count_distinct(failures.iter().map(|event| ip(event))),
                    });
                    (failures.len(), hour, row)
                })
                .collect();
            rows.sort_by_key(|(failures, hour, _)| (Reverse(*failures), *hour));
            rows.into_iter().take(10).map(|(_, _, row)| row).collect()
        }
        "failing_actors" => {
            let mut by_user: BTreeMap<Uuid, Vec<&AuditEvent>> = BTreeMap::new();
            for event in period().filter(|event| failed(event)) {
                by_user.entry(event.user_id()).or_default().push(event);
            }
            let rows: Vec<(usize, String, Value)> = by_user
                .into_iter()
                .map(|(user_id, failures)| {
                    let name = username(failures[0]).to_owned();
                    let codes: BTreeSet<i32> =
                        failures.iter().map(|event| event.status_code).collect();
                    let row = json!({
                        "user_id": user_id,
                        "username": name,
                        "failures": failures.len(),
                        "ips": count_distinct(failures.iter().map(|event| ip(event))),
                        "status_codes": codes,
                    });
                    (failures.len(), name, row)
                })
                .collect();
            ranked(rows).into_iter().take(10).collect()
        }
        "new_ips_of_actor" => {
            let mut by_ip: BTreeMap<String, Vec<&AuditEvent>> = BTreeMap::new();
            for event in events
                .iter()
                .filter(|event| event.user_id() == params.user_id && event.ip.is_some())
            {
                by_ip.entry(ip(event)).or_default().push(event);
            }
            let mut rows: Vec<(OffsetDateTime, String, Value)> = by_ip
                .into_iter()
                .filter_map(|(ip, seen)| {
                    let first = seen.iter().map(|event| event.time).min().unwrap();
                    let last = seen.iter().map(|event| event.time).max().unwrap();
                    (first >= FROM && first < TO).then(|| {
                        let row = json!({
                            "ip": ip,
                            "first_seen": datetime64(first),
                            "last_seen": datetime64(last),
                        });
                        (first, ip, row)
                    })
                })
                .collect();
            rows.sort_by(|left, right| (left.0, &left.1).cmp(&(right.0, &right.1)));
            rows.into_iter().map(|(_, _, row)| row).collect()
        }
        "secret_changes" => {
            let mut groups: BTreeMap<(String, String), (usize, BTreeSet<Uuid>)> = BTreeMap::new();
            for event in period() {
                for (field, _) in event.diff.iter().filter(|(_, entry)| entry.secret) {
                    let group = groups
                        .entry((event.resource_type.as_str().to_owned(), field.clone()))
                        .or_default();
                    group.0 += 1;
                    group.1.insert(event.user_id());
                }
            }
            most_first(groups, |group| group.0)
                .into_iter()
                .map(|((resource_type, field), (changes, actors))| {
                    json!({
                        "resource_type": resource_type,
                        "field": field,
                        "changes": changes,
                        "actors": actors.len(),
                    })
                })
                .collect()
        }
        "role_changes" => by_time(period())
            .into_iter()
            .flat_map(|event| {
                event
                    .diff
                    .iter()
                    .filter(|(field, _)| *field == "rbac_roles" || *field == "roles")
                    .map(move |(field, entry)| {
                        json!({
                            "time": datetime64(event.time),
                            "changed_by": username(event),
                            "resource_type": event.resource_type.as_str(),
                            "resource_target": event.resource_target,
                            "field": field,
                            "old_roles": as_text(&entry.old),
                            "new_roles": as_text(&entry.new),
                            "id": event.id,
                        })
                    })
            })
            .collect(),
        "automatic_versus_people" => {
            let mut by_day: BTreeMap<Date, (usize, usize)> = BTreeMap::new();
            for event in period() {
                let day = by_day.entry(event.time.date()).or_default();
                if is_automatic(event) {
                    day.0 += 1;
                } else {
                    day.1 += 1;
                }
            }
            by_day
                .into_iter()
                .map(|(date, (automatic, by_people))| {
                    json!({"date": date.to_string(), "automatic": automatic, "by_people": by_people})
                })
                .collect()
        }
        "automatic_actors" => {
            let mut groups: BTreeMap<(String, String, String, String), usize> = BTreeMap::new();
            for event in period().filter(|event| !automatic_actor(event).is_empty()) {
                let subsystem = event
                    .additional_fields
                    .get("automatic_subsystem")
                    .map(as_text)
                    .unwrap_or_default();
                *groups
                    .entry((
                        automatic_actor(event),
                        subsystem,
                        event.resource_type.as_str().to_owned(),
                        event.action.as_str().to_owned(),
                    ))
                    .or_default() += 1;
            }
            most_first(groups, |count| *count)
                .into_iter()
                .map(|((actor, subsystem, resource_type, action), count)| {
                    json!({
                        "automatic_actor": actor,
                        "subsystem": subsystem,
                        "resource_type": resource_type,
                        "action": action,
                        "events": count,
                    })
                })
                .collect()
        }
        "busiest_templates" => {
            let mut groups: BTreeMap<(String, String), (usize, BTreeSet<Uuid>)> = BTreeMap::new();
            for event in period().filter(|event| event.resource_type == ResourceType::Template) {
                let group = groups
                    .entry((
                        event.resource_target.clone(),
                        organization_name(event).to_owned(),
                    ))
                    .or_default();
                group.0 += 1;
                group.1.insert(event.user_id());
            }
            most_first(groups, |group| group.0)
                .into_iter()
                .take(10)
                .map(|((template, organization), (changes, editors))| {
                    json!({
                        "template": template,
                        "organization_name": organization,
                        "changes": changes,
                        "editors": editors.len(),
                    })
                })
                .collect()
        }
        "organization_activity" => {
            let mut by_day: BTreeMap<Date, (usize, usize)> = BTreeMap::new();
            for event in events.iter().filter(|event| {
                in_days(event.time.date()) && organization_name(event) == params.organization
            }) {
                let day = by_day.entry(event.time.date()).or_default();
                day.0 += 1;
                day.1 += usize::from(failed(event));
            }
            by_day
                .into_iter()
                .map(|(day, (count, failures))| {
                    json!({"day": day.to_string(), "all_events": count, "failures": failures})
                })
                .collect()
        }
        "top_actions" => {
            let mut groups: BTreeMap<(String, String, String), usize> = BTreeMap::new();
            for event in events.iter().filter(|event| in_days(event.time.date())) {
                *groups
                    .entry((
                        organization_name(event).to_owned(),
                        event.resource_type.as_str().to_owned(),
                        event.action.as_str().to_owned(),
                    ))
                    .or_default() += 1;
            }
            most_first(groups, |count| *count)
                .into_iter()
                .take(15)
                .map(|((organization, resource_type, action), count)| {
                    json!({
                        "organization_name": organization,
                        "resource_type": resource_type,
                        "action": action,
                        "events": count,
                    })
                })
                .collect()
        }
        "build_reasons" => {
            let mut groups: BTreeMap<(String, String), (usize, usize)> = BTreeMap::new();
            for event in
                period().filter(|event| event.resource_type == ResourceType::WorkspaceBuild)
            {
                let reason = event
                    .build_reason
                    .as_ref()
                    .map_or("", |reason| reason.as_str())
                    .to_owned();
                let group = groups
                    .entry((reason, event.action.as_str().to_owned()))
                    .or_default();
                group.0 += 1;
                group.1 += usize::from(failed(event));
            }
            most_first(groups, |group| group.0)
                .into_iter()
                .map(|((reason, action), (builds, failures))| {
                    json!({
                        "build_reason": reason,
                        "action": action,
                        "builds": builds,
                        "failed_builds": failures,
                    })
                })
                .collect()
        }
        "most_active_people" => {
            let mut by_user: BTreeMap<Uuid, Vec<&AuditEvent>> = BTreeMap::new();
            for event in period().filter(|event| !is_automatic(event)) {
                by_user.entry(event.user_id()).or_default().push(event);
            }
            let rows: Vec<(usize, String, Value)> = by_user
                .into_values()
                .map(|acted| {
                    let name = username(acted[0]).to_owned();
                    let row = json!({
                        "username": name,
                        "events": acted.len(),
                        "resource_types": count_distinct(acted.iter().map(|event| event.resource_type.as_str())),
                        "ips": count_distinct(acted.iter().map(|event| ip(event))),
                    });
                    (acted.len(), name, row)
                })
                .collect();
            ranked(rows).into_iter().take(10).collect()
        }
        "request_events" => by_time(
            events
                .iter()
                .filter(|event| event.request_id == params.request_id),
        )
        .into_iter()
        .map(|event| {
            json!({
                "time": datetime64(event.time),
                "id": event.id,
                "username": username(event),
                "resource_type": event.resource_type.as_str(),
                "action": event.action.as_str(),
                "resource_target": event.resource_target,
                "status_code": event.status_code,
            })
        })
        .collect(),
        "workspace_changes" => by_time(events.iter().filter(|event| {
            event.resource_type == ResourceType::Workspace
                && event.resource_id == params.resource_id
        }))
        .into_iter()
        .flat_map(|event| {
            event.diff.iter().map(move |(field, entry)| {
                json!({
                    "time": datetime64(event.time),
                    "username": username(event),
                    "field": field,
                    "old": as_text(&entry.old),
                    "new": as_text(&entry.new),
                    "id": event.id,
                })
            })
        })
        .collect(),
        _ => return None,
    };
    Some(rows)
}

async fn run_query(
    client: &clickhouse::Client,
    query: &CookbookQuery,
    params: &Params,
) -> Vec<Value> {
    let mut cursor = params
        .bind(&query.sql, client.query(&query.sql))
        .fetch_bytes("JSONEachRow")
        .unwrap_or_else(|error| panic!("{}: {error}", query.name));
    let body = cursor
        .collect()
        .await
        .unwrap_or_else(|error| panic!("{}: {error}\n{}", query.name, query.sql));
    String::from_utf8(body.to_vec())
        .expect("utf-8")
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_cookbook_query_answers_its_question() {
    let queries = cookbook_queries();
    assert!(
        queries.len() >= MIN_QUERIES,
        "docs/analysts.md has {} cookbook queries",
        queries.len()
    );
    let names: BTreeSet<&str> = queries.iter().map(|query| query.name.as_str()).collect();
    assert_eq!(names.len(), queries.len(), "cookbook names are unique");
    assert_eq!(
        names,
        ANSWERED.iter().copied().collect(),
        "the page's queries and the answers here"
    );

    let dataset = dataset(1504, NUM_GENERATED_EVENTS);
    let (client, _database) = migrated_database("cookbook").await;
    load_events(&client, &dataset.events).await;
    load_events(&client, &dataset.duplicates).await;
    // Counts as numbers, as the answers computed here have them.
    let client = client.with_setting("output_format_json_quote_64bit_integers", "0");
    let params = Params::pick(&dataset.events, &dataset.organizations[0].name);

    for query in &queries {
        let want = expected_rows(&query.name, &dataset.events, &params).unwrap_or_else(|| {
            panic!(
                "docs/analysts.md has a cookbook query {:?} that this test cannot answer",
                query.name
            )
        });
        assert!(
            !want.is_empty(),
            "{}: the generated data asks the question",
            query.name
        );
        let got = run_query(&client, query, &params).await;
        if got != want {
            let first_difference = got
                .iter()
                .zip(&want)
                .position(|(got_row, want_row)| got_row != want_row);
            panic!(
                "{}: {} rows from ClickHouse, {} expected; first difference at {first_difference:?}:\n  got  {:?}\n  want {:?}",
                query.name,
                got.len(),
                want.len(),
                first_difference.map(|index| &got[index]),
                first_difference.map(|index| &want[index]),
            );
        }
    }
}
