//! The anchor: Coder's audit log storage on PostgreSQL, loaded with the same generated events,
//! queried as Coder queries it (shared/reference/coder-audit-logs.md, section 6).
//!
//! ```text
//!  TrafficGenerator(seed) ─► COPY text ─► audit_logs ─┐  users, organizations, workspaces,
//!                      └─ actors, orgs, builds seen ──┴► workspace_builds (COPY) ─► indexes, ANALYZE
//!  GetAuditLogsOffset + CountAuditLogs (prepared) ◄── this bench, one connection per client
//! ```
//!
//! `deploy/local/postgres.sh` runs the server (own data directory and port); [`Anchor`] starts
//! it and stops it when dropped. A marker table records what was loaded (seed, events), so a
//! second run reuses the data.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use auditlog_event::{Action, AuditEvent, ResourceType};
use auditlog_traffic::TrafficGenerator;
use bytes::Bytes;
use futures::SinkExt as _;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::datetime;
use tokio_postgres::{NoTls, Statement};
use uuid::Uuid;

const DEFAULT_PORT: u16 = 55432;
const DATABASE: &str = "coder";
/// Rows per COPY message; big enough to keep the server busy, small enough to stream.
const COPY_CHUNK_BYTES: usize = 4 << 20;
/// Coder's count cap; the count query counts at most one more.
pub const COUNT_CAP: i64 = 2_000;
/// COPY of audit_logs rows as [`push_audit_log`] writes them.
pub const AUDIT_LOGS_COPY: &str = "COPY audit_logs (id, \"time\", user_id, organization_id, ip, \
    user_agent, resource_type, resource_id, resource_target, action, diff, status_code, \
    additional_fields, request_id, resource_icon) FROM STDIN";
/// Go's zero `time.Time`, which Coder's queries read as "no date filter".
const ZERO_TIME: OffsetDateTime = datetime!(0001-01-01 00:00 UTC);

/// The filter of GetAuditLogsOffset / CountAuditLogs: empty strings, nil UUIDs and the zero
/// time mean "not set", as in Coder.
#[derive(Debug, Clone)]
pub struct CoderFilter {
    pub resource_type: String,
    pub resource_id: Uuid,
    pub organization_id: Uuid,
    pub resource_target: String,
    pub action: String,
    pub username: String,
    pub email: String,
    pub date_from: OffsetDateTime,
    pub date_to: OffsetDateTime,
    pub build_reason: String,
    pub request_id: Uuid,
    pub offset: i32,
}

impl Default for CoderFilter {
    fn default() -> Self {
        Self {
            resource_type: String::new(),
            resource_id: Uuid::nil(),
            organization_id: Uuid::nil(),
            resource_target: String::new(),
            action: String::new(),
            username: String::new(),
            email: String::new(),
            date_from: ZERO_TIME,
            date_to: ZERO_TIME,
            build_reason: String::new(),
            request_id: Uuid::nil(),
            offset: 0,
        }
    }
}

/// FROM and WHERE shared by the page and the count, as in Coder's auditlogs.sql: the same
/// joins, one `CASE WHEN <set> THEN <condition> ELSE true END` term per filter.
const FROM_WHERE: &str = r#"
FROM audit_logs
LEFT JOIN users ON audit_logs.user_id = users.id
LEFT JOIN organizations ON audit_logs.organization_id = organizations.id
LEFT JOIN workspaces
    ON audit_logs.resource_type = 'workspace' AND audit_logs.resource_id = workspaces.id
LEFT JOIN workspace_builds
    ON audit_logs.resource_type = 'workspace_build' AND audit_logs.resource_id = workspace_builds.id
LEFT JOIN workspace_builds wb_build1
    ON audit_logs.resource_type = 'workspace' AND audit_logs.action = 'create'
    AND workspaces.id = wb_build1.workspace_id AND wb_build1.build_number = 1
WHERE
    CASE WHEN $1::text != '' THEN audit_logs.resource_type = $1::resource_type ELSE true END
    AND CASE WHEN $2::uuid != '00000000-0000-0000-0000-000000000000'::uuid
        THEN audit_logs.resource_id = $2 ELSE true END
    AND CASE WHEN $3::uuid != '00000000-0000-0000-0000-000000000000'::uuid
        THEN audit_logs.organization_id = $3 ELSE true END
    AND CASE WHEN $4::text != '' THEN audit_logs.resource_target = $4 ELSE true END
    AND CASE WHEN $5::text != '' THEN audit_logs.action = $5::audit_action ELSE true END
    AND CASE WHEN $6::text != '' THEN audit_logs.user_id = (
        SELECT id FROM users WHERE lower(username) = lower($6) AND deleted = false) ELSE true END
    AND CASE WHEN $7::text != '' THEN users.email = $7 ELSE true END
    AND CASE WHEN $8::timestamptz != '0001-01-01 00:00:00Z' THEN audit_logs."time" >= $8 ELSE true END
    AND CASE WHEN $9::timestamptz != '0001-01-01 00:00:00Z' THEN audit_logs."time" <= $9 ELSE true END
    AND CASE WHEN $10::text != ''
        THEN COALESCE(workspace_builds.reason::text, wb_build1.reason::text) = $10 ELSE true END
    AND CASE WHEN $11::uuid != '00000000-0000-0000-0000-000000000000'::uuid
        THEN audit_logs.request_id = $11 ELSE true END
"#;

fn page_sql() -> String {
    format!(
        r#"SELECT audit_logs.id, audit_logs."time", audit_logs.user_id, audit_logs.organization_id,
    audit_logs.ip, audit_logs.user_agent, audit_logs.resource_type, audit_logs.resource_id,
    audit_logs.resource_target, audit_logs.action, audit_logs.diff, audit_logs.status_code,
    audit_logs.additional_fields, audit_logs.request_id, audit_logs.resource_icon,
    users.username AS user_username, users.name AS user_name, users.email AS user_email,
    users.created_at AS user_created_at, users.updated_at AS user_updated_at,
    users.last_seen_at AS user_last_seen_at, users.status AS user_status,
    users.login_type AS user_login_type, users.rbac_roles AS user_roles,
    users.avatar_url AS user_avatar_url, users.deleted AS user_deleted,
    users.quiet_hours_schedule AS user_quiet_hours_schedule,
    COALESCE(organizations.name, '') AS organization_name,
    COALESCE(organizations.display_name, '') AS organization_display_name,
    COALESCE(organizations.icon, '') AS organization_icon
{FROM_WHERE}
ORDER BY audit_logs."time" DESC
LIMIT COALESCE(NULLIF($12::int, 0), 100) OFFSET $13::int"#
    )
}

fn count_sql() -> String {
    format!(
        "SELECT count(*) FROM (SELECT 1 {FROM_WHERE} LIMIT {}) AS limited",
        COUNT_CAP + 1
    )
}

/// One client of Coder's database, with both queries prepared, as Coder's driver does.
pub struct CoderClient {
    client: tokio_postgres::Client,
    page: Statement,
    count: Statement,
}

impl CoderClient {
    pub async fn connect(port: u16) -> Result<Self, String> {
        let client = connect(port).await?;
        let page = client
            .prepare(&page_sql())
            .await
            .map_err(|error| format!("prepare the page query: {error}"))?;
        let count = client
            .prepare(&count_sql())
            .await
            .map_err(|error| format!("prepare the count query: {error}"))?;
        Ok(Self {
            client,
            page,
            count,
        })
    }

    /// The page, then the capped count, as two round trips (Coder's API runs them separately).
    pub async fn page_and_count(&self, filter: &CoderFilter, limit: i32) -> Result<usize, String> {
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 11] = [
            &filter.resource_type,
            &filter.resource_id,
            &filter.organization_id,
            &filter.resource_target,
            &filter.action,
            &filter.username,
            &filter.email,
            &filter.date_from,
            &filter.date_to,
            &filter.build_reason,
            &filter.request_id,
        ];
        let mut page_params = params.to_vec();
        page_params.push(&limit);
        page_params.push(&filter.offset);
        let rows = self
            .client
            .query(&self.page, &page_params)
            .await
            .map_err(|error| format!("coder page query: {error}"))?;
        let count: i64 = self
            .client
            .query_one(&self.count, &params)
            .await
            .map_err(|error| format!("coder count query: {error}"))?
            .get(0);
        debug_assert!(count <= COUNT_CAP + 1);
        Ok(rows.len())
    }
}

pub async fn connect(port: u16) -> Result<tokio_postgres::Client, String> {
    let (client, connection) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={port} user=postgres dbname={DATABASE}"),
        NoTls,
    )
    .await
    .map_err(|error| format!("connect to postgres on {port}: {error}"))?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            eprintln!("postgres connection: {error}");
        }
    });
    Ok(client)
}

/// The bench's PostgreSQL, started by `deploy/local/postgres.sh`; stopped on drop.
pub struct Anchor {
    pub port: u16,
    script: PathBuf,
}

impl Anchor {
    pub fn start(repo: &Path) -> Result<Self, String> {
        let port = std::env::var("AUDITLOG_BENCH_POSTGRES_PORT")
            .ok()
            .and_then(|value| value.parse().ok())
            .unwrap_or(DEFAULT_PORT);
        let script = repo.join("deploy/local/postgres.sh");
        let status = Command::new(&script)
            .arg("start")
            .env("AUDITLOG_BENCH_POSTGRES_PORT", port.to_string())
            .status()
            .map_err(|error| format!("run {}: {error}", script.display()))?;
        if !status.success() {
            return Err(format!("{} start failed: {status}", script.display()));
        }
        Ok(Self { port, script })
    }

    /// Loads the events unless the marker says these very events are there.
    pub async fn ensure_loaded(
        &self,
        repo: &Path,
        seed: u64,
        generator: TrafficGenerator,
    ) -> Result<(), String> {
        let num_events = generator.event_count();
        let client = connect(self.port).await?;
        let marker = client
            .query_opt(
                "SELECT 1 FROM pg_tables WHERE tablename = 'bench_load'",
                &[],
            )
            .await
            .map_err(|error| error.to_string())?;
        if marker.is_some() {
            let loaded = client
                .query_opt(
                    "SELECT 1 FROM bench_load WHERE seed = $1 AND events = $2",
                    &[&(seed as i64), &(num_events as i64)],
                )
                .await
                .map_err(|error| error.to_string())?;
            if loaded.is_some() {
                println!("postgres: reusing the {num_events} events of seed {seed}");
                return Ok(());
            }
        }
        let schema = std::fs::read_to_string(repo.join("deploy/local/postgres/coder-schema.sql"))
            .map_err(|error| format!("read coder-schema.sql: {error}"))?;
        let indexes = std::fs::read_to_string(repo.join("deploy/local/postgres/coder-indexes.sql"))
            .map_err(|error| format!("read coder-indexes.sql: {error}"))?;
        let started = Instant::now();
        let mut client = client;
        let transaction = client
            .transaction()
            .await
            .map_err(|error| error.to_string())?;
        // Tables made in the loading transaction: with wal_level=minimal, COPY skips the WAL.
        transaction
            .batch_execute(&format!(
                "DROP TABLE IF EXISTS bench_load; CREATE TABLE bench_load (seed bigint, events bigint); {schema}"
            ))
            .await
            .map_err(|error| format!("coder-schema.sql: {error}"))?;

        let (chunk_tx, mut chunk_rx) = tokio::sync::mpsc::channel::<Bytes>(4);
        let encoder = std::thread::spawn(move || -> Referenced {
            let mut referenced = Referenced::default();
            let mut chunk = String::with_capacity(COPY_CHUNK_BYTES + 64 * 1024);
            for event in generator {
                push_audit_log(&mut chunk, &event);
                referenced.note(&event);
                if chunk.len() >= COPY_CHUNK_BYTES
                    && chunk_tx
                        .blocking_send(Bytes::from(std::mem::take(&mut chunk)))
                        .is_err()
                {
                    return referenced;
                }
            }
            if !chunk.is_empty() {
                let _ = chunk_tx.blocking_send(Bytes::from(chunk));
            }
            referenced
        });
        let sink = transaction
            .copy_in::<_, Bytes>(AUDIT_LOGS_COPY)
            .await
            .map_err(|error| format!("copy audit_logs: {error}"))?;
        futures::pin_mut!(sink);
        let mut sent_bytes = 0_usize;
        while let Some(chunk) = chunk_rx.recv().await {
            let before = sent_bytes;
            sent_bytes += chunk.len();
            sink.send(chunk)
                .await
                .map_err(|error| format!("copy audit_logs: {error}"))?;
            if before >> 30 != sent_bytes >> 30 {
                println!("  postgres: copied {} GiB of audit_logs", sent_bytes >> 30);
            }
        }
        let copied = sink
            .finish()
            .await
            .map_err(|error| format!("copy audit_logs: {error}"))?;
        let referenced = encoder
            .join()
            .map_err(|_| "postgres encoder thread panicked".to_owned())?;
        println!(
            "  postgres: copied {copied} audit_logs rows in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        for (statement, text) in referenced.copies() {
            let sink = transaction
                .copy_in::<_, Bytes>(statement.as_str())
                .await
                .map_err(|error| format!("{statement}: {error}"))?;
            futures::pin_mut!(sink);
            sink.send(Bytes::from(text))
                .await
                .map_err(|error| format!("{statement}: {error}"))?;
            sink.finish()
                .await
                .map_err(|error| format!("{statement}: {error}"))?;
        }
        transaction
            .commit()
            .await
            .map_err(|error| error.to_string())?;
        let indexed = Instant::now();
        client
            .batch_execute(&indexes)
            .await
            .map_err(|error| format!("coder-indexes.sql: {error}"))?;
        client
            .batch_execute("ANALYZE")
            .await
            .map_err(|error| format!("analyze: {error}"))?;
        client
            .execute(
                "INSERT INTO bench_load VALUES ($1, $2)",
                &[&(seed as i64), &(num_events as i64)],
            )
            .await
            .map_err(|error| error.to_string())?;
        println!(
            "postgres: loaded {num_events} events in {:.1} s (copy {:.1} s, indexes + analyze {:.1} s)",
            started.elapsed().as_secs_f64(),
            (indexed - started).as_secs_f64(),
            indexed.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// Rows and on-disk size of audit_logs with its indexes.
    pub async fn describe(&self) -> Result<String, String> {
        let client = connect(self.port).await?;
        let row = client
            .query_one(
                "SELECT (SELECT count(*) FROM audit_logs), \
                 pg_size_pretty(pg_total_relation_size('audit_logs'))",
                &[],
            )
            .await
            .map_err(|error| error.to_string())?;
        let (rows, size): (i64, String) = (row.get(0), row.get(1));
        Ok(format!("{rows} rows in audit_logs, {size} with indexes"))
    }
}

impl Drop for Anchor {
    fn drop(&mut self) {
        let _ = Command::new(&self.script)
            .arg("stop")
            .env("AUDITLOG_BENCH_POSTGRES_PORT", self.port.to_string())
            .status();
    }
}

/// The rows of the other tables that the events reference, first sighting wins.
#[derive(Default)]
struct Referenced {
    users: HashMap<Uuid, (String, String, String, OffsetDateTime)>,
    organizations: HashMap<Uuid, (String, String, String)>,
    workspaces: HashMap<Uuid, (Uuid, Uuid, String)>,
    builds: HashMap<Uuid, (Uuid, i32, String)>,
    build_keys: HashSet<(Uuid, i32)>,
}

impl Referenced {
    fn note(&mut self, event: &AuditEvent) {
        if let Some(user) = &event.user {
            self.users.entry(user.id).or_insert_with(|| {
                (
                    user.email.clone(),
                    user.username.clone(),
                    user.name.clone(),
                    event.time,
                )
            });
        }
        if let Some(organization) = &event.organization {
            self.organizations
                .entry(organization.id)
                .or_insert_with(|| {
                    (
                        organization.name.clone(),
                        organization.display_name.clone(),
                        organization.icon.clone(),
                    )
                });
        }
        let reason = event
            .build_reason
            .as_ref()
            .map(|reason| reason.as_str().to_owned());
        match event.resource_type {
            ResourceType::Workspace => {
                self.note_workspace(event.resource_id, event, &event.resource_target);
                if event.action == Action::Create
                    && let Some(reason) = reason
                {
                    // Build 1 of the workspace, whose reason Coder reports for its creation.
                    let build_id = Uuid::from_u128(event.resource_id.as_u128() ^ u128::MAX);
                    self.note_build(build_id, event.resource_id, 1, reason);
                }
            }
            ResourceType::WorkspaceBuild => {
                let field = |key: &str| {
                    event
                        .additional_fields
                        .get(key)
                        .and_then(|value| value.as_str())
                };
                let workspace_id = field("workspace_id").and_then(|text| text.parse().ok());
                let build_number = field("build_number").and_then(|text| text.parse().ok());
                if let (Some(workspace_id), Some(build_number), Some(reason)) =
                    (workspace_id, build_number, reason)
                {
                    let name = field("workspace_name").unwrap_or_default().to_owned();
                    self.note_workspace(workspace_id, event, &name);
                    self.note_build(event.resource_id, workspace_id, build_number, reason);
                }
            }
            _ => {}
        }
    }

    fn note_workspace(&mut self, id: Uuid, event: &AuditEvent, name: &str) {
        self.workspaces.entry(id).or_insert_with(|| {
            let name: String = name.chars().take(64).collect();
            (event.user_id(), event.organization_id(), name)
        });
    }

    fn note_build(&mut self, id: Uuid, workspace_id: Uuid, number: i32, reason: String) {
        // Coder's (workspace_id, build_number) is unique; the generator does not promise it.
        if self.build_keys.insert((workspace_id, number)) {
            self.builds.insert(id, (workspace_id, number, reason));
        }
    }

    /// COPY statements with their text-format bodies, in an order that is deterministic.
    fn copies(self) -> Vec<(String, String)> {
        let mut users = String::new();
        let mut taken_usernames = HashSet::new();
        let mut sorted_users: Vec<_> = self.users.into_iter().collect();
        sorted_users.sort_by_key(|(id, _)| *id);
        for (id, (email, username, name, seen)) in sorted_users {
            // Usernames are unique among live users; a second holder is a deleted user.
            let deleted = !taken_usernames.insert(username.to_lowercase());
            let seen = seen.format(&Rfc3339).unwrap_or_default();
            let _ = write!(users, "{id}\t");
            push_text(&mut users, &email);
            users.push('\t');
            push_text(&mut users, &username);
            users.push('\t');
            push_text(&mut users, &name);
            let _ = writeln!(users, "\t{seen}\t{seen}\t{deleted}");
        }
        let mut organizations = String::new();
        for (id, (name, display_name, icon)) in self.organizations {
            let _ = write!(organizations, "{id}\t");
            push_text(&mut organizations, &name);
            organizations.push('\t');
            push_text(&mut organizations, &display_name);
            organizations.push('\t');
            push_text(&mut organizations, &icon);
            organizations.push('\n');
        }
        let mut workspaces = String::new();
        for (id, (owner_id, organization_id, name)) in self.workspaces {
            let _ = write!(workspaces, "{id}\t{owner_id}\t{organization_id}\t");
            push_text(&mut workspaces, &name);
            workspaces.push('\n');
        }
        let mut builds = String::new();
        for (id, (workspace_id, number, reason)) in self.builds {
            let _ = writeln!(builds, "{id}\t{workspace_id}\t{number}\t{reason}");
        }
        vec![
            (
                "COPY users (id, email, username, name, created_at, updated_at, deleted) FROM STDIN"
                    .to_owned(),
                users,
            ),
            (
                "COPY organizations (id, name, display_name, icon) FROM STDIN".to_owned(),
                organizations,
            ),
            (
                "COPY workspaces (id, owner_id, organization_id, name) FROM STDIN".to_owned(),
                workspaces,
            ),
            (
                "COPY workspace_builds (id, workspace_id, build_number, reason) FROM STDIN"
                    .to_owned(),
                builds,
            ),
        ]
    }
}

/// One audit_logs row in COPY's text format.
pub fn push_audit_log(out: &mut String, event: &AuditEvent) {
    let time = event.time.format(&Rfc3339).unwrap_or_default();
    let _ = write!(
        out,
        "{}\t{time}\t{}\t{}\t",
        event.id,
        event.user_id(),
        event.organization_id()
    );
    match event.ip {
        Some(ip) => {
            let _ = write!(out, "{ip}\t");
        }
        None => out.push_str("\\N\t"),
    }
    let user_agent: String = event.user_agent.chars().take(256).collect();
    push_text(out, &user_agent);
    let _ = write!(
        out,
        "\t{}\t{}\t",
        event.resource_type.as_str(),
        event.resource_id
    );
    push_text(out, &event.resource_target);
    let _ = write!(out, "\t{}\t", event.action.as_str());
    push_text(out, &serde_json::to_string(&event.diff).unwrap_or_default());
    let _ = write!(out, "\t{}\t", event.status_code);
    push_text(
        out,
        &serde_json::to_string(&event.additional_fields).unwrap_or_default(),
    );
    let _ = write!(out, "\t{}\t", event.request_id);
    push_text(out, &event.resource_icon);
    out.push('\n');
}

/// A value in COPY's text format: backslash, tab, newline and carriage return escaped.
fn push_text(out: &mut String, value: &str) {
    for character in value.chars() {
        match character {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            other => out.push(other),
        }
    }
}
