//! Latency samples of the query rounds: percentiles, sequential and concurrent measuring,
//! and the side-by-side table against Coder's queries.
//!
//! ```text
//!  measure / concurrently ─► samples ─► Stats (p50, p95, p99) ─► Row ─► print_table
//! ```

use std::collections::HashMap;
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
    /// ClickHouse's own time for the slowest query of each request (`Server-Timing`).
    pub engine: Option<Stats>,
    pub coder: Option<Stats>,
    /// The chart for the same filter: latency and engine time.
    pub chart: Option<(Stats, Stats)>,
}

pub fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

/// What a row's p95 is held to.
#[derive(Clone, Copy)]
pub enum Goal {
    /// At most Coder's p95 or `floor`, whichever is larger; scan-bound rows 10x Coder's.
    Coder { floor: Duration },
    /// Under this, whatever Coder does (the live round).
    Under(Duration),
}

/// The chart's p95 target.
const CHART_TARGET: Duration = Duration::from_millis(150);

/// filter | Coder p50/p95 | ours p50/p95 | engine p95 | speed-up | target | chart | vs 10M.
pub fn print_table(rows: &[Row], goal: Goal, baseline: Option<&HashMap<String, f64>>) {
    let goal_text = match goal {
        Goal::Coder { floor } => format!(
            "p95 <= max(Coder's, {} ms); scan-bound >= 10x",
            floor.as_millis()
        ),
        Goal::Under(limit) => format!("p95 < {} ms", limit.as_millis()),
    };
    println!(
        "{:<36} {:>19} {:>19} {:>10} {:>9} {:>6}  {:>24}{}",
        "filter",
        "Coder PG p50/p95 ms",
        "auditlog p50/p95 ms",
        "engine p95",
        "speed-up",
        "target",
        "chart p50/p95 (engine)",
        if baseline.is_some() {
            "  p95 / 10M p95"
        } else {
            ""
        }
    );
    println!(
        "(target: {goal_text}; chart p95 < {} ms)",
        CHART_TARGET.as_millis()
    );
    let mut misses = Vec::new();
    for row in rows {
        let ours = format!("{:.1} / {:.1}", millis(row.ours.p50), millis(row.ours.p95));
        let engine = row.engine.as_ref().map_or("-".to_owned(), |engine| {
            format!("{:.1}", millis(engine.p95))
        });
        let (theirs, speedup) = match &row.coder {
            Some(coder) => (
                format!("{:.1} / {:.1}", millis(coder.p50), millis(coder.p95)),
                Some(millis(coder.p95) / millis(row.ours.p95).max(0.001)),
            ),
            None => ("-".to_owned(), None),
        };
        let mut met = match (goal, &row.coder) {
            (Goal::Under(limit), _) => row.ours.p95 < limit,
            (Goal::Coder { floor }, Some(coder)) => {
                row.ours.p95 <= coder.p95.max(floor)
                    && (!row.scan_bound || speedup.unwrap_or(0.0) >= SCAN_BOUND_SPEEDUP)
            }
            (Goal::Coder { floor }, None) => row.ours.p95 <= floor,
        };
        let chart = match &row.chart {
            Some((latency, engine)) => {
                met &= latency.p95 < CHART_TARGET;
                format!(
                    "{:.1} / {:.1} ({:.1})",
                    millis(latency.p50),
                    millis(latency.p95),
                    millis(engine.p95)
                )
            }
            None => "-".to_owned(),
        };
        if !met {
            misses.push(row.label.as_str());
        }
        let versus = baseline
            .map(|baseline| match baseline.get(&row.label) {
                Some(p95) => format!("  {:.2}x", millis(row.ours.p95) / p95.max(0.001)),
                None => "  -".to_owned(),
            })
            .unwrap_or_default();
        println!(
            "{:<36} {:>19} {:>19} {:>10} {:>9} {:>6}  {:>24}{versus}",
            format!("{}{}", row.label, if row.scan_bound { " *" } else { "" }),
            theirs,
            ours,
            engine,
            speedup.map_or("-".to_owned(), |speedup| format!("{speedup:.1}x")),
            if met { "yes" } else { "NO" },
            chart,
        );
    }
    println!("(* scan-bound for Coder: the target is a 10x speed-up)");
    if misses.is_empty() {
        println!("every query met its target");
    } else {
        println!("missed: {}", misses.join("; "));
    }
}

/// Each row's p95 in ms, one `label<TAB>p95` line each, for a later run at another size.
pub fn save_p95(rows: &[Row], path: &std::path::Path) {
    let text: String = rows
        .iter()
        .map(|row| format!("{}\t{:.3}\n", row.label, millis(row.ours.p95)))
        .collect();
    if let Err(error) = std::fs::write(path, text) {
        println!("could not keep the p95s in {}: {error}", path.display());
    }
}

/// The p95s an earlier run kept with [`save_p95`].
pub fn load_p95(path: &std::path::Path) -> Option<HashMap<String, f64>> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(
        text.lines()
            .filter_map(|line| {
                let (label, p95) = line.split_once('\t')?;
                Some((label.to_owned(), p95.parse().ok()?))
            })
            .collect(),
    )
}
