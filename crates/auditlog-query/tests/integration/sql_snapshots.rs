//! Snapshots of the generated SQL: every key alone, combinations, pages, counts, and proof
//! that values never reach the SQL text.
//!
//! The expected texts were also run against ClickHouse 26.9 (chDB) with the migration's
//! table, to check that they parse, use the indexes and return the intended rows.

use std::collections::HashMap;

use auditlog_query::{
    Actor, COLUMNS, Cursor, Page, ParamValue, ResolvedFilter, Resolver, SqlBuilder, SqlQuery,
};
use time::macros::date;
use uuid::Uuid;

const ACME: Uuid = Uuid::from_u128(0x0a);
const SCOPE_OTHER: Uuid = Uuid::from_u128(0x0b);
const RESOURCE: &str = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";

fn builder() -> SqlBuilder {
    SqlBuilder::try_new("auditlog", "audit_logs").unwrap()
}

fn resolved(query: &str) -> ResolvedFilter {
    let organizations = HashMap::from([("acme".to_owned(), ACME)]);
    Resolver::new()
        .with_caller_username("Alice")
        .with_organizations(&organizations)
        .parse_and_resolve(query)
        .unwrap()
}

fn params(query: &SqlQuery) -> Vec<(&str, ParamValue)> {
    query
        .params
        .iter()
        .map(|(name, value)| (name.as_str(), value.clone()))
        .collect()
}

fn string(text: &str) -> ParamValue {
    ParamValue::String(text.to_owned())
}

/// Expected parameters: name and value, in order.
type Params = Vec<(&'static str, ParamValue)>;

const COUNT_PREFIX: &str = "SELECT uniqExact(time, id)\nFROM `auditlog`.`audit_logs`";

/// The exact count of a point filter: its key and value in the lookup table.
const LOOKUP_COUNT: &str = "SELECT uniqExact(time, id)\nFROM `auditlog`.`audit_logs_lookup`\n\
                            WHERE key = {lookup_key:String}\n  AND value = {lookup_value:String}";

fn lookup(key: &'static str, value: &str) -> Params {
    vec![("lookup_key", string(key)), ("lookup_value", string(value))]
}

/// Marks a case answered from the lookup table.
const LOOKUP: &str = "lookup";

#[test]
fn every_key_alone() {
    let cases: Vec<(&str, &str, Params)> = vec![
        ("", "", vec![]),
        (
            "resource_type:workspace",
            "\nWHERE resource_type = {resource_type:String}",
            vec![("resource_type", string("workspace"))],
        ),
        (
            "workspace_build",
            "\nWHERE resource_type = {resource_type:String}",
            vec![("resource_type", string("workspace_build"))],
        ),
        (
            "action:delete",
            "\nWHERE action = {action:String}",
            vec![("action", string("delete"))],
        ),
        (
            "resource_id:A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
            LOOKUP,
            lookup("resource_id", RESOURCE),
        ),
        (
            r#"resource_target:"My WS""#,
            LOOKUP,
            lookup("resource_target", "my ws"),
        ),
        ("username:Bob", LOOKUP, lookup("username", "bob")),
        ("username:me", LOOKUP, lookup("username", "alice")),
        (
            "email:Alice@Example.com",
            LOOKUP,
            lookup("email", "alice@example.com"),
        ),
        (
            "date_from:2026-01-01",
            "\nWHERE time >= {date_from:DateTime64(6, 'UTC')}",
            vec![(
                "date_from",
                ParamValue::DateTime64Micros(1_767_225_600_000_000),
            )],
        ),
        (
            // The whole day: strictly before the next midnight (2026-02-01 00:00:00 UTC).
            "date_to:2026-01-31",
            "\nWHERE time < {date_to:DateTime64(6, 'UTC')}",
            vec![(
                "date_to",
                ParamValue::DateTime64Micros(1_769_904_000_000_000),
            )],
        ),
        (
            "organization:acme",
            LOOKUP,
            lookup("organization_id", "00000000-0000-0000-0000-00000000000a"),
        ),
        (
            "organization:a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            LOOKUP,
            lookup("organization_id", RESOURCE),
        ),
        (
            "request_id:a0eebc999c0b4ef8bb6d6bb9bd380a11",
            LOOKUP,
            lookup("request_id", RESOURCE),
        ),
        (
            "build_reason:autostart",
            "\nWHERE build_reason = {build_reason:String}\n  AND (resource_type = 'workspace_build' OR (resource_type = 'workspace' AND action = 'create'))",
            vec![("build_reason", string("autostart"))],
        ),
    ];
    for (query, where_clause, expected_params) in cases {
        let sql = builder().count_exact(&resolved(query));
        let expected = if where_clause == LOOKUP {
            LOOKUP_COUNT.to_owned()
        } else {
            format!("{COUNT_PREFIX}{where_clause}")
        };
        assert_eq!(sql.text, expected, "query {query:?}");
        assert_eq!(params(&sql), expected_params, "query {query:?}");
    }
}

#[test]
fn me_with_a_known_caller_id_matches_the_user_id() {
    let caller = Uuid::from_u128(0x42);
    let filter = Resolver::new()
        .with_caller_id(caller)
        .parse_and_resolve("username:me")
        .unwrap();
    let sql = builder().count_exact(&filter);
    assert_eq!(sql.text, LOOKUP_COUNT);
    assert_eq!(
        params(&sql),
        lookup("user_id", "00000000-0000-0000-0000-000000000042")
    );
}

#[test]
fn two_point_keys_read_the_table_and_its_skip_indexes() {
    let sql = builder().count_exact(&resolved("username:bob email:bob@example.com"));
    assert_eq!(
        sql.text,
        format!(
            "{COUNT_PREFIX}\nWHERE lower(user_username) = {{username:String}}\n  AND lower(user_email) = {{email:String}}"
        )
    );
    // Next to another point key the organization is a column of the lookup table.
    let sql = builder().count_exact(&resolved("username:bob organization:acme"));
    assert_eq!(
        sql.text,
        format!("{LOOKUP_COUNT}\n  AND organization_id = {{organization_id:UUID}}")
    );
}

const COMBINED: &str = "workspace action:create username:me date_from:2026-01-01 \
                        date_to:2026-01-31 organization:acme build_reason:autostart";

const SELECT_COLUMNS: &str = "SELECT id, time, request_id, organization_id, organization_name, \
     organization_display_name, organization_icon, user_id, user_username, user_email, \
     user_name, ip, user_agent, resource_type, resource_id, resource_target, resource_icon, \
     action, diff, status_code, additional_fields, build_reason";

/// `COMBINED` as the lookup table answers it: by the actor, with the rest as columns.
const COMBINED_WHERE: &str = "WHERE key = {lookup_key:String}
  AND value = {lookup_value:String}
  AND organization_id IN {scope_organization_ids:Array(UUID)}
  AND resource_type = {resource_type:String}
  AND action = {action:String}
  AND time >= {date_from:DateTime64(6, 'UTC')}
  AND time < {date_to:DateTime64(6, 'UTC')}
  AND organization_id = {organization_id:UUID}
  AND build_reason = {build_reason:String}";

fn combined_params() -> Vec<(&'static str, ParamValue)> {
    vec![
        ("lookup_key", string("username")),
        ("lookup_value", string("alice")),
        (
            "scope_organization_ids",
            ParamValue::UuidArray(vec![ACME, SCOPE_OTHER]),
        ),
        ("resource_type", string("workspace")),
        ("action", string("create")),
        (
            "date_from",
            ParamValue::DateTime64Micros(1_767_225_600_000_000),
        ),
        (
            "date_to",
            ParamValue::DateTime64Micros(1_769_904_000_000_000),
        ),
        ("organization_id", ParamValue::Uuid(ACME)),
        ("build_reason", string("autostart")),
    ]
}

fn scoped_builder() -> SqlBuilder {
    builder().with_organization_scope([ACME, SCOPE_OTHER])
}

#[test]
fn combined_filter_offset_page() {
    let sql = scoped_builder().page(
        &resolved(COMBINED),
        &Page::Offset {
            limit: 100,
            offset: 200,
        },
    );
    assert_eq!(
        sql.text,
        format!(
            "{SELECT_COLUMNS}\nFROM `auditlog`.`audit_logs`\nWHERE (time, id) IN (\n\
             SELECT DISTINCT time, id\nFROM `auditlog`.`audit_logs_lookup`\n{COMBINED_WHERE}\n\
             ORDER BY time DESC, id DESC\nLIMIT {{limit:UInt64}} OFFSET {{offset:UInt64}}\n)\n\
             ORDER BY time DESC, id DESC"
        )
    );
    let mut expected = combined_params();
    expected.push(("limit", ParamValue::UInt64(100)));
    expected.push(("offset", ParamValue::UInt64(200)));
    assert_eq!(params(&sql), expected);
}

#[test]
fn combined_filter_keyset_page() {
    let cursor = Cursor::new(1_767_268_800_123_456, Uuid::from_u128(0xc));
    let sql = scoped_builder().page(&resolved(COMBINED), &Page::After { limit: 50, cursor });
    assert_eq!(
        sql.text,
        format!(
            "{SELECT_COLUMNS}\nFROM `auditlog`.`audit_logs`\nWHERE (time, id) IN (
SELECT DISTINCT time, id\nFROM `auditlog`.`audit_logs_lookup`\n{COMBINED_WHERE}
  AND time <= {{cursor_time:DateTime64(6, 'UTC')}}
  AND (time < {{cursor_time:DateTime64(6, 'UTC')}} OR id < {{cursor_id:UUID}})
ORDER BY time DESC, id DESC
LIMIT {{limit:UInt64}}
)
ORDER BY time DESC, id DESC"
        )
    );
    let mut expected = combined_params();
    expected.push((
        "cursor_time",
        ParamValue::DateTime64Micros(1_767_268_800_123_456),
    ));
    expected.push(("cursor_id", ParamValue::Uuid(Uuid::from_u128(0xc))));
    expected.push(("limit", ParamValue::UInt64(50)));
    assert_eq!(params(&sql), expected);
}

#[test]
fn combined_filter_counts() {
    let capped = scoped_builder().count_capped(&resolved(COMBINED));
    assert_eq!(
        capped.text,
        format!(
            "SELECT count() FROM (\nSELECT DISTINCT time, id\nFROM `auditlog`.`audit_logs_lookup`\n{COMBINED_WHERE}\nLIMIT 2001\n)"
        )
    );
    assert_eq!(params(&capped), combined_params());

    let exact = scoped_builder().count_exact(&resolved(COMBINED));
    assert_eq!(
        exact.text,
        format!(
            "SELECT uniqExact(time, id)\nFROM `auditlog`.`audit_logs_lookup`\n{COMBINED_WHERE}"
        )
    );
    assert_eq!(params(&exact), combined_params());
}

#[test]
fn empty_filter_and_builder_options() {
    let page = builder().page(
        &ResolvedFilter::default(),
        &Page::Offset {
            limit: 100,
            offset: 0,
        },
    );
    assert_eq!(
        page.text,
        format!(
            "{SELECT_COLUMNS}\nFROM `auditlog`.`audit_logs`\nWHERE (time, id) IN (\n\
             SELECT DISTINCT time, id\nFROM `auditlog`.`audit_logs`\n\
             ORDER BY time DESC, id DESC\nLIMIT {{limit:UInt64}} OFFSET {{offset:UInt64}}\n)\n\
             ORDER BY time DESC, id DESC"
        )
    );
    // On a cluster the keys are chosen across the shards.
    let distributed = builder().with_distributed(true).page(
        &ResolvedFilter::default(),
        &Page::Offset {
            limit: 1,
            offset: 0,
        },
    );
    assert!(distributed.text.contains("WHERE (time, id) GLOBAL IN (\n"));

    let capped = builder().count_capped(&ResolvedFilter::default());
    assert_eq!(
        capped.text,
        "SELECT count() FROM (\nSELECT DISTINCT time, id\nFROM `auditlog`.`audit_logs`\nLIMIT 2001\n)"
    );
    assert!(capped.params.is_empty());

    // An org-scoped auditor with no organizations sees nothing (ClickHouse: `x IN []` is
    // false for a typed empty array parameter).
    let nothing = builder()
        .with_organization_scope([])
        .count_exact(&ResolvedFilter::default());
    assert_eq!(
        nothing.text,
        format!("{COUNT_PREFIX}\nWHERE organization_id IN {{scope_organization_ids:Array(UUID)}}")
    );
    assert_eq!(
        params(&nothing),
        [("scope_organization_ids", ParamValue::UuidArray(vec![]))]
    );
}

#[test]
fn the_selected_columns_are_the_documented_ones() {
    assert_eq!(SELECT_COLUMNS, format!("SELECT {}", COLUMNS.join(", ")));
}

#[test]
fn the_scope_cannot_be_widened_by_the_filter() {
    // organization: outside the scope only adds a second condition; both must hold.
    let sql = builder()
        .with_organization_scope([ACME])
        .count_exact(&resolved(
            "organization:a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        ));
    assert_eq!(
        sql.text,
        format!("{LOOKUP_COUNT}\n  AND organization_id IN {{scope_organization_ids:Array(UUID)}}")
    );
    assert_eq!(
        params(&sql)[1],
        (
            "lookup_value",
            string("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
        )
    );
}

/// Strings that would break out of a string literal, a comment or a placeholder if they were
/// ever pasted into SQL text.
pub(crate) fn hostile_strings() -> Vec<String> {
    vec![
        "'".to_owned(),
        "\\".to_owned(),
        "\\'; DROP TABLE audit_logs; --".to_owned(),
        "x' OR '1'='1".to_owned(),
        "{p1:String}".to_owned(),
        "{username:String}".to_owned(),
        "}{".to_owned(),
        "-- comment".to_owned(),
        "/* comment */".to_owned(),
        "\0".to_owned(),
        "a\nb\tc\r".to_owned(),
        "`backtick`".to_owned(),
        "?".to_owned(),
        "?fields".to_owned(),
        "é日本🦀".to_owned(),
        "x".repeat(100_000),
    ]
}

#[test]
fn hostile_values_do_not_change_the_sql_text() {
    let benign = ResolvedFilter {
        resource_target: Some("benign".to_owned()),
        actor: Some(Actor::Username("benign".to_owned())),
        email: Some("benign".to_owned()),
        date_from: Some(date!(2026 - 01 - 01)),
        date_to: Some(date!(2026 - 01 - 31)),
        ..ResolvedFilter::default()
    };
    let page = Page::After {
        limit: 10,
        cursor: Cursor::new(0, Uuid::nil()),
    };
    let builder = scoped_builder();
    let benign_page = builder.page(&benign, &page);
    let benign_count = builder.count_capped(&benign);
    for hostile in hostile_strings() {
        let filter = ResolvedFilter {
            resource_target: Some(hostile.clone()),
            actor: Some(Actor::Username(hostile.clone())),
            email: Some(hostile.clone()),
            ..benign.clone()
        };
        let hostile_page = builder.page(&filter, &page);
        assert_eq!(hostile_page.text, benign_page.text);
        assert_eq!(builder.count_capped(&filter).text, benign_count.text);
        // The value travels whole, as a parameter.
        assert!(hostile_page.params.contains(&(
            "resource_target".to_owned(),
            ParamValue::String(hostile.to_lowercase())
        )));
    }
    // The clickhouse crate treats `?` in SQL text as a client-side bind placeholder.
    assert!(!benign_page.text.contains('?'));
}

#[test]
fn hostile_query_text_does_not_change_the_sql_text() {
    let benign = builder().count_exact(&resolved(r#"resource_target:"benign" email:benign"#));
    for hostile in hostile_strings() {
        // Quotes cannot be escaped in the filter language; everything else can be quoted.
        let quoted = hostile.replace('"', "");
        let filter = resolved(&format!(r#"resource_target:"{quoted}" email:"{quoted}""#));
        assert_eq!(builder().count_exact(&filter).text, benign.text);
    }
}

#[test]
fn params_bind_with_the_clickhouse_crate() {
    let sql = scoped_builder().page(
        &resolved(COMBINED),
        &Page::After {
            limit: 1,
            cursor: Cursor::new(0, Uuid::nil()),
        },
    );
    // Building a query never touches the network; this proves the types line up with
    // `Query::param(&str, impl Serialize)`, which is what the runner will call.
    let mut request = clickhouse::Client::default().query(&sql.text);
    for (name, value) in &sql.params {
        request = request.param(name, value);
    }
    assert_eq!(request.sql_display().to_string(), sql.text);
}
