//! `make soak`: the whole pipeline for a long while on a three-node Kafka cluster, with a
//! fault every few minutes, to find what short tests cannot: slow leaks, growing lag, rare
//! races. Not part of `make test` nor `make bench`.
//!
//! ```text
//!  SDK (steady rate, outcome by id) ─▶ 3 Kafka nodes (RF 3, min ISR 2) ─▶ N ingesters ─▶ ClickHouse
//!                     faults, one every 2–3 minutes, drawn at random:
//!    kill -9 / SIGTERM of an ingester (restarted) · kill -9 of a broker (restarted) · kill -9 of ClickHouse
//! ```
//!
//! At the end it prints: events confirmed, stored once, missing and shown twice; `auditlog
//! verify`'s verdict; each ingester's RSS at start and end; consumer lag and freshness p99.
//! It exits non-zero when anything confirmed is missing or shown twice, or verify fails.
//!
//! Settings (environment): `AUDITLOG_SOAK_MINUTES` (30), `AUDITLOG_SOAK_RATE` (events/s,
//! 5000), `AUDITLOG_SOAK_INGESTERS` (3), `AUDITLOG_SOAK_FAULT_SECS` (`120-180`: the gap
//! between faults), `AUDITLOG_SOAK_SEED` (the faults' random seed; printed).
//!
//! ClickHouse is a private server of the stack's own kind (`deploy/local/clickhouse`),
//! killed and started again the way the stack starts it, so the shared one is never hit.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use auditlog_e2e::PrivateClickHouse;
use auditlog_e2e::pipeline::{AuditlogProcess, PipelineTarget, metric_sum};
use auditlog_e2e::sender::Sender;
use auditlog_testkit::KafkaCluster;
use uuid::Uuid;

const LAG: &str = "auditlog_ingest_partition_lag";
const FRESHNESS_BUCKET: &str = "auditlog_ingest_freshness_seconds_bucket";
/// Between samples of lag and memory.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// How long the end may take: outcomes, ingest of the backlog, clean stops.
const DRAIN: Duration = Duration::from_secs(600);
/// An ingester's RSS "at start" is taken once the run has been going this long, with its
/// buffers and caches filled, so that start and end compare like with like.
const WARM_UP: Duration = Duration::from_secs(60);

fn setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .map(|value| {
            value
                .parse()
                .unwrap_or_else(|_| panic!("{name}={value:?} is not valid"))
        })
        .unwrap_or(default)
}

/// A small xorshift: the faults need to be random, not cryptographic.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }
}

/// One ingester's place: the process now in it, and what its predecessors measured.
struct Slot {
    name: String,
    process: AuditlogProcess,
    generation: usize,
    rss_start_kib: Option<u64>,
    rss_now_kib: u64,
    /// The last scrape of the process now in the slot.
    scrape: String,
    /// Freshness histogram buckets of the processes that have ended, by upper bound.
    freshness_before: BTreeMap<String, f64>,
}

impl Slot {
    fn spawn(target: &PipelineTarget, name: String, generation: usize) -> AuditlogProcess {
        target.spawn_ingester(&format!("{name}_{generation}"), &[])
    }

    /// Keeps what the process measured, then starts a new one in its place.
    fn replace(&mut self, target: &PipelineTarget) {
        add_buckets(&mut self.freshness_before, &self.scrape);
        self.scrape.clear();
        self.generation += 1;
        self.process = Self::spawn(target, self.name.clone(), self.generation);
    }

    async fn sample(&mut self, warm: bool) -> f64 {
        if let Some(metrics) = self.process.metrics().await {
            self.scrape = metrics;
        }
        if let Some(rss) = rss_kib(self.process.id()) {
            if warm {
                self.rss_start_kib.get_or_insert(rss);
            }
            self.rss_now_kib = rss;
        }
        metric_sum(&self.scrape, LAG)
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Adds the freshness buckets of a scrape into `into`, by their `le` label.
fn add_buckets(into: &mut BTreeMap<String, f64>, scrape: &str) {
    for line in scrape
        .lines()
        .filter(|line| line.starts_with(FRESHNESS_BUCKET))
    {
        let Some((labels, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Some(le) = labels
            .split("le=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
        else {
            continue;
        };
        *into.entry(le.to_owned()).or_default() += value.parse::<f64>().unwrap_or(0.0);
    }
}

/// The upper bound of the bucket holding the 99th percentile of a cumulative histogram.
fn p99(buckets: &BTreeMap<String, f64>) -> String {
    let mut bounds: Vec<(f64, f64)> = buckets
        .iter()
        .map(|(le, count)| (le.parse::<f64>().unwrap_or(f64::INFINITY), *count))
        .collect();
    bounds.sort_by(|a, b| a.0.total_cmp(&b.0));
    let Some(total) = bounds.last().map(|(_, count)| *count).filter(|n| *n > 0.0) else {
        return "no events".to_owned();
    };
    bounds
        .iter()
        .find(|(_, count)| *count >= 0.99 * total)
        .map_or("?".to_owned(), |(bound, _)| format!("≤ {bound} s"))
}

fn percentile(samples: &[f64], quantile: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted
        .get(((sorted.len() as f64 * quantile).ceil() as usize).saturating_sub(1))
        .copied()
        .unwrap_or(0.0)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let minutes: f64 = setting("AUDITLOG_SOAK_MINUTES", 30.0);
    let rate: usize = setting("AUDITLOG_SOAK_RATE", 5000);
    let num_ingesters: usize = setting("AUDITLOG_SOAK_INGESTERS", 3);
    let gap: String = setting("AUDITLOG_SOAK_FAULT_SECS", "120-180".to_owned());
    let (gap_min, gap_max) = gap
        .split_once('-')
        .and_then(|(min, max)| Some((min.parse::<u64>().ok()?, max.parse::<u64>().ok()?)))
        .filter(|(min, max)| min <= max)
        .expect("AUDITLOG_SOAK_FAULT_SECS is MIN-MAX seconds");
    let seed: u64 = setting(
        "AUDITLOG_SOAK_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |elapsed| elapsed.as_nanos() as u64)
            | 1,
    );
    let mut random = Random(seed);
    println!(
        "soak: {minutes} min, {rate} events/s, {num_ingesters} ingesters, a fault every \
         {gap_min}-{gap_max} s (seed {seed})"
    );

    let mut cluster = tokio::task::spawn_blocking(|| KafkaCluster::start(3))
        .await
        .expect("cluster");
    let mut clickhouse = PrivateClickHouse::start().await;
    let mut target = PipelineTarget::named(&cluster.brokers(), "soak");
    target.replication = (3, 2);
    target.clickhouse_url = clickhouse.url();
    target.migrate();
    let mut slots: Vec<Slot> = (1..=num_ingesters)
        .map(|n| {
            let name = format!("soak_ingester_{n}");
            Slot {
                process: Slot::spawn(&target, name.clone(), 0),
                name,
                generation: 0,
                rss_start_kib: None,
                rss_now_kib: 0,
                scrape: String::new(),
                freshness_before: BTreeMap::new(),
            }
        })
        .collect();
    let sender =
        Sender::new(&cluster.brokers(), &target.topic, Duration::from_secs(30)).with_rate(rate);
    let stop = Arc::new(AtomicBool::new(false));
    let sending = sender.spawn(usize::MAX, Arc::clone(&stop));

    let started = Instant::now();
    let end = started + Duration::from_secs_f64(minutes * 60.0);
    let next_gap =
        |random: &mut Random| Duration::from_secs(gap_min + random.below(gap_max - gap_min + 1));
    let mut next_fault = started + next_gap(&mut random);
    let mut lag_samples = Vec::new();
    let mut faults: BTreeMap<&str, usize> = BTreeMap::new();
    while Instant::now() < end {
        let mut lag = 0.0;
        for slot in &mut slots {
            lag += slot.sample(started.elapsed() >= WARM_UP).await;
        }
        lag_samples.push(lag);
        let at = started.elapsed().as_secs();
        if Instant::now() >= next_fault {
            let fault = match random.below(4) {
                0 => {
                    let slot = &mut slots[random.below(num_ingesters as u64) as usize];
                    slot.process.kill_dash_nine();
                    slot.replace(&target);
                    "kill -9 of an ingester"
                }
                1 => {
                    let slot = &mut slots[random.below(num_ingesters as u64) as usize];
                    let status = tokio::task::block_in_place(|| {
                        slot.process.terminate(Duration::from_secs(60))
                    });
                    if !status.is_some_and(|status| status.success()) {
                        println!("  SIGTERM'd ingester {} exited {status:?}", slot.name);
                    }
                    slot.replace(&target);
                    "SIGTERM of an ingester"
                }
                2 => {
                    let node = 1 + random.below(3) as i32;
                    tokio::task::block_in_place(|| {
                        cluster.kill(node);
                        // As a supervisor would: started again at once.
                        cluster.restart(node);
                    });
                    "kill -9 of a broker"
                }
                _ => {
                    clickhouse.stop();
                    clickhouse.resume().await;
                    "kill -9 of ClickHouse"
                }
            };
            *faults.entry(fault).or_default() += 1;
            println!("[{:>4} s] {fault}", at);
            next_fault = Instant::now() + next_gap(&mut random);
        }
        if at % 60 < SAMPLE_EVERY.as_secs() {
            println!(
                "[{at:>4} s] {} sent, {} confirmed, lag {lag}",
                sender.sent(),
                sender.confirmed()
            );
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    }

    stop.store(true, Ordering::Relaxed);
    sending.await.expect("sender");
    sender.wait_for_outcomes(DRAIN).await;
    sender
        .producer
        .shutdown(Duration::from_secs(60))
        .await
        .expect("SDK shutdown");
    let (sent, confirmed, failed, repeated) = {
        let outcomes = sender.outcomes.lock().unwrap();
        (
            outcomes.sent.len(),
            outcomes
                .confirmed
                .keys()
                .copied()
                .collect::<HashSet<Uuid>>(),
            outcomes.failed.keys().copied().collect::<HashSet<Uuid>>(),
            outcomes.repeated.len(),
        )
    };
    target.wait_for_rows(confirmed.len() as u64, DRAIN).await;
    for slot in &mut slots {
        slot.sample(true).await;
        add_buckets(&mut slot.freshness_before, &slot.scrape);
        let status =
            tokio::task::block_in_place(|| slot.process.terminate(Duration::from_secs(90)));
        if !status.is_some_and(|status| status.success()) {
            println!("ingester {} exited {status:?} at the end", slot.name);
        }
    }
    let rows: Vec<(String, u64)> = target
        .client()
        // Shown twice means two events under one id; copies at two offsets are shown once.
        .query("SELECT toString(id), uniqExact(time) FROM audit_logs GROUP BY id")
        .fetch_all()
        .await
        .expect("stored ids");
    let stored: BTreeMap<Uuid, u64> = rows
        .into_iter()
        .map(|(id, copies)| (id.parse().expect("uuid"), copies))
        .collect();
    let missing = confirmed
        .iter()
        .filter(|id| !stored.contains_key(id))
        .count();
    let twice = stored.values().filter(|copies| **copies > 1).count();
    let unexplained = stored
        .keys()
        .filter(|id| !confirmed.contains(id) && !failed.contains(id))
        .count();
    let stored_once = stored.values().filter(|copies| **copies == 1).count();
    let (valid, verdict) = target.verify(&["--no-progress"]);

    let mut freshness = BTreeMap::new();
    for slot in &slots {
        for (le, count) in &slot.freshness_before {
            *freshness.entry(le.clone()).or_default() += count;
        }
    }
    println!();
    println!(
        "soak over after {:.1} min; faults: {faults:?}",
        started.elapsed().as_secs_f64() / 60.0
    );
    println!("events sent              {sent}");
    println!("events confirmed         {}", confirmed.len());
    println!("events failed            {} (reported by id)", failed.len());
    println!("stored once              {stored_once}");
    println!("missing (confirmed)      {missing}");
    println!("shown twice              {twice}");
    println!("stored, never sent       {unexplained}");
    println!("reported twice (SDK)     {repeated}");
    println!(
        "verify                   {} ({})",
        if valid { "valid" } else { "INVALID" },
        verdict.lines().next().unwrap_or_default()
    );
    for slot in &slots {
        println!(
            "{:<24} RSS {} MiB after {} s, {} MiB at the end ({} restarts)",
            slot.name,
            slot.rss_start_kib.unwrap_or(0) / 1024,
            WARM_UP.as_secs(),
            slot.rss_now_kib / 1024,
            slot.generation
        );
    }
    println!(
        "consumer lag             p99 {:.0}, max {:.0} messages (every {} s)",
        percentile(&lag_samples, 0.99),
        percentile(&lag_samples, 1.0),
        SAMPLE_EVERY.as_secs()
    );
    println!("freshness p99            {}", p99(&freshness));
    if !valid {
        // What verify named, not only its count: the data is gone once the run ends.
        println!("verify's report:\n{verdict}");
    }
    if missing > 0 || twice > 0 || unexplained > 0 || repeated > 0 || !valid {
        println!("SOAK FAILED");
        // `exit` runs no destructors: stop the private servers first, or they outlive the run.
        drop(clickhouse);
        drop(cluster);
        std::process::exit(1);
    }
}
