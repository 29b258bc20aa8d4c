//! Read-only access for analysts (docs/analysts.md#access-for-analysts): the ClickHouse
//! statements of `auditlog access-ddl`, which create a role that reads the audit tables and
//! views, optionally limited to some organizations by row policies, as the API's
//! `org_auditor` is.
//!
//! Which tables hold rows and which views read them is the schema's knowledge, so the
//! statements are made here, next to the migrations that create those tables. Every name in
//! them is a validated identifier and every organization a UUID, so no input can add SQL of
//! its own.

use uuid::Uuid;

use crate::StoreError;
use crate::identifier::is_identifier;
use crate::tables::{ANALYST_VIEWS, ROLLUP_TABLES};

/// The settings profile every analyst role gets.
pub const ANALYST_PROFILE: &str = "auditlog_analyst_profile";
/// The role when none is given and every organization is readable.
pub const DEFAULT_ROLE: &str = "auditlog_analyst";
/// The role when none is given and the access is limited to some organizations.
pub const DEFAULT_ORG_ROLE: &str = "auditlog_org_auditor";
/// The row policy that lets service users keep reading every row.
pub const SERVICE_POLICY: &str = "auditlog_service";

/// The longest an analyst's query may run, in seconds; clients may lower or raise it within
/// the profile's bounds (Grafana's plugin sets it on every query).
const MAX_EXECUTION_SECS: u32 = 300;
/// The most memory one analyst query may use, in bytes (10 GB).
const MAX_MEMORY_BYTES: u64 = 10_000_000_000;

/// The access to grant, as asked for; [`AccessSpec::try_new`] checks it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessRequest {
    /// The audit database.
    pub database: String,
    /// The base table of audit events.
    pub table: String,
    /// The role to create; `None`: [`DEFAULT_ROLE`], or [`DEFAULT_ORG_ROLE`] with
    /// organizations.
    pub role: Option<String>,
    /// The organizations whose rows the role reads; empty: every row, site-wide included.
    pub organizations: Vec<Uuid>,
    /// A user to create with the role as its default role, and the SHA-256 of its password
    /// as hex.
    pub user: Option<(String, String)>,
    /// Users that must keep reading every row once row policies exist (the API's, the
    /// ingester's); at least one.
    pub service_users: Vec<String>,
}

/// The access to grant, checked: its statements are safe to print and run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessSpec {
    database: String,
    table: String,
    role: String,
    organizations: Vec<Uuid>,
    /// With the SHA-256 of its password, lowercase hex.
    user: Option<(String, String)>,
    service_users: Vec<String>,
}

impl AccessSpec {
    /// Checks a request: the password hash, then the identifiers, then the organizations.
    pub fn try_new(request: AccessRequest) -> Result<Self, StoreError> {
        let role = request.role.unwrap_or_else(|| {
            if request.organizations.is_empty() {
                DEFAULT_ROLE.to_owned()
            } else {
                DEFAULT_ORG_ROLE.to_owned()
            }
        });
        let user = match request.user {
            Some((user, hash)) => {
                let hash = hash.trim().to_ascii_lowercase();
                if hash.len() != 64 || !hash.bytes().all(|byte| byte.is_ascii_hexdigit()) {
                    return Err(StoreError::InvalidPasswordHash { len: hash.len() });
                }
                Some((user, hash))
            }
            None => None,
        };
        let names = [&request.database, &request.table, &role]
            .into_iter()
            .chain(user.as_ref().map(|(user, _)| user))
            .chain(&request.service_users);
        for name in names {
            if !is_identifier(name) {
                return Err(StoreError::InvalidAccessName { name: name.clone() });
            }
        }
        if request.organizations.contains(&Uuid::nil()) {
            return Err(StoreError::NilOrganization);
        }
        Ok(AccessSpec {
            database: request.database,
            table: request.table,
            role,
            organizations: request.organizations,
            user,
            service_users: request.service_users,
        })
    }

    /// The statements, in the order they must run, without their `;`.
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
        // A normal view reads with the caller's rights, so reading one needs its grant and
        // those of the tables beneath it, whose row policies apply.
        let readable = std::iter::once(self.table.as_str())
            .chain(ANALYST_VIEWS)
            .chain(ROLLUP_TABLES);
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
            .chain(ROLLUP_TABLES)
            .map(|table| format!("{}.{table}", self.database))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
#[path = "access_tests.rs"]
mod tests;
