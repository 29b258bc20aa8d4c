//! Latency samples of the query rounds: percentiles, sequential and concurrent measuring,
//! and the side-by-side table against Coder's queries.
//!
//! ```text
//!  measure / concurrently ─► samples ─► Stats (p50, p95, p99) ─► Row ─► print_table
//! ```

use std::time::{Duration, Instant};

/// Requests each concurrent client makes per query and side.
pub const ROUNDS_PER_CLIENT: usize = 3;
/// The speed-up over Coder a scan-bound query is to reach.
const SCAN_BOUND_SPEEDUP: f64 = 10.0;

/// A failed request (e.g. the API's query timeout under load) is a measurement too: its time
/// stays in the sample, and the failure is printed rather than ending the run.
pub fn note_failure(label: &str, side: &str, outcome: Result<(), String>) {
    if let Err(error) = outcome {
        println!("  {side} failed on {label}: {error}");
    }
}

/// Percentiles of a sample of latencies.
pub struct Stats {
    pub p50: Duration,
    pub p95: Duration,
    pub p99: Duration,
}

impl Stats {
    pub fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        let at = |quantile: f64| {
            let index = ((samples.len() as f64 - 1.0) * quantile).round() as usize;
            samples.get(index).copied().unwrap_or_default()
        };
        Stats {
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
        }
    }
}

/// `iterations` calls one after the other; their latencies.
pub async fn measure<F, Fut>(iterations: usize, mut call: F) -> Result<Stats, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        call().await?;
        samples.push(started.elapsed());
    }
    Ok(Stats::of(samples))
}

/// `num_clients` tasks at once, each making [`ROUNDS_PER_CLIENT`] calls; every call's latency.
pub async fn concurrently<F, Fut>(
    label: &str,
    side: &str,
    num_clients: usize,
    mut client: F,
) -> Result<Stats, String>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
{
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..num_clients {
        let mut calls = Vec::with_capacity(ROUNDS_PER_CLIENT);
        for _ in 0..ROUNDS_PER_CLIENT {
            calls.push(client(index));
        }
        tasks.spawn(async move {
            let mut samples = Vec::with_capacity(calls.len());
            let mut failures = Vec::new();
            for call in calls {
                let started = Instant::now();
                let outcome = call.await;
                samples.push(started.elapsed());
                failures.extend(outcome.err());
            }
            (samples, failures)
        });
    }
    let mut samples = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (client_samples, failures) = joined.map_err(|error| error.to_string())?;
        samples.extend(client_samples);
        for failure in failures {
            note_failure(label, side, Err(failure));
        }
    }
    Ok(Stats::of(samples))
}

/// One line of the side-by-side table.
pub struct Row {
    pub label: String,
    pub scan_bound: bool,
    pub ours: Stats,
    pub coder: Option<Stats>,
}

pub fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

/// filter | Coder p50/p95 | ours p50/p95 | speed-up (Coder p95 / ours p95) | targets.
pub fn print_table(rows: &[Row], target: Duration) {
    println!(
        "{:<36} {:>19} {:>19} {:>9}  target (p95 <= {} ms{})",
        "filter",
        "Coder PG p50/p95 ms",
        "auditlog p50/p95 ms",
        "speed-up",
        target.as_millis(),
        if rows.iter().any(|row| row.coder.is_some()) {
            ", <= Coder's; scan-bound >= 10x"
        } else {
            ""
        }
    );
    let mut misses = Vec::new();
    for row in rows {
        let ours = format!("{:.1} / {:.1}", millis(row.ours.p50), millis(row.ours.p95));
        let (theirs, speedup, mut met) = match &row.coder {
            Some(coder) => {
                let speedup = millis(coder.p95) / millis(row.ours.p95).max(0.001);
                let wanted = if row.scan_bound {
                    SCAN_BOUND_SPEEDUP
                } else {
                    1.0
                };
                (
                    format!("{:.1} / {:.1}", millis(coder.p50), millis(coder.p95)),
                    format!("{speedup:.1}x"),
                    speedup >= wanted,
                )
            }
            None => ("-".to_owned(), "-".to_owned(), true),
        };
        met &= row.ours.p95 <= target;
        if !met {
            misses.push(row.label.as_str());
        }
        println!(
            "{:<36} {:>19} {:>19} {:>9}  {}",
            format!("{}{}", row.label, if row.scan_bound { " *" } else { "" }),
            theirs,
            ours,
            speedup,
            if met { "yes" } else { "NO" }
        );
    }
    println!("(* scan-bound for Coder: the target is a 10x speed-up)");
    if misses.is_empty() {
        println!("every query met its target");
    } else {
        println!("missed: {}", misses.join("; "));
    }
}
