//! Shared fixtures of the query-side whole-system tests (`query_oracle`, `api`,
//! `query_cli`): a migrated database per test, events loaded directly as RowBinary, a real
//! `auditlog serve` child process (GETs through the test kit's client), and the plain-Rust
//! oracle.

#![allow(dead_code)] // Each test binary uses a different part of this module.

use std::cmp::Reverse;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use auditlog_e2e::pipeline::{
    AuditlogCommand, AuditlogProcess, auditlog_binary, free_port, log_dir,
};
use auditlog_e2e::{
    HttpClient, HttpResponse, clickhouse_url, fresh_database, http_get, unique_name,
};
use auditlog_event::{Action, AuditEvent, ResourceType};
use auditlog_query::{Actor, ResolvedFilter};
use auditlog_store::{COLUMNS, RowEncoder, SchemaTarget};
use bytes::Bytes;
use sha2::{Digest, Sha256};

/// Rows per RowBinary insert when loading.
const LOAD_CHUNK_ROWS: usize = 50_000;

/// A fresh database with the `audit_logs` schema applied; returns a client using it.
pub async fn migrated_database(prefix: &str) -> (clickhouse::Client, String) {
    let (client, database) = fresh_database(prefix).await;
    let target = SchemaTarget {
        database: database.clone(),
        table: "audit_logs".to_owned(),
        retention_days: None,
        cluster: None,
    };
    auditlog_store::migrate(&client.clone().with_database("default"), &target)
        .await
        .unwrap_or_else(|error| panic!("migrate {database}: {error}"));
    (client, database)
}

/// Inserts events as RowBinary, in chunks (each chunk its own insert, so its own part).
pub async fn load_events(client: &clickhouse::Client, events: &[AuditEvent]) {
    let statement = format!(
        "INSERT INTO audit_logs ({}) FORMAT RowBinary",
        COLUMNS.join(", ")
    );
    let mut encoder = RowEncoder::default();
    for chunk in events.chunks(LOAD_CHUNK_ROWS) {
        let mut rows = Vec::with_capacity(chunk.len() * 600);
        for event in chunk {
            encoder.encode(event, &mut rows);
        }
        let mut insert = client.insert_formatted_with(statement.clone());
        insert.send(Bytes::from(rows)).await.expect("send rows");
        insert.end().await.expect("insert rows");
    }
}

/// Physical rows (duplicates included) and visible rows (FINAL) of `audit_logs`.
pub async fn row_counts(client: &clickhouse::Client) -> (u64, u64) {
    let physical = client
        .query("SELECT count() FROM audit_logs")
        .fetch_one::<u64>()
        .await
        .expect("count");
    let visible = client
        .query("SELECT count() FROM audit_logs FINAL")
        .fetch_one::<u64>()
        .await
        .expect("count final");
    (physical, visible)
}

/// Runs the `auditlog` binary against the shared ClickHouse, without a config file, on
/// `database` when given.
pub fn auditlog_cli(args: &[&str], database: Option<&str>) -> Output {
    let mut command = Command::new(auditlog_binary());
    command
        .args(args)
        .env("AUDITLOG_CLICKHOUSE_URL", clickhouse_url())
        .env("AUDITLOG_LOG", "warn")
        .env_remove("AUDITLOG_CONFIG");
    if let Some(database) = database {
        command.env("AUDITLOG_CLICKHOUSE_DATABASE", database);
    }
    command.output().expect("run auditlog")
}

/// [`auditlog_cli`] on `database` that must succeed; its standard output.
pub fn auditlog_cli_ok(args: &[&str], database: &str) -> String {
    let output = auditlog_cli(args, Some(database));
    assert!(
        output.status.success(),
        "auditlog {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

/// One `[[api.tokens]]` entry of a test server.
#[derive(Debug, Clone)]
pub struct TestToken {
    pub name: &'static str,
    pub secret: &'static str,
    pub role: &'static str,
    pub organizations: Vec<uuid::Uuid>,
}

impl TestToken {
    pub fn new(name: &'static str, secret: &'static str, role: &'static str) -> Self {
        Self {
            name,
            secret,
            role,
            organizations: Vec::new(),
        }
    }
}

/// A running `auditlog serve` against one database.
#[derive(Debug)]
pub struct ApiServer {
    pub port: u16,
    pub process: AuditlogProcess,
    pub config_path: PathBuf,
}

impl ApiServer {
    /// Starts `auditlog serve` on a free port with these tokens; waits for `/healthz`.
    pub async fn start(database: &str, tokens: &[TestToken]) -> Self {
        Self::start_with(database, tokens, &[]).await
    }

    /// [`ApiServer::start`] with more environment (e.g. the Kafka topic a proof names).
    pub async fn start_with(
        database: &str,
        tokens: &[TestToken],
        extra_env: &[(&'static str, String)],
    ) -> Self {
        Self::start_command(database, tokens, |command| {
            command.envs(extra_env.iter().cloned())
        })
        .await
    }

    /// [`ApiServer::start`] with the command changed by `customize` (more environment, a
    /// separate ops port, a file limit); waits for `/healthz` on its ops port.
    pub async fn start_command(
        database: &str,
        tokens: &[TestToken],
        customize: impl FnOnce(AuditlogCommand) -> AuditlogCommand,
    ) -> Self {
        let port = free_port();
        let mut config = String::new();
        for token in tokens {
            let organizations: Vec<String> = token
                .organizations
                .iter()
                .map(|id| format!("\"{id}\""))
                .collect();
            config.push_str(&format!(
                "[[api.tokens]]\nname = \"{}\"\nsha256 = \"{}\"\nrole = \"{}\"\norganizations = [{}]\n\n",
                token.name,
                hex::encode(Sha256::digest(token.secret.as_bytes())),
                token.role,
                organizations.join(", ")
            ));
        }
        let config_path = log_dir().join(format!("{}.toml", unique_name("serve_config")));
        std::fs::write(&config_path, config).expect("write config");
        let command = AuditlogCommand::new(auditlog_binary(), "serve")
            .arg("serve")
            .env("AUDITLOG_CLICKHOUSE_URL", clickhouse_url())
            .env("AUDITLOG_CLICKHOUSE_DATABASE", database)
            .env("AUDITLOG_API_LISTEN", format!("127.0.0.1:{port}"))
            .env("AUDITLOG_CONFIG", config_path.display().to_string())
            .ops_port(port);
        let mut process = customize(command).spawn();
        if let Err(error) = process
            .wait_until_ok("/healthz", Duration::from_secs(60))
            .await
        {
            panic!("auditlog serve did not come up: {error}");
        }
        Self {
            port,
            process,
            config_path,
        }
    }

    /// GET `path_and_query` with a bearer token; panics on a transport error.
    pub async fn get(&self, path_and_query: &str, token: Option<&str>) -> HttpResponse {
        self.answer(
            path_and_query,
            http_get(self.port, path_and_query, token).await,
        )
    }

    /// GET `path_and_query` with these request headers; panics on a transport error.
    pub async fn get_with_headers(
        &self,
        path_and_query: &str,
        headers: &[(&str, &str)],
    ) -> HttpResponse {
        let response = HttpClient::new()
            .get_with_headers(self.port, path_and_query, headers)
            .await;
        self.answer(path_and_query, response)
    }

    fn answer(
        &self,
        path_and_query: &str,
        response: Result<HttpResponse, auditlog_testkit::Error>,
    ) -> HttpResponse {
        response.unwrap_or_else(|error| {
            panic!(
                "GET {path_and_query}: {error}; server log:\n{}",
                self.process.log()
            )
        })
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.config_path);
    }
}

fn midnight_micros(date: time::Date) -> i128 {
    i128::from(date.midnight().assume_utc().unix_timestamp()) * 1_000_000
}

fn micros(event: &AuditEvent) -> i128 {
    event.time.unix_timestamp_nanos() / 1_000
}

/// The oracle: does `event` match `filter`, by the reference's semantics, in plain Rust?
///
/// Case-insensitive comparisons fold ASCII only, which is what the SQL documents (ClickHouse's
/// `lower`); the generated and hand-made data exercise ASCII case differences.
pub fn matches(filter: &ResolvedFilter, event: &AuditEvent) -> bool {
    let lower = |text: &str| text.to_ascii_lowercase();
    let user = event.user.as_ref();
    filter
        .resource_type
        .as_ref()
        .is_none_or(|wanted| &event.resource_type == wanted)
        && filter
            .action
            .as_ref()
            .is_none_or(|wanted| &event.action == wanted)
        && filter
            .resource_id
            .is_none_or(|wanted| event.resource_id == wanted)
        && filter
            .resource_target
            .as_ref()
            .is_none_or(|wanted| lower(&event.resource_target) == lower(wanted))
        && match &filter.actor {
            None => true,
            Some(Actor::Username(wanted)) => {
                lower(user.map_or("", |user| user.username.as_str())) == lower(wanted)
            }
            Some(Actor::UserId(wanted)) => event.user_id() == *wanted,
        }
        && filter.email.as_ref().is_none_or(|wanted| {
            lower(user.map_or("", |user| user.email.as_str())) == lower(wanted)
        })
        && filter
            .date_from
            .is_none_or(|day| micros(event) >= midnight_micros(day))
        && filter.date_to.is_none_or(|day| {
            day.next_day()
                .is_none_or(|next| micros(event) < midnight_micros(next))
        })
        && filter
            .organization_id
            .is_none_or(|wanted| event.organization_id() == wanted)
        && filter
            .request_id
            .is_none_or(|wanted| event.request_id == wanted)
        && filter.build_reason.as_ref().is_none_or(|wanted| {
            event.build_reason.as_ref() == Some(wanted)
                && (event.resource_type == ResourceType::WorkspaceBuild
                    || (event.resource_type == ResourceType::Workspace
                        && event.action == Action::Create))
        })
}

/// The events `filter` selects, ordered `time DESC, id DESC`.
pub fn expected<'e>(events: &'e [AuditEvent], filter: &ResolvedFilter) -> Vec<&'e AuditEvent> {
    let mut selected: Vec<&AuditEvent> = events
        .iter()
        .filter(|event| matches(filter, event))
        .collect();
    selected.sort_by_key(|event| Reverse((micros(event), event.id)));
    selected
}
