//! End-to-end query benchmark: 10M generated events over 12 months, the real `auditlog serve`
//! (release build), p50/p95 latency through HTTP of a page of 25 plus the capped count, the
//! chart of the same filter, and username completions, against the anchor: the same events in
//! Coder's PostgreSQL schema, queried with Coder's page query and capped count (`coder.rs`).
//!
//! ```text
//!  TrafficGenerator(seed) ─► RowBinary batches (the ingester's) ─► audit_bench.audit_logs (once; reused)
//!                         └► COPY ─► PostgreSQL :55432, Coder's schema                   (once; reused)
//!  auditlog serve ◄── GET /api/v2/audit, /histogram, /suggest ──┐ Server-Timing: engine time
//!  Coder's GetAuditLogsOffset + CountAuditLogs ◄────────────────┴── this bench, each in turn
//! ```
//!
//! The ClickHouse table is loaded by inserts of the ingester's batch size in time order, as
//! continuous ingest writes them, with merges running (capped, see `load.rs`) and never
//! `OPTIMIZE`d: its active parts and partitions are printed, with the storage and the write
//! work of everything fed at insert against the table alone. Filter values are read from the
//! data itself (deterministic: fixed seed, ordered picks). Baselines from the same run:
//! `SELECT 1` straight to ClickHouse and `GET /healthz`. Each row also prints the engine's
//! own time for the slowest query of a request (the API's `Server-Timing`). Needs the local
//! stack (`make up`).
//!
//! Environment: `AUDITLOG_CLICKHOUSE_URL` (default `http://127.0.0.1:8123`),
//! `AUDITLOG_BENCH_DATABASE` (default `audit_bench`), `AUDITLOG_BENCH_EVENTS` (default
//! 10,000,000; a run above it prints each p95 against the last 10M run's, kept in
//! `target/query_api_p95_<events>.tsv`), `AUDITLOG_BENCH_ITERATIONS` (default 20),
//! `AUDITLOG_BENCH_POSTGRES` (default 1; 0 measures ours alone, e.g. at 100M events, whose
//! PostgreSQL copy the disk would not hold), `AUDITLOG_BENCH_POSTGRES_PORT` (default 55432),
//! `AUDITLOG_BENCH_CLIENTS` (concurrent clients, default 16; 0 skips that round),
//! `AUDITLOG_BENCH_ROUNDS` (a comma-separated subset of `single,concurrent,live,export`,
//! default all).
//!
//! Rounds: `single` times each query in turn with one client per side, then each filter's
//! chart and the completions; `concurrent` with 16 clients per side, and our requests/s;
//! `live` again with one client while 5,000 events/s are ingested on both sides (`live.rs`),
//! then freshness (send → visible through the API, p50 and p99); `export` streams a week as
//! NDJSON.

mod cases;
mod coder;
mod live;
mod load;
mod stats;

use std::time::{Duration, Instant};

use auditlog_testkit::{
    AuditlogCommand, AuditlogProcess, HttpClient, HttpResponse, free_port, percent_encode,
    repo_root,
};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::cases::{Case, Completion, cases};
use crate::coder::{Anchor, CoderClient};
use crate::live::{LiveTraffic, remove_live_rows};
use crate::load::{describe_table, ensure_loaded, generator, write_amplification};
use crate::stats::{
    Goal, ROUNDS_PER_CLIENT, Row, Stats, concurrently, load_p95, measure, millis, note_failure,
    print_table, save_p95,
};

const DEFAULT_EVENTS: u64 = 10_000_000;
const DEFAULT_ITERATIONS: usize = 20;
const DEFAULT_CLIENTS: usize = 16;
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
/// The issue's targets, reported and never asserted: at 10M a page's p95 is at most Coder's
/// or this, whichever is larger; while ingesting, under the live one; completions under the
/// last; 16 clients at least this many requests/s with p99 under the next.
const TARGET_FLOOR: Duration = Duration::from_millis(30);
const TARGET_LIVE: Duration = Duration::from_millis(150);
const TARGET_COMPLETION: Duration = Duration::from_millis(50);
const TARGET_CONCURRENT_RATE: f64 = 150.0;
const TARGET_CONCURRENT_P99: Duration = Duration::from_millis(500);
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
    println!(
        "{}",
        write_amplification(&root, &database, num_events).await?
    );

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

    let (cases, completions) = cases(&client, &http, &server).await?;
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

    // p95s kept per size, so that a run at 100M prints each against its 10M figure.
    let kept = |events: u64| repo.join(format!("target/query_api_p95_{events}.tsv"));
    let baseline = if num_events > DEFAULT_EVENTS {
        load_p95(&kept(DEFAULT_EVENTS))
    } else {
        None
    };
    let rounds = std::env::var("AUDITLOG_BENCH_ROUNDS").unwrap_or_else(|_| ALL_ROUNDS.to_owned());
    let round = |name: &str| rounds.split(',').any(|wanted| wanted.trim() == name);
    if round("single") {
        println!();
        println!("one client, each in turn (page of {PAGE_LIMIT} + capped count):");
        let rows =
            one_client_round(&cases, &http, &server, coder.as_ref(), iterations, true).await?;
        print_table(
            &rows,
            Goal::Coder {
                floor: TARGET_FLOOR,
            },
            baseline.as_ref(),
        );
        save_p95(&rows, &kept(num_events));
        println!();
        println!(
            "username completions, each in turn (target p95 < {} ms):",
            TARGET_COMPLETION.as_millis()
        );
        completion_round(&completions, &http, &server, iterations).await?;
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
        let (mut requests, mut busy) = (0_usize, Duration::ZERO);
        let mut worst_p99 = Duration::ZERO;
        for case in &cases {
            let started = Instant::now();
            let ours = concurrently(&case.label, "auditlog", num_clients, |_| {
                let (http, path, port) = (http.clone(), case.path.clone(), server.port);
                async move { get(&http, port, &path).await }
            })
            .await?;
            busy += started.elapsed();
            requests += num_clients * ROUNDS_PER_CLIENT;
            worst_p99 = worst_p99.max(ours.p99);
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
                engine: None,
                coder: theirs,
                chart: None,
            });
        }
        print_table(
            &rows,
            Goal::Coder {
                floor: TARGET_FLOOR,
            },
            None,
        );
        let rate = requests as f64 / busy.as_secs_f64().max(1e-9);
        println!(
            "auditlog with {num_clients} clients: {rate:.0} requests/s over {requests} requests, worst p99 {:.0} ms; target >= {TARGET_CONCURRENT_RATE:.0} requests/s with p99 < {} ms: {}",
            millis(worst_p99),
            TARGET_CONCURRENT_P99.as_millis(),
            if rate >= TARGET_CONCURRENT_RATE && worst_p99 < TARGET_CONCURRENT_P99 {
                "yes"
            } else {
                "NO"
            }
        );
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
        let measured =
            one_client_round(&cases, &http, &server, coder.as_ref(), iterations, false).await;
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
        print_table(&measured?, Goal::Under(TARGET_LIVE), None);
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

/// Each case in turn: Coder's page + count, then our API, `iterations` times; with `charts`,
/// then our chart for the same filter.
async fn one_client_round(
    cases: &[Case],
    http: &HttpClient,
    server: &Server,
    coder: Option<&CoderClient>,
    iterations: usize,
    charts: bool,
) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for case in cases {
        // Once unmeasured on each side: caches (the organization directory, page caches).
        get(http, server.port, &case.path).await?;
        if let Some(coder) = coder {
            coder.page_and_count(&case.coder, PAGE_LIMIT as i32).await?;
        }
        let mut ours = Vec::with_capacity(iterations);
        let mut engine = Vec::with_capacity(iterations);
        let mut theirs = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            if let Some(coder) = coder {
                let started = Instant::now();
                let outcome = coder.page_and_count(&case.coder, PAGE_LIMIT as i32).await;
                theirs.push(started.elapsed());
                note_failure(&case.label, "Coder", outcome.map(|_| ()));
            }
            let started = Instant::now();
            let outcome = fetch(http, server.port, &case.path).await;
            ours.push(started.elapsed());
            engine.push(engine_time(outcome.as_ref().ok()));
            note_failure(&case.label, "auditlog", outcome.map(|_| ()));
        }
        let chart = match (&case.chart, charts) {
            (Some(path), true) => Some(timed(http, server, &case.label, path, iterations).await?),
            _ => None,
        };
        rows.push(Row {
            label: case.label.clone(),
            scan_bound: case.scan_bound,
            ours: Stats::of(ours),
            engine: Some(Stats::of(engine)),
            coder: coder.map(|_| Stats::of(theirs)),
            chart,
        });
    }
    Ok(rows)
}

/// `path` once unmeasured (the chart's day census is taken on a server's first chart), then
/// `iterations` times: latency and engine time.
async fn timed(
    http: &HttpClient,
    server: &Server,
    label: &str,
    path: &str,
    iterations: usize,
) -> Result<(Stats, Stats), String> {
    let started = Instant::now();
    fetch(http, server.port, path).await?;
    let cold = started.elapsed();
    if cold > Duration::from_millis(500) {
        println!("  {label}: first request {:.0} ms (cold)", millis(cold));
    }
    let mut latency = Vec::with_capacity(iterations);
    let mut engine = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        let outcome = fetch(http, server.port, path).await;
        latency.push(started.elapsed());
        engine.push(engine_time(outcome.as_ref().ok()));
        note_failure(label, "auditlog", outcome.map(|_| ()));
    }
    Ok((Stats::of(latency), Stats::of(engine)))
}

/// Each completion prefix in turn.
async fn completion_round(
    completions: &[Completion],
    http: &HttpClient,
    server: &Server,
    iterations: usize,
) -> Result<(), String> {
    println!(
        "{:<24} {:>19} {:>10} {:>6}",
        "completion", "p50/p95 ms", "engine p95", "target"
    );
    for completion in completions {
        let (latency, engine) = timed(
            http,
            server,
            &completion.label,
            &completion.path,
            iterations,
        )
        .await?;
        println!(
            "{:<24} {:>19} {:>10} {:>6}",
            completion.label,
            format!("{:.1} / {:.1}", millis(latency.p50), millis(latency.p95)),
            format!("{:.1}", millis(engine.p95)),
            if latency.p95 < TARGET_COMPLETION {
                "yes"
            } else {
                "NO"
            }
        );
    }
    Ok(())
}

/// The slowest query's engine time from an answer's `Server-Timing` (`clickhouse;dur=ms`).
fn engine_time(response: Option<&HttpResponse>) -> Duration {
    response
        .and_then(|response| response.headers.get("server-timing"))
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("clickhouse;dur="))
        .and_then(|rest| rest.split(';').next())
        .and_then(|millis| millis.parse::<f64>().ok())
        .map_or(Duration::ZERO, |millis| {
            Duration::from_secs_f64(millis / 1_000.0)
        })
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

/// An export of one week, for throughput and the server's peak memory.
async fn export_report(http: &HttpClient, server: &Server) -> Result<(), String> {
    let before = server.peak_rss_kib();
    let started = Instant::now();
    let path = format!(
        "/api/v2/audit/export?q={}",
        percent_encode("date_from:2025-12-01 date_to:2025-12-07")
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
