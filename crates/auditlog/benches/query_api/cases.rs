//! The bench's filters: Coder's presets, point filters whose values are read from the data,
//! date ranges and deep pages, each as our API path and as Coder's query parameters; and the
//! completion prefixes.
//!
//! ```text
//!  generated data ──pick (ordered queries)──► values ──filter_case──► Case { path, chart, coder }
//! ```

use auditlog_testkit::{HttpClient, percent_encode};
use time::macros::date;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::coder::CoderFilter;
use crate::{DEEP_PAGE, PAGE_LIMIT, Server, fetch};

/// One query of the benchmark: our API path and the same filter as Coder's parameters.
pub struct Case {
    pub label: String,
    pub path: String,
    /// The chart's request for the same filter (deep pages share the empty filter's).
    pub chart: Option<String>,
    pub coder: CoderFilter,
    /// Coder has no index to narrow it (rare values, build reasons, long ranges).
    pub scan_bound: bool,
}

/// Our filter text and Coder's parameters for the same `key:value` pairs. Coder lowercases
/// the whole query, so its values are lowercased here too.
fn filter_case(label: &str, pairs: &[(&str, String)], scan_bound: bool) -> Case {
    let mut coder = CoderFilter::default();
    let mut terms = Vec::new();
    for (key, value) in pairs {
        terms.push(format!("{key}:\"{value}\""));
        let value = value.to_lowercase();
        let uuid = || Uuid::parse_str(&value).unwrap_or_default();
        let day = || {
            Date::parse(
                &value,
                time::macros::format_description!("[year]-[month]-[day]"),
            )
            .map(|day| day.midnight().assume_utc())
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        };
        match *key {
            "resource_type" => coder.resource_type = value,
            "action" => coder.action = value,
            "build_reason" => coder.build_reason = value,
            "resource_id" => coder.resource_id = uuid(),
            "request_id" => coder.request_id = uuid(),
            "organization" => coder.organization_id = uuid(),
            "resource_target" => coder.resource_target = value,
            "username" => coder.username = value,
            "email" => coder.email = value,
            "date_from" => coder.date_from = day(),
            // Coder's date_to: the day's 23:59:59.
            "date_to" => coder.date_to = day() + time::Duration::seconds(86_399),
            other => unreachable!("no such filter key {other}"),
        }
    }
    let q = terms.join(" ");
    Case {
        label: label.to_owned(),
        path: format!("/api/v2/audit?limit={PAGE_LIMIT}&q={}", percent_encode(&q)),
        chart: Some(format!("/api/v2/audit/histogram?q={}", percent_encode(&q))),
        coder,
        scan_bound,
    }
}

/// A value read from the data by an ordered (so deterministic) query.
async fn pick(client: &clickhouse::Client, what: &str, sql: &str) -> Result<String, String> {
    client
        .query(sql)
        .fetch_one::<String>()
        .await
        .map_err(|error| format!("pick {what} from the data: {error}"))
}

/// The benchmark's queries, with values drawn from the (deterministic) data.
pub async fn cases(
    client: &clickhouse::Client,
    http: &HttpClient,
    server: &Server,
) -> Result<(Vec<Case>, Vec<Completion>), String> {
    let pairs = |items: &[(&'static str, &str)]| -> Vec<(&'static str, String)> {
        items
            .iter()
            .map(|(key, value)| (*key, (*value).to_owned()))
            .collect()
    };
    // Coder's audit page offers these five presets (site/src/pages/AuditPage/AuditFilter.tsx).
    let mut cases = vec![
        filter_case(
            "preset: created workspaces",
            &pairs(&[("resource_type", "workspace"), ("action", "create")]),
            false,
        ),
        filter_case(
            "preset: added templates",
            &pairs(&[("resource_type", "template"), ("action", "create")]),
            false,
        ),
        filter_case(
            "preset: deleted users",
            &pairs(&[("resource_type", "user"), ("action", "delete")]),
            false,
        ),
        filter_case(
            "preset: builds by users",
            &pairs(&[
                ("resource_type", "workspace_build"),
                ("action", "start"),
                ("build_reason", "initiator"),
            ]),
            true,
        ),
        filter_case(
            "preset: user logins",
            &pairs(&[("resource_type", "api_key"), ("action", "login")]),
            false,
        ),
        filter_case("(empty filter)", &[], false),
    ];
    // A busy user, another one's email, a workspace with history: typical point filters.
    let username = pick(
        client,
        "username",
        "SELECT user_username FROM audit_logs WHERE user_username != '' \
         GROUP BY user_username ORDER BY count() DESC, user_username LIMIT 1 OFFSET 10",
    )
    .await?;
    let email = pick(
        client,
        "email",
        "SELECT user_email FROM audit_logs WHERE user_email != '' AND user_email = lower(user_email) \
         GROUP BY user_email ORDER BY count() DESC, user_email LIMIT 1 OFFSET 20",
    )
    .await?;
    let resource_id = pick(
        client,
        "resource_id",
        "SELECT toString(resource_id) FROM audit_logs WHERE resource_type = 'workspace' \
         GROUP BY resource_id ORDER BY count() DESC, resource_id LIMIT 1 OFFSET 5",
    )
    .await?;
    let request_id = pick(
        client,
        "request_id",
        "SELECT toString(request_id) FROM audit_logs WHERE time >= '2025-11-15 00:00:00' \
         ORDER BY time, id LIMIT 1",
    )
    .await?;
    // Rare: the least frequent target (the generator's names repeat, so a few hundred rows
    // at 10M), with no index on it in Coder's schema.
    let resource_target = pick(
        client,
        "resource_target",
        "SELECT resource_target FROM audit_logs \
         WHERE resource_target != '' AND resource_target = lower(resource_target) \
         AND position(resource_target, '\"') = 0 \
         GROUP BY resource_target ORDER BY count(), resource_target LIMIT 1",
    )
    .await?;
    let organization = pick(
        client,
        "organization",
        "SELECT toString(organization_id) FROM audit_logs WHERE organization_id != toUUID('00000000-0000-0000-0000-000000000000') \
         GROUP BY organization_id ORDER BY count() DESC, organization_id LIMIT 1 OFFSET 1",
    )
    .await?;
    let one_day = (date!(2025 - 12 - 10), date!(2025 - 12 - 10));
    let thirty_days = (date!(2025 - 11 - 01), date!(2025 - 11 - 30));
    let day_text = |day: Date| day.to_string();
    cases.extend([
        filter_case(
            "username (busy user)",
            &[("username", username.clone())],
            false,
        ),
        filter_case("email", &[("email", email)], false),
        filter_case(
            "resource_id (a workspace)",
            &[("resource_id", resource_id)],
            false,
        ),
        filter_case("request_id", &[("request_id", request_id)], true),
        filter_case(
            "resource_target (rare)",
            &[("resource_target", resource_target)],
            true,
        ),
        filter_case("organization", &[("organization", organization)], false),
        filter_case(
            "one day",
            &[
                ("date_from", day_text(one_day.0)),
                ("date_to", day_text(one_day.1)),
            ],
            false,
        ),
        filter_case(
            "30 days + build_reason:autostop",
            &[
                ("date_from", day_text(thirty_days.0)),
                ("date_to", day_text(thirty_days.1)),
                ("build_reason", "autostop".to_owned()),
            ],
            true,
        ),
    ]);
    let deep_offset = (DEEP_PAGE - 1) * PAGE_LIMIT;
    let mut by_offset = filter_case(
        &format!("page {DEEP_PAGE} by offset ({deep_offset})"),
        &[],
        false,
    );
    by_offset.path = format!("/api/v2/audit?limit={PAGE_LIMIT}&offset={deep_offset}");
    by_offset.chart = None;
    by_offset.coder.offset = deep_offset as i32;
    // The cursor of page 199's last row starts page 200; Coder has only the offset.
    let previous = format!(
        "/api/v2/audit?limit={PAGE_LIMIT}&offset={}",
        deep_offset - PAGE_LIMIT
    );
    let cursor = fetch(http, server.port, &previous)
        .await?
        .headers
        .get("x-audit-next-cursor")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .ok_or("page 199 came without a cursor")?;
    let mut by_cursor = filter_case(
        &format!("page {DEEP_PAGE} by cursor (Coder: offset)"),
        &[],
        false,
    );
    by_cursor.path = format!("/api/v2/audit?limit={PAGE_LIMIT}&after={cursor}");
    by_cursor.chart = None;
    by_cursor.coder = by_offset.coder.clone();
    cases.push(by_offset);
    cases.push(by_cursor);
    Ok((cases, completions(&username)))
}

/// A completion request: `username:` and what the auditor has typed so far.
pub struct Completion {
    pub label: String,
    pub path: String,
}

/// The username completions an auditor types through: the issue's `ru`, one letter, the
/// first three of a busy user's name, and a prefix nobody has (which reads all history).
fn completions(busy_username: &str) -> Vec<Completion> {
    let three: String = busy_username.chars().take(3).collect();
    ["ru", "a", three.as_str(), "zzqx"]
        .into_iter()
        .map(|prefix| Completion {
            label: format!("username:{prefix}"),
            path: format!(
                "/api/v2/audit/suggest?key=username&prefix={}",
                percent_encode(prefix)
            ),
        })
        .collect()
}
