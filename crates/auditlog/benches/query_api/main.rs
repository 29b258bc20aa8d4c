//! End-to-end query benchmark: 10M generated events, the real `auditlog serve` (release
//! build), p50/p95 latency through HTTP of a page of 25 plus the capped count, against the
//! anchor: the same events in Coder's PostgreSQL schema, queried with Coder's page query and
//! capped count (`coder.rs`).
//!
//! ```text
//!  TrafficGenerator(seed) ─► RowBinary chunks (500k) ─► audit_bench.audit_logs   (once; reused)
//!                         └► COPY ─► PostgreSQL :55432, Coder's schema            (once; reused)
//!  auditlog serve ◄── GET /api/v2/audit?q=..&limit=25 ──┐
//!  Coder's GetAuditLogsOffset + CountAuditLogs ◄────────┴── this bench, each in turn
//! ```
//!
//! The ClickHouse table is loaded by plain inserts in time order, as continuous ingest writes
//! it, and never `OPTIMIZE`d: its active part count is printed. Filter values are read from
//! the data itself (deterministic: fixed seed, ordered picks). Baselines from the same run:
//! `SELECT 1` straight to ClickHouse and `GET /healthz`. Needs the local stack (`make up`).
//!
//! Environment: `AUDITLOG_CLICKHOUSE_URL` (default `http://127.0.0.1:8123`),
//! `AUDITLOG_BENCH_DATABASE` (default `audit_bench`), `AUDITLOG_BENCH_EVENTS` (default
//! 10,000,000), `AUDITLOG_BENCH_ITERATIONS` (default 20), `AUDITLOG_BENCH_POSTGRES` (default 1;
//! 0 measures ours alone, e.g. at 100M events, whose PostgreSQL copy the disk would not hold),
//! `AUDITLOG_BENCH_POSTGRES_PORT` (default 55432), `AUDITLOG_BENCH_CLIENTS` (concurrent
//! clients, default 16; 0 skips that round), `AUDITLOG_BENCH_ROUNDS` (a comma-separated subset
//! of `single,concurrent,live,export`, default all).
//!
//! Rounds: `single` times each query in turn with one client per side; `concurrent` with 16
//! clients per side; `live` again with one client while 5,000 events/s are ingested on both
//! sides (`live.rs`), then freshness (send → visible through the API, p50 and p99); `export`
//! streams a week as NDJSON.

mod coder;
mod live;
mod stats;

use std::io::Write as _;
use std::time::{Duration, Instant};

use auditlog_store::{COLUMNS, RowEncoder, SchemaTarget};
use auditlog_testkit::{
    AuditlogCommand, AuditlogProcess, HttpClient, HttpResponse, free_port, percent_encode,
    repo_root,
};
use auditlog_traffic::TrafficGenerator;
use bytes::Bytes;
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use time::macros::{date, datetime};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::coder::{Anchor, CoderClient, CoderFilter};
use crate::live::{LiveTraffic, remove_live_rows};
use crate::stats::{
    ROUNDS_PER_CLIENT, Row, Stats, concurrently, measure, millis, note_failure, print_table,
};

const DEFAULT_EVENTS: u64 = 10_000_000;
const DEFAULT_ITERATIONS: usize = 20;
const DEFAULT_CLIENTS: usize = 16;
const LOAD_CHUNK_ROWS: usize = 500_000;
/// The generator's seed; live traffic uses the next one.
const SEED: u64 = 42;
/// Every round, in order; `AUDITLOG_BENCH_ROUNDS` picks some.
const ALL_ROUNDS: &str = "single,concurrent,live,export";
const LIVE_EVENTS_PER_SECOND: u32 = 5_000;
const LIVE_WARM_UP: Duration = Duration::from_secs(5);
const FRESHNESS_PROBES: usize = 40;
const FRESHNESS_TARGET: Duration = Duration::from_secs(2);
const PAGE_LIMIT: u64 = 25;
const DEEP_PAGE: u64 = 200;
/// The issue's targets, reported and never asserted.
const TARGET_P95: Duration = Duration::from_millis(50);
const TARGET_P95_AT_100M: Duration = Duration::from_millis(100);
const TOKEN: &str = "bench-token";
const TABLE: &str = "audit_logs";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if let Err(error) = runtime.block_on(run()) {
        eprintln!("query_api bench failed: {error}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let url =
        std::env::var("AUDITLOG_CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:8123".into());
    let database =
        std::env::var("AUDITLOG_BENCH_DATABASE").unwrap_or_else(|_| "audit_bench".into());
    let num_events: u64 = env_or("AUDITLOG_BENCH_EVENTS", DEFAULT_EVENTS);
    let iterations: usize = env_or("AUDITLOG_BENCH_ITERATIONS", DEFAULT_ITERATIONS);
    let with_postgres = env_or("AUDITLOG_BENCH_POSTGRES", 1_u8) != 0;
    let num_clients: usize = env_or("AUDITLOG_BENCH_CLIENTS", DEFAULT_CLIENTS);
    let root = clickhouse::Client::default().with_url(&url);
    root.query("SELECT 1")
        .fetch_one::<u8>()
        .await
        .map_err(|error| format!("clickhouse at {url} is not reachable (make up): {error}"))?;

    println!(
        "query_api: {num_events} events (seed {SEED}) in {database}.{TABLE}, {iterations} iterations per query{}",
        if with_postgres {
            ", against Coder's queries on PostgreSQL"
        } else {
            ", ours alone (AUDITLOG_BENCH_POSTGRES=0)"
        }
    );
    let client = root.clone().with_database(&database);
    ensure_loaded(&root, &client, &database, num_events).await?;
    println!("clickhouse: {}", describe_table(&client).await?);

    let repo = repo_root();
    let anchor = if with_postgres {
        let anchor = Anchor::start(&repo)?;
        anchor
            .ensure_loaded(&repo, SEED, generator(num_events))
            .await?;
        println!("postgres: {}", anchor.describe().await?);
        Some(anchor)
    } else {
        None
    };
    // Live rows an interrupted run left behind.
    remove_live_rows(&client, anchor.as_ref().map(|anchor| anchor.port)).await?;
    let coder = match &anchor {
        Some(anchor) => Some(CoderClient::connect(anchor.port).await?),
        None => None,
    };

    let server = Server::start(&url, &database).await?;
    let http = HttpClient::new();

    let cases = cases(&client, &http, &server).await?;
    let clickhouse_ping = measure(iterations, || async {
        root.query("SELECT 1")
            .fetch_one::<u8>()
            .await
            .map(|_| ())
            .map_err(|error| error.to_string())
    })
    .await?;
    let healthz = measure(iterations, || get(&http, server.port, "/healthz")).await?;
    println!(
        "baselines: SELECT 1 to ClickHouse p50 {:.1} ms; GET /healthz p50 {:.1} ms",
        millis(clickhouse_ping.p50),
        millis(healthz.p50)
    );

    let target = if num_events > DEFAULT_EVENTS {
        TARGET_P95_AT_100M
    } else {
        TARGET_P95
    };
    let rounds = std::env::var("AUDITLOG_BENCH_ROUNDS").unwrap_or_else(|_| ALL_ROUNDS.to_owned());
    let round = |name: &str| rounds.split(',').any(|wanted| wanted.trim() == name);
    if round("single") {
        println!();
        println!("one client, each in turn (page of {PAGE_LIMIT} + capped count):");
        let rows = one_client_round(&cases, &http, &server, coder.as_ref(), iterations).await?;
        print_table(&rows, target);
    }

    if round("concurrent") && num_clients > 0 {
        println!();
        println!(
            "{num_clients} concurrent clients, {ROUNDS_PER_CLIENT} requests each per query and side (ours, then Coder's):"
        );
        let coder_clients = match &anchor {
            Some(anchor) => {
                let mut clients = Vec::with_capacity(num_clients);
                for _ in 0..num_clients {
                    clients.push(std::sync::Arc::new(
                        CoderClient::connect(anchor.port).await?,
                    ));
                }
                Some(clients)
            }
            None => None,
        };
        let mut rows = Vec::new();
        for case in &cases {
            let ours = concurrently(&case.label, "auditlog", num_clients, |_| {
                let (http, path, port) = (http.clone(), case.path.clone(), server.port);
                async move { get(&http, port, &path).await }
            })
            .await?;
            let theirs = match &coder_clients {
                Some(clients) => Some(
                    concurrently(&case.label, "Coder", num_clients, |index| {
                        let (client, filter) = (clients[index].clone(), case.coder.clone());
                        async move {
                            client
                                .page_and_count(&filter, PAGE_LIMIT as i32)
                                .await
                                .map(|_| ())
                        }
                    })
                    .await?,
                ),
                None => None,
            };
            rows.push(Row {
                label: case.label.clone(),
                scan_bound: case.scan_bound,
                ours,
                coder: theirs,
            });
        }
        print_table(&rows, target);
    }

    if round("live") {
        let coder_port = anchor.as_ref().map(|anchor| anchor.port);
        let live = LiveTraffic::start(&url, &database, LIVE_EVENTS_PER_SECOND, coder_port).await?;
        let started = Instant::now();
        // The ingester joins its group and lands its first batches before anything is timed.
        tokio::time::sleep(LIVE_WARM_UP).await;
        println!();
        println!(
            "one client, each in turn, while {LIVE_EVENTS_PER_SECOND} events/s are ingested (ours: SDK → Kafka → auditlog ingest; Coder: COPY every 10 ms):"
        );
        let measured = one_client_round(&cases, &http, &server, coder.as_ref(), iterations).await;
        let freshness = match &measured {
            Ok(_) => {
                live.freshness(FRESHNESS_PROBES, |request_id| {
                    visible(&http, server.port, request_id)
                })
                .await
            }
            Err(error) => Err(error.clone()),
        };
        let stopped = live.stop().await;
        let elapsed = started.elapsed().as_secs_f64();
        remove_live_rows(&client, coder_port).await?;
        print_table(&measured?, target);
        let (paced, coder_rows) = stopped?;
        println!(
            "live: {} events sent in {elapsed:.0} s ({:.0} events/s); Coder's table got {coder_rows} ({} skipped while its writer was behind); removed again afterwards",
            paced.sent,
            paced.sent as f64 / elapsed,
            paced.coder_skipped
        );
        let freshness = Stats::of(freshness?);
        println!(
            "freshness (send → visible through GET /api/v2/audit, {FRESHNESS_PROBES} probes): p50 {:.0} ms, p99 {:.0} ms; target p99 <= {} ms: {}",
            millis(freshness.p50),
            millis(freshness.p99),
            FRESHNESS_TARGET.as_millis(),
            if freshness.p99 <= FRESHNESS_TARGET {
                "yes"
            } else {
                "NO"
            }
        );
    }

    if round("export") {
        export_report(&http, &server).await?;
    }
    drop(coder);
    drop(anchor);
    Ok(())
}

/// Each case in turn: Coder's page + count, then our API, `iterations` times.
async fn one_client_round(
    cases: &[Case],
    http: &HttpClient,
    server: &Server,
    coder: Option<&CoderClient>,
    iterations: usize,
) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for case in cases {
        // Once unmeasured on each side: caches (the organization directory, page caches).
        get(http, server.port, &case.path).await?;
        if let Some(coder) = coder {
            coder.page_and_count(&case.coder, PAGE_LIMIT as i32).await?;
        }
        let mut ours = Vec::with_capacity(iterations);
        let mut theirs = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            if let Some(coder) = coder {
                let started = Instant::now();
                let outcome = coder.page_and_count(&case.coder, PAGE_LIMIT as i32).await;
                theirs.push(started.elapsed());
                note_failure(&case.label, "Coder", outcome.map(|_| ()));
            }
            let started = Instant::now();
            let outcome = get(http, server.port, &case.path).await;
            ours.push(started.elapsed());
            note_failure(&case.label, "auditlog", outcome);
        }
        rows.push(Row {
            label: case.label.clone(),
            scan_bound: case.scan_bound,
            ours: Stats::of(ours),
            coder: coder.map(|_| Stats::of(theirs)),
        });
    }
    Ok(rows)
}

/// Whether the event with `request_id` can be read through our API yet.
async fn visible(http: &HttpClient, port: u16, request_id: Uuid) -> Result<bool, String> {
    let path = format!(
        "/api/v2/audit?limit=1&q={}",
        percent_encode(&format!("request_id:{request_id}"))
    );
    let body = fetch(http, port, &path).await?.body;
    let page: serde_json::Value =
        serde_json::from_slice(&body).map_err(|error| format!("GET {path}: {error}"))?;
    Ok(page["count"].as_u64().unwrap_or(0) > 0)
}

fn generator(num_events: u64) -> TrafficGenerator {
    TrafficGenerator::new(SEED).with_time_span(
        datetime!(2025-01-01 00:00 UTC),
        datetime!(2025-04-01 00:00 UTC),
        num_events,
    )
}

/// Active parts and rows of the bench table (continuous ingest leaves several parts).
async fn describe_table(client: &clickhouse::Client) -> Result<String, String> {
    let (parts, rows) = client
        .query(
            "SELECT count(), sum(rows) FROM system.parts \
             WHERE active AND database = currentDatabase() AND table = ?",
        )
        .bind(TABLE)
        .fetch_one::<(u64, u64)>()
        .await
        .map_err(|error| format!("system.parts: {error}"))?;
    Ok(format!(
        "{rows} rows in {parts} active parts (no OPTIMIZE ... FINAL)"
    ))
}

/// Loads the events unless the table already holds at least that many.
async fn ensure_loaded(
    root: &clickhouse::Client,
    client: &clickhouse::Client,
    database: &str,
    num_events: u64,
) -> Result<(), String> {
    let target = SchemaTarget {
        database: database.to_owned(),
        table: TABLE.to_owned(),
        retention_days: None,
        cluster: None,
    };
    auditlog_store::migrate(&root.clone().with_database("default"), &target)
        .await
        .map_err(|error| format!("migrate: {error}"))?;
    let existing = client
        .query("SELECT count() FROM audit_logs")
        .fetch_one::<u64>()
        .await
        .map_err(|error| error.to_string())?;
    if existing >= num_events {
        println!("reusing {existing} rows already loaded");
        return Ok(());
    }
    if existing > 0 {
        // A partial load (an interrupted run): start over, the generator is deterministic.
        client
            .query("TRUNCATE TABLE audit_logs")
            .execute()
            .await
            .map_err(|error| error.to_string())?;
    }
    let started = Instant::now();
    // Encoding runs on its own thread, one chunk ahead of the insert.
    let (chunk_tx, mut chunk_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(2);
    let encoder = std::thread::spawn(move || {
        let generator = generator(num_events);
        let mut encoder = RowEncoder::default();
        let mut rows = Vec::new();
        let mut in_chunk = 0;
        for event in generator {
            encoder.encode(&event, &mut rows);
            in_chunk += 1;
            if in_chunk == LOAD_CHUNK_ROWS {
                if chunk_tx.blocking_send(std::mem::take(&mut rows)).is_err() {
                    return;
                }
                in_chunk = 0;
            }
        }
        if in_chunk > 0 {
            let _ = chunk_tx.blocking_send(rows);
        }
    });
    let statement = format!(
        "INSERT INTO {TABLE} ({}) FORMAT RowBinary",
        COLUMNS.join(", ")
    );
    let mut loaded = 0_u64;
    while let Some(rows) = chunk_rx.recv().await {
        let mut insert = client.insert_formatted_with(statement.clone());
        insert
            .send(Bytes::from(rows))
            .await
            .map_err(|error| format!("insert: {error}"))?;
        insert
            .end()
            .await
            .map_err(|error| format!("insert: {error}"))?;
        loaded += LOAD_CHUNK_ROWS as u64;
        print!("\r  loaded {} rows", loaded.min(num_events));
        let _ = std::io::stdout().flush();
    }
    encoder
        .join()
        .map_err(|_| "encoder thread panicked".to_owned())?;
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "\rloaded {num_events} events in {elapsed:.1} s ({:.0} events/s: generate + RowBinary + insert)",
        num_events as f64 / elapsed
    );
    Ok(())
}

/// One query of the benchmark: our API path and the same filter as Coder's parameters.
struct Case {
    label: String,
    path: String,
    coder: CoderFilter,
    /// Coder has no index to narrow it (rare values, build reasons, long ranges).
    scan_bound: bool,
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
async fn cases(
    client: &clickhouse::Client,
    http: &HttpClient,
    server: &Server,
) -> Result<Vec<Case>, String> {
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
        "SELECT toString(request_id) FROM audit_logs WHERE time >= '2025-02-15 00:00:00' \
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
    let one_day = (date!(2025 - 02 - 10), date!(2025 - 02 - 10));
    let thirty_days = (date!(2025 - 02 - 01), date!(2025 - 03 - 02));
    let day_text = |day: Date| day.to_string();
    cases.extend([
        filter_case("username (busy user)", &[("username", username)], false),
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
    by_cursor.coder = by_offset.coder.clone();
    cases.push(by_offset);
    cases.push(by_cursor);
    Ok(cases)
}

/// An export of one week, for throughput and the server's peak memory.
async fn export_report(http: &HttpClient, server: &Server) -> Result<(), String> {
    let before = server.peak_rss_kib();
    let started = Instant::now();
    let path = format!(
        "/api/v2/audit/export?q={}",
        percent_encode("date_from:2025-02-01 date_to:2025-02-07")
    );
    let response = http
        .send(server.port, &path, Some(TOKEN), &[])
        .await
        .map_err(|error| error.to_string())?;
    let mut body = response.into_body();
    let (mut bytes, mut lines) = (0_u64, 0_u64);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| error.to_string())?;
        if let Some(data) = frame.data_ref() {
            bytes += data.len() as u64;
            lines += data.iter().filter(|byte| **byte == b'\n').count() as u64;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!();
    println!(
        "export (one week, ndjson): {lines} events, {:.0} MiB in {elapsed:.1} s ({:.0} events/s); serve peak RSS {} MiB before, {} MiB after",
        bytes as f64 / (1024.0 * 1024.0),
        lines as f64 / elapsed,
        before.map_or("?".to_owned(), |kib| (kib / 1024).to_string()),
        server
            .peak_rss_kib()
            .map_or("?".to_owned(), |kib| (kib / 1024).to_string()),
    );
    Ok(())
}

async fn get(http: &HttpClient, port: u16, path: &str) -> Result<(), String> {
    fetch(http, port, path).await.map(|_| ())
}

/// GET with the bench token; an answer other than 2xx is an error too.
async fn fetch(http: &HttpClient, port: u16, path: &str) -> Result<HttpResponse, String> {
    let response = http
        .get(port, path, Some(TOKEN))
        .await
        .map_err(|error| error.to_string())?;
    if !response.status.is_success() {
        return Err(format!(
            "GET {path}: {}: {}",
            response.status,
            response.text()
        ));
    }
    Ok(response)
}

/// The `auditlog serve` child process.
struct Server {
    port: u16,
    process: AuditlogProcess,
    config_path: std::path::PathBuf,
}

impl Server {
    /// Starts it with the bench token; waits until it answers `/healthz`.
    async fn start(url: &str, database: &str) -> Result<Self, String> {
        let port = free_port();
        let config_path =
            std::env::temp_dir().join(format!("auditlog-bench-{}.toml", std::process::id()));
        std::fs::write(
            &config_path,
            format!(
                "[[api.tokens]]\nname = \"bench\"\nsha256 = \"{}\"\nrole = \"auditor\"\n",
                hex::encode(Sha256::digest(TOKEN.as_bytes()))
            ),
        )
        .map_err(|error| error.to_string())?;
        let mut process = AuditlogCommand::new(env!("CARGO_BIN_EXE_auditlog"), "bench_serve")
            .arg("serve")
            .env("AUDITLOG_CONFIG", config_path.display().to_string())
            .env("AUDITLOG_CLICKHOUSE_URL", url)
            .env("AUDITLOG_CLICKHOUSE_DATABASE", database)
            .env("AUDITLOG_API_LISTEN", format!("127.0.0.1:{port}"))
            .log_level("warn")
            .ops_port(port)
            .spawn();
        process
            .wait_until_ok("/healthz", Duration::from_secs(30))
            .await
            .map_err(|error| error.to_string())?;
        Ok(Self {
            port,
            process,
            config_path,
        })
    }

    /// The server's peak resident memory (Linux `VmHWM`).
    fn peak_rss_kib(&self) -> Option<u64> {
        self.process.peak_rss_kib()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.config_path);
    }
}
