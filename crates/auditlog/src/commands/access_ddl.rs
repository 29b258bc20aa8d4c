//! `auditlog access-ddl`: print the ClickHouse statements that give analysts read-only
//! access (docs/analysts.md#access-for-analysts), optionally limited to some organizations
//! by row policies, as the API's `org_auditor` is. It connects to nothing: an administrator
//! reviews the output and runs it.
//!
//! Every name in the output is a validated identifier and every organization a parsed UUID,
//! so no argument can add SQL of its own.

use anyhow::{Result, bail};
use auditlog_store::is_identifier;
use uuid::Uuid;

use crate::cli::AccessDdlArgs;
use crate::config::Settings;

/// The settings profile every analyst role gets.
pub const ANALYST_PROFILE: &str = "auditlog_analyst_profile";
/// The role when neither `--role` nor `--organization` is given.
pub const DEFAULT_ROLE: &str = "auditlog_analyst";
/// The role with `--organization` and no `--role`.
pub const DEFAULT_ORG_ROLE: &str = "auditlog_org_auditor";
/// The row policy that lets service users keep reading every row.
pub const SERVICE_POLICY: &str = "auditlog_service";

/// The tables of migration 0004 that hold rows (row policies go on them), besides the base
/// table.
pub const ROLLUP_TABLES: &[&str] = &[
    "daily_events_rollup",
    "failed_requests_hourly_rollup",
    "actor_ips_rollup",
];
/// The views of migration 0004; a normal view reads with the caller's rights, so reading one
/// needs its grant and those of the tables beneath it, whose row policies apply.
pub const ANALYST_VIEWS: &[&str] = &[
    "events",
    "daily_events",
    "failed_requests_hourly",
    "actor_ips",
];

/// The longest an analyst's query may run, in seconds; clients may lower or raise it within
/// the profile's bounds (Grafana's plugin sets it on every query).
const MAX_EXECUTION_SECS: u32 = 300;
/// The most memory one analyst query may use, in bytes (10 GB).
const MAX_MEMORY_BYTES: u64 = 10_000_000_000;

/// What to generate, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessSpec {
    pub database: String,
    pub table: String,
    pub role: String,
    /// Empty: every row.
    pub organizations: Vec<Uuid>,
    /// With the SHA-256 of its password, hex.
    pub user: Option<(String, String)>,
    pub service_users: Vec<String>,
}

impl AccessSpec {
    /// Validates the arguments: identifiers, the password hash, no site-wide organization.
    pub fn try_new(settings: &Settings, args: &AccessDdlArgs) -> Result<Self> {
        let role = args.role.clone().unwrap_or_else(|| {
            if args.organizations.is_empty() {
                DEFAULT_ROLE.to_owned()
            } else {
                DEFAULT_ORG_ROLE.to_owned()
            }
        });
        let service_users = if args.service_users.is_empty() {
            vec![settings.clickhouse_user.clone()]
        } else {
            args.service_users.clone()
        };
        let user = match (&args.user, &args.password_sha256) {
            (Some(user), Some(hash)) => {
                let hash = hash.trim().to_ascii_lowercase();
                if hash.len() != 64 || !hash.bytes().all(|byte| byte.is_ascii_hexdigit()) {
                    bail!(
                        "--password-sha256 takes the 64 hex digits of a SHA-256, got {} characters",
                        hash.len()
                    );
                }
                Some((user.clone(), hash))
            }
            (None, None) => None,
            // clap requires them together; a second check costs nothing.
            _ => bail!("--user and --password-sha256 go together"),
        };
        let names = [
            &settings.clickhouse_database,
            &settings.clickhouse_table,
            &role,
        ]
        .into_iter()
        .chain(user.as_ref().map(|(user, _)| user))
        .chain(&service_users);
        for name in names {
            if !is_identifier(name) {
                bail!("{name:?} is not a valid ClickHouse identifier ([A-Za-z_][A-Za-z0-9_]*)");
            }
        }
        if args.organizations.contains(&Uuid::nil()) {
            bail!(
                "the nil organization is no organization: site-wide events have it, and an organization-scoped role never sees them"
            );
        }
        Ok(AccessSpec {
            database: settings.clickhouse_database.clone(),
            table: settings.clickhouse_table.clone(),
            role,
            organizations: args.organizations.clone(),
            user,
            service_users,
        })
    }

    /// The statements, in the order they must run.
    pub fn statements(&self) -> Vec<String> {
        let database = &self.database;
        let role = &self.role;
        let mut statements = vec![
            format!(
                "CREATE SETTINGS PROFILE IF NOT EXISTS {ANALYST_PROFILE} SETTINGS \
                 readonly = 1, \
                 max_execution_time = {MAX_EXECUTION_SECS} MAX = {MAX_EXECUTION_SECS} CHANGEABLE_IN_READONLY, \
                 max_memory_usage = {MAX_MEMORY_BYTES}"
            ),
            format!("CREATE ROLE IF NOT EXISTS {role} SETTINGS PROFILE '{ANALYST_PROFILE}'"),
        ];
        let readable = std::iter::once(self.table.as_str())
            .chain(ANALYST_VIEWS.iter().copied())
            .chain(ROLLUP_TABLES.iter().copied());
        statements
            .extend(readable.map(|table| format!("GRANT SELECT ON {database}.{table} TO {role}")));
        let condition = if self.organizations.is_empty() {
            "1".to_owned()
        } else {
            let ids: Vec<String> = self
                .organizations
                .iter()
                .map(|id| format!("toUUID('{id}')"))
                .collect();
            format!("organization_id IN ({})", ids.join(", "))
        };
        let tables = self.policy_tables();
        statements.push(format!(
            "CREATE ROW POLICY OR REPLACE {role} ON {tables} USING {condition} AS PERMISSIVE TO {role}"
        ));
        statements.push(format!(
            "CREATE ROW POLICY OR REPLACE {SERVICE_POLICY} ON {tables} USING 1 AS PERMISSIVE TO {}",
            self.service_users.join(", ")
        ));
        if let Some((user, hash)) = &self.user {
            statements.push(format!(
                "CREATE USER IF NOT EXISTS {user} IDENTIFIED WITH sha256_hash BY '{hash}'"
            ));
            statements.push(format!("GRANT {role} TO {user}"));
            statements.push(format!("ALTER USER {user} DEFAULT ROLE {role}"));
        }
        statements
    }

    /// The tables that hold rows, where row policies apply: `db.t1, db.t2, ...`.
    fn policy_tables(&self) -> String {
        std::iter::once(self.table.as_str())
            .chain(ROLLUP_TABLES.iter().copied())
            .map(|table| format!("{}.{table}", self.database))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

pub fn run(settings: &Settings, args: &AccessDdlArgs) -> Result<()> {
    let spec = AccessSpec::try_new(settings, args)?;
    for statement in spec.statements() {
        println!("{statement};");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(organizations: Vec<Uuid>, user: Option<(&str, &str)>) -> AccessSpec {
        AccessSpec {
            database: "audit".into(),
            table: "audit_logs".into(),
            role: if organizations.is_empty() {
                DEFAULT_ROLE
            } else {
                DEFAULT_ORG_ROLE
            }
            .into(),
            organizations,
            user: user.map(|(name, hash)| (name.into(), hash.into())),
            service_users: vec!["default".into()],
        }
    }

    #[test]
    fn the_names_are_those_migration_0004_creates() {
        let analysts = auditlog_store::MIGRATIONS
            .iter()
            .find(|migration| migration.name == "0004_analysts.sql")
            .expect("0004");
        for name in ROLLUP_TABLES {
            assert!(
                analysts
                    .sql
                    .contains(&format!("CREATE TABLE IF NOT EXISTS {{database}}.{name}\n")),
                "{name}"
            );
        }
        for name in ANALYST_VIEWS {
            assert!(
                analysts
                    .sql
                    .contains(&format!("CREATE VIEW IF NOT EXISTS {{database}}.{name} AS")),
                "{name}"
            );
        }
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
}
