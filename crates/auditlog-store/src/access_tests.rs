use super::*;

fn spec(organizations: Vec<Uuid>, user: Option<(&str, &str)>) -> AccessSpec {
    AccessSpec::try_new(AccessRequest {
        database: "audit".into(),
        table: "audit_logs".into(),
        role: None,
        organizations,
        user: user.map(|(name, hash)| (name.into(), hash.into())),
        service_users: vec!["default".into()],
    })
    .unwrap()
}

#[test]
fn an_unrestricted_role_reads_every_row_of_every_analyst_table() {
    let statements = spec(Vec::new(), None).statements();
    let text = statements.join(";\n");
    assert!(text.contains("readonly = 1"));
    assert!(text.contains("CREATE ROLE IF NOT EXISTS auditlog_analyst SETTINGS PROFILE"));
    for table in [
        "audit_logs",
        "events",
        "daily_events",
        "daily_events_rollup",
        "actor_ips",
    ] {
        let grant = format!("GRANT SELECT ON audit.{table} TO auditlog_analyst");
        assert!(statements.contains(&grant), "{grant}");
    }
    assert!(text.contains(
        "CREATE ROW POLICY OR REPLACE auditlog_analyst ON audit.audit_logs, \
         audit.daily_events_rollup, audit.failed_requests_hourly_rollup, \
         audit.actor_ips_rollup USING 1 AS PERMISSIVE TO auditlog_analyst"
    ));
    assert!(text.contains("auditlog_service ON audit.audit_logs,"));
    assert!(!text.contains("CREATE USER"));
    assert!(!text.contains("ingest_batches"), "no bookkeeping tables");
}

#[test]
fn an_organization_scoped_role_sees_only_its_organizations() {
    let first = Uuid::from_u128(0x0195_0000_0000_7000_8000_0000_0000_0001);
    let second = Uuid::from_u128(0x0195_0000_0000_7000_8000_0000_0000_0002);
    let hash = "a".repeat(64);
    let statements = spec(vec![first, second], Some(("acme", &hash))).statements();
    let policy = statements
        .iter()
        .find(|statement| {
            statement.starts_with("CREATE ROW POLICY OR REPLACE auditlog_org_auditor")
        })
        .expect("the role's policy");
    assert!(policy.contains(&format!(
        "USING organization_id IN (toUUID('{first}'), toUUID('{second}')) AS PERMISSIVE TO auditlog_org_auditor"
    )));
    assert_eq!(
        &statements[statements.len() - 3..],
        [
            format!("CREATE USER IF NOT EXISTS acme IDENTIFIED WITH sha256_hash BY '{hash}'"),
            "GRANT auditlog_org_auditor TO acme".to_owned(),
            "ALTER USER acme DEFAULT ROLE auditlog_org_auditor".to_owned(),
        ]
    );
}

#[test]
fn the_whole_text_is_stable() {
    let statements = spec(Vec::new(), None).statements();
    assert_eq!(
        statements,
        [
            "CREATE SETTINGS PROFILE IF NOT EXISTS auditlog_analyst_profile SETTINGS readonly = 1, \
             max_execution_time = 300 MAX = 300 CHANGEABLE_IN_READONLY, max_memory_usage = 10000000000",
            "CREATE ROLE IF NOT EXISTS auditlog_analyst SETTINGS PROFILE 'auditlog_analyst_profile'",
            "GRANT SELECT ON audit.audit_logs TO auditlog_analyst",
            "GRANT SELECT ON audit.events TO auditlog_analyst",
            "GRANT SELECT ON audit.daily_events TO auditlog_analyst",
            "GRANT SELECT ON audit.failed_requests_hourly TO auditlog_analyst",
            "GRANT SELECT ON audit.actor_ips TO auditlog_analyst",
            "GRANT SELECT ON audit.daily_events_rollup TO auditlog_analyst",
            "GRANT SELECT ON audit.failed_requests_hourly_rollup TO auditlog_analyst",
            "GRANT SELECT ON audit.actor_ips_rollup TO auditlog_analyst",
            "CREATE ROW POLICY OR REPLACE auditlog_analyst ON audit.audit_logs, \
             audit.daily_events_rollup, audit.failed_requests_hourly_rollup, \
             audit.actor_ips_rollup USING 1 AS PERMISSIVE TO auditlog_analyst",
            "CREATE ROW POLICY OR REPLACE auditlog_service ON audit.audit_logs, \
             audit.daily_events_rollup, audit.failed_requests_hourly_rollup, \
             audit.actor_ips_rollup USING 1 AS PERMISSIVE TO default",
        ]
    );
}

#[test]
fn a_given_role_and_hash_are_used_as_given_up_to_case() {
    let spec = AccessSpec::try_new(AccessRequest {
        database: "audit".into(),
        table: "audit_logs".into(),
        role: Some("acme".into()),
        organizations: Vec::new(),
        user: Some(("u".into(), format!(" {} ", "AB".repeat(32)))),
        service_users: vec!["api".into(), "ingester".into()],
    })
    .unwrap();
    let statements = spec.statements();
    assert_eq!(
        statements[1],
        "CREATE ROLE IF NOT EXISTS acme SETTINGS PROFILE 'auditlog_analyst_profile'"
    );
    assert!(statements.contains(&format!(
        "CREATE USER IF NOT EXISTS u IDENTIFIED WITH sha256_hash BY '{}'",
        "ab".repeat(32)
    )));
    assert!(statements[11].ends_with("AS PERMISSIVE TO api, ingester"));
}

#[test]
fn no_input_can_add_sql() {
    let valid = || AccessRequest {
        database: "audit".into(),
        table: "audit_logs".into(),
        role: None,
        organizations: Vec::new(),
        user: None,
        service_users: vec!["default".into()],
    };
    let error = |request: AccessRequest| AccessSpec::try_new(request).unwrap_err().to_string();
    assert_eq!(
        error(AccessRequest {
            role: Some("x; DROP TABLE t".into()),
            ..valid()
        }),
        "\"x; DROP TABLE t\" is not a valid ClickHouse identifier ([A-Za-z_][A-Za-z0-9_]*)"
    );
    assert_eq!(
        error(AccessRequest {
            service_users: vec!["a b".into()],
            ..valid()
        }),
        "\"a b\" is not a valid ClickHouse identifier ([A-Za-z_][A-Za-z0-9_]*)"
    );
    assert_eq!(
        error(AccessRequest {
            user: Some(("u".into(), "' OR 1".into())),
            ..valid()
        }),
        "a password's SHA-256 is 64 hex digits, got 6 characters"
    );
    assert!(matches!(
        AccessSpec::try_new(AccessRequest {
            organizations: vec![Uuid::nil()],
            ..valid()
        }),
        Err(StoreError::NilOrganization)
    ));
}
