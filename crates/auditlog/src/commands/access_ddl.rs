//! `auditlog access-ddl`: print the ClickHouse statements that give analysts read-only
//! access (docs/analysts.md#access-for-analysts), optionally limited to some organizations
//! by row policies, as the API's `org_auditor` is. It connects to nothing: an administrator
//! reviews the output and runs it.
//!
//! The statements are the store's (`auditlog_store::access`); this command only turns flags
//! and settings into a request and says what is wrong in the flags' terms.

use anyhow::{Result, anyhow, bail};
use auditlog_store::StoreError;
use auditlog_store::access::{AccessRequest, AccessSpec};

use crate::cli::AccessDdlArgs;
use crate::config::Settings;

pub fn run(settings: &Settings, args: &AccessDdlArgs) -> Result<()> {
    let spec = AccessSpec::try_new(request(settings, args)?).map_err(in_flag_terms)?;
    for statement in spec.statements() {
        println!("{statement};");
    }
    Ok(())
}

fn request(settings: &Settings, args: &AccessDdlArgs) -> Result<AccessRequest> {
    let user = match (&args.user, &args.password_sha256) {
        (Some(user), Some(hash)) => Some((user.clone(), hash.clone())),
        (None, None) => None,
        // clap requires them together; a second check costs nothing.
        _ => bail!("--user and --password-sha256 go together"),
    };
    let service_users = if args.service_users.is_empty() {
        vec![settings.clickhouse_user.clone()]
    } else {
        args.service_users.clone()
    };
    Ok(AccessRequest {
        database: settings.clickhouse_database.clone(),
        table: settings.clickhouse_table.clone(),
        role: args.role.clone(),
        organizations: args.organizations.clone(),
        user,
        service_users,
    })
}

/// The store's error, naming the flag it came from where one did.
fn in_flag_terms(error: StoreError) -> anyhow::Error {
    match error {
        StoreError::InvalidPasswordHash { len } => {
            anyhow!("--password-sha256 takes the 64 hex digits of a SHA-256, got {len} characters")
        }
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_hash_is_reported_by_its_flag() {
        let error = AccessSpec::try_new(AccessRequest {
            database: "audit".into(),
            table: "audit_logs".into(),
            user: Some(("u".into(), "abc".into())),
            service_users: vec!["default".into()],
            ..AccessRequest::default()
        })
        .map_err(in_flag_terms)
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "--password-sha256 takes the 64 hex digits of a SHA-256, got 3 characters"
        );
    }
}
