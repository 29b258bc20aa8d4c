//! Streaming benchmark: `auditlog stream` to the S3 archive and to OpenSearch, each beside a
//! bare rdkafka consumer reading the same topic in the same run, and freshness in OpenSearch.
//!
//! 1. A topic of the local stack's Kafka (`AUDITLOG_KAFKA_BROKERS` for another) loaded with
//!    generated events (`AUDITLOG_BENCH_STREAM_EVENTS`, default 300,000; not timed).
//! 2. Baseline: a bare rdkafka consumer reads the topic from the start, no processing.
//! 3. The release `auditlog stream --until-caught-up` with one `s3` sink (a private SeaweedFS
//!    S3 server, every request signed), then with one `opensearch` sink (a private
//!    OpenSearch node), each in a group of its own, format `ocsf`: wall time from process
//!    start to its exit, the rate while delivering (from the first confirmed batch to the
//!    last, read from the process's delivered counter: without the group join at start and
//!    the archive's closing manifests, which are fixed costs) and the process's CPU time,
//!    every event delivered (the index's count is checked). Beside OpenSearch, its own rate for the same documents pre-formatted, sent
//!    the same way (one `_bulk` request of the same size at a time) by the bench. For both,
//!    the node's CPU per document and its JVM's garbage-collection pauses (from its node
//!    stats): pauses that are a large share of the run would mean its heap is too small.
//! 4. Freshness: a live `auditlog stream` to OpenSearch with the default batching while the
//!    SDK sends `AUDITLOG_BENCH_STREAM_RATE` (5,000) events/s for
//!    `AUDITLOG_BENCH_STREAM_FRESHNESS_SECS` (30) s; one event in 25 is sampled and searched
//!    for by id every 100 ms until a search finds it (so an index refresh is included), for
//!    at most `AUDITLOG_BENCH_STREAM_DRAIN_SECS` (30) s after the last send: send-to-visible
//!    percentiles, a sample never seen counting as slower than that.
//!
//! Targets (issue 25): ≥ 50,000 events/s to S3 and ≥ 20,000 events/s to OpenSearch from one
//! process, freshness p99 ≤ 5 s at 5,000 events/s. Figures are printed, never asserted.
//!
//! Run with `make bench` (or `cargo build --release -p auditlog && deploy/local/stack.sh with
//! cargo bench -p auditlog-e2e --bench stream`). Needs the stack's Kafka and the installed S3
//! server and OpenSearch (`deploy/local/stack.sh install s3 opensearch`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use auditlog_e2e::pipeline::{consume_only, produce_events};
use auditlog_event::AuditEvent;
use auditlog_producer::Producer;
use auditlog_testkit::{
    AuditlogCommand, OpenSearchNode, S3Server, create_topic, kafka_brokers, log_dir, metric_sum,
    unique_name,
};
use auditlog_traffic::TrafficGenerator;
use serde_json::{Value, json};
use uuid::Uuid;

const PARTITIONS: i32 = 4;
const BUCKET: &str = "bench-archive";
const RUN_TIMEOUT: Duration = Duration::from_secs(1800);
/// One event in this many is followed for freshness.
const SAMPLE_EVERY: usize = 25;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

struct Settings {
    events: usize,
    s3_batch: usize,
    opensearch_batch: usize,
    rate: usize,
    freshness_secs: u64,
    drain_secs: u64,
}

async fn run() {
    let settings = Settings {
        events: env_or("AUDITLOG_BENCH_STREAM_EVENTS", 300_000),
        s3_batch: env_or("AUDITLOG_BENCH_STREAM_S3_BATCH", 10_000),
        opensearch_batch: env_or("AUDITLOG_BENCH_STREAM_OPENSEARCH_BATCH", 2_000),
        rate: env_or("AUDITLOG_BENCH_STREAM_RATE", 5_000),
        freshness_secs: env_or("AUDITLOG_BENCH_STREAM_FRESHNESS_SECS", 30),
        drain_secs: env_or("AUDITLOG_BENCH_STREAM_DRAIN_SECS", 30),
    };
    let brokers = kafka_brokers();
    let num_events = settings.events;
    println!(
        "stream benchmark: {num_events} generated events, {PARTITIONS} partitions, format ocsf"
    );

    // The destinations start (JVM, weed) while the topic loads.
    let destinations = async { tokio::join!(S3Server::start(), OpenSearchNode::start()) };
    let topic = unique_name("bench_stream");
    let events: Vec<AuditEvent> = TrafficGenerator::new(25).take(num_events).collect();
    let load = async {
        create_topic(&brokers, &topic, PARTITIONS).await;
        let started = Instant::now();
        produce_events(&topic, &events).await;
        started.elapsed().as_secs_f64()
    };
    let ((s3, opensearch), load_seconds) = tokio::join!(destinations, load);
    s3.create_bucket(BUCKET).await;
    // A new SeaweedFS server allocates its volumes at the first write (seconds); a serving
    // object store has long since. Outside the sink's prefix, so the archive is the sink's.
    s3.put_object(
        BUCKET,
        "warmup/object",
        bytes::Bytes::from_static(b"warm-up"),
    )
    .await;
    println!("  topic loaded in {load_seconds:.1} s; S3 server and OpenSearch up");

    let consume_seconds = consume_only(&brokers, &topic, num_events, RUN_TIMEOUT);
    let consume_rate = num_events as f64 / consume_seconds;
    println!(
        "  bare consumer:     {consume_rate:>10.0} events/s  ({consume_seconds:.1} s, rdkafka, no processing; baseline)"
    );

    let prefix = unique_name("bench").replace('_', "-").to_lowercase();
    let s3_sink = format!(
        "kind = \"s3\"\nurl = \"s3://{BUCKET}/{prefix}\"\nendpoint = \"{}\"\nbatch_events = {}\nmanifest_interval_secs = 60",
        s3.endpoint(),
        settings.s3_batch,
    );
    let (s3_run, s3_first) =
        stream_until_caught_up("s3", &s3_sink, &topic, &brokers, Some(&s3), num_events).await;
    print_run(
        "stream → s3:      ",
        &s3_run,
        s3_first,
        num_events,
        consume_rate,
        &format!("{} events per object; target ≥ 50000", settings.s3_batch),
    );

    let opensearch_sink = format!(
        "kind = \"opensearch\"\nurl = \"{}\"\nindex_prefix = \"{prefix}\"\nbatch_events = {}",
        opensearch.url(),
        settings.opensearch_batch,
    );
    // A fresh JVM indexes at a fraction of its steady rate until its compiler has warmed up
    // (measured here: 357 µs of node CPU per document over the first 40,000, 80–100 µs after
    // half a million); a production node has long since. The warm-up is every event once,
    // untimed, into an index outside the sink's pattern (so the count below is the sink's)
    // with the sink's mappings and default settings (so the same code warms up). It is
    // deleted before the timed run: its merges would otherwise go on beside it, on the same
    // cores.
    let warm_up = format!("warmup-{prefix}");
    let mappings = auditlog_stream::sink::opensearch::index_mappings();
    let index_settings = auditlog_stream::sink::opensearch::default_index_settings(
        &opensearch.json("GET", "/", None).await,
    );
    opensearch
        .json(
            "PUT",
            &format!("/{warm_up}"),
            Some(&json!({ "mappings": mappings, "settings": index_settings })),
        )
        .await;
    bulk_baseline(&opensearch, &warm_up, &events, settings.opensearch_batch).await;
    opensearch
        .json("DELETE", &format!("/{warm_up}"), None)
        .await;
    let node_cpu_before = node_times(&opensearch).await;
    let (opensearch_run, opensearch_first) = stream_until_caught_up(
        "opensearch",
        &opensearch_sink,
        &topic,
        &brokers,
        None,
        num_events,
    )
    .await;
    let stream_node_cpu = node_times(&opensearch).await - node_cpu_before;
    opensearch.refresh(&format!("{prefix}-*")).await;
    let indexed = opensearch.count(&format!("{prefix}-*")).await;
    print_run(
        "stream → opensearch:",
        &opensearch_run,
        opensearch_first,
        num_events,
        consume_rate,
        &format!(
            "{} events per bulk request; target ≥ 20000",
            settings.opensearch_batch
        ),
    );
    let opensearch_rate = opensearch_run
        .delivering_rate(num_events, opensearch_first)
        .unwrap_or(num_events as f64 / opensearch_run.seconds);
    print_node_cpu(stream_node_cpu, num_events, opensearch_run.seconds);
    if indexed != num_events as u64 {
        println!("  WARNING: the index holds {indexed} documents, not {num_events}");
    }
    // What the node takes from one client sending the same documents the same way (one
    // bulk request at a time, same size), pre-formatted: the destination's own ceiling here.
    // A fifth of the events (at least 20,000) is enough for a rate and keeps the run short.
    let baseline_events = &events[..num_events.min((num_events / 5).max(20_000))];
    // The stream's segments are still being merged when it exits; those merges would be
    // counted in the baseline's CPU and slow its requests.
    let merge_wait = merges_done(&opensearch, Duration::from_secs(120)).await;
    println!("  (waited {merge_wait:.1} s for the node to finish merging the stream's segments)");
    let node_cpu_before = node_times(&opensearch).await;
    let bulk_seconds = bulk_baseline(
        &opensearch,
        &format!("{prefix}-baseline"),
        baseline_events,
        settings.opensearch_batch,
    )
    .await;
    let bulk_node_cpu = node_times(&opensearch).await - node_cpu_before;
    let bulk_rate = baseline_events.len() as f64 / bulk_seconds;
    println!(
        "  direct _bulk:      {bulk_rate:>10.0} events/s  ({bulk_seconds:.1} s for {}, the same OCSF documents pre-formatted, one request at a time, after an untimed warm-up of the node; baseline)  stream {:.2} × this",
        baseline_events.len(),
        opensearch_rate / bulk_rate
    );
    print_node_cpu(bulk_node_cpu, baseline_events.len(), bulk_seconds);

    freshness(&settings, &brokers, &opensearch).await;
    println!(
        "  (wall times include the process's start and, for the archive, its closing manifests; the machine may be shared with other work)"
    );
}

/// A stream run's lines: the rate over its whole wall time and while delivering, each
/// beside the bare consumer's, and its CPU per event.
fn print_run(
    what: &str,
    run: &StreamRun,
    first_batch: usize,
    events: usize,
    consume_rate: f64,
    note: &str,
) {
    let rate = events as f64 / run.seconds;
    println!(
        "  {what} {rate:>8.0} events/s  ({:.1} s from start to exit, {note})  {:.2} × bare consumer",
        run.seconds,
        rate / consume_rate
    );
    if let Some(delivering) = run.delivering_rate(events, first_batch) {
        println!(
            "                     {delivering:>8.0} events/s while delivering ({:.1} s from the first confirmed batch to the last)  {:.2} × bare consumer",
            run.delivering_seconds.unwrap_or_default(),
            delivering / consume_rate
        );
    }
    println!(
        "                     stream CPU {:.1} µs/event (user+system: {:.1} s over {:.1} s)",
        run.cpu_seconds * 1e6 / events as f64,
        run.cpu_seconds,
        run.seconds
    );
}

fn write_config(kind: &str, sink: &str) -> (String, PathBuf) {
    let name = format!("bench-{kind}-{}", unique_name("s").replace('_', "-"));
    let path = log_dir().join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!("[[stream.sinks]]\nname = \"{name}\"\nformat = \"ocsf\"\n{sink}\n"),
    )
    .expect("config file");
    (name, path)
}

/// `auditlog stream` against the bench's broker, logging warnings only.
fn stream_command(
    config: &Path,
    topic: &str,
    brokers: &str,
    s3: Option<&S3Server>,
    until_caught_up: bool,
) -> AuditlogCommand {
    let kafka = [
        "--kafka-brokers".to_owned(),
        brokers.to_owned(),
        "--kafka-topic".to_owned(),
        topic.to_owned(),
    ];
    auditlog_e2e::stream::stream_command("bench_stream", config, &kafka, s3, until_caught_up)
        .log_level("warn")
}

/// One `auditlog stream --until-caught-up` run with one sink.
struct StreamRun {
    /// From the process's start to its exit.
    seconds: f64,
    /// Its CPU seconds (sampled every 20 ms, so up to that much is missed at the end).
    cpu_seconds: f64,
    /// From the first confirmed batch to the last (read from its delivered counter every
    /// 20 ms): the delivering itself, without the start-up (the consumer group's join) and
    /// the archive's closing manifests.
    delivering_seconds: Option<f64>,
}

impl StreamRun {
    /// Events per second while delivering: the events after the first confirmed batch over
    /// the time from it to the last.
    fn delivering_rate(&self, events: usize, first_batch: usize) -> Option<f64> {
        let seconds = self.delivering_seconds.filter(|seconds| *seconds > 0.0)?;
        Some(events.saturating_sub(first_batch) as f64 / seconds)
    }
}

async fn stream_until_caught_up(
    kind: &str,
    sink: &str,
    topic: &str,
    brokers: &str,
    s3: Option<&S3Server>,
    events: usize,
) -> (StreamRun, usize) {
    let (_, config) = write_config(kind, sink);
    let command = stream_command(&config, topic, brokers, s3, true);
    let started = Instant::now();
    let mut process = command.spawn();
    let mut cpu_seconds = 0.0;
    let (mut first_batch, mut last_batch) = (None, None);
    let status = loop {
        cpu_seconds = process_cpu_seconds(process.id()).unwrap_or(cpu_seconds);
        if last_batch.is_none()
            && let Some(metrics) = process.metrics().await
        {
            let delivered = metric_sum(&metrics, "auditlog_stream_events_delivered_total");
            if delivered > 0.0 {
                first_batch.get_or_insert((Instant::now(), delivered));
            }
            if delivered >= events as f64 {
                last_batch = Some(Instant::now());
            }
        }
        if let Some(status) = process.exit_status() {
            break status;
        }
        assert!(
            started.elapsed() < RUN_TIMEOUT,
            "stream to {kind} did not catch up; log:\n{}",
            process.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let seconds = started.elapsed().as_secs_f64();
    assert!(status.success(), "exit {status}; log:\n{}", process.log());
    let delivering_seconds = match (first_batch, last_batch) {
        (Some((first, _)), Some(last)) => Some(last.duration_since(first).as_secs_f64()),
        _ => None,
    };
    let run = StreamRun {
        seconds,
        cpu_seconds,
        delivering_seconds,
    };
    // The first sample's count is what was confirmed before the clock started.
    let counted = first_batch.map_or(0, |(_, delivered)| delivered as usize);
    (run, counted)
}

/// User plus system CPU seconds of process `pid` so far (`None` once it is gone).
fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15,
    // in clock ticks (100 per second on Linux).
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields
        .get(11..13)?
        .iter()
        .filter_map(|text| text.parse::<f64>().ok())
        .sum();
    Some(ticks / 100.0)
}

/// The OpenSearch node's own CPU time so far (user and system), and the time its JVM has
/// spent in garbage-collection pauses, from its node stats.
async fn node_times(opensearch: &OpenSearchNode) -> NodeTimes {
    let node = node_stats(opensearch, "process,jvm").await;
    let cpu = node["process"]["cpu"]["total_in_millis"]
        .as_f64()
        .expect("process.cpu.total_in_millis");
    let gc = node["jvm"]["gc"]["collectors"]
        .as_object()
        .expect("jvm.gc.collectors")
        .values()
        .filter_map(|collector| collector["collection_time_in_millis"].as_f64())
        .sum::<f64>();
    NodeTimes {
        cpu: cpu / 1000.0,
        gc: gc / 1000.0,
    }
}

/// The node's stats of the groups `metrics` names (`GET /_nodes/_local/stats/METRICS`).
async fn node_stats(opensearch: &OpenSearchNode, metrics: &str) -> Value {
    let stats = opensearch
        .json("GET", &format!("/_nodes/_local/stats/{metrics}"), None)
        .await;
    let nodes = stats["nodes"].as_object().expect("node stats");
    nodes.values().next().expect("one node").clone()
}

/// Seconds of the node's CPU and of its garbage-collection pauses.
#[derive(Debug, Clone, Copy)]
struct NodeTimes {
    cpu: f64,
    gc: f64,
}

impl std::ops::Sub for NodeTimes {
    type Output = NodeTimes;
    fn sub(self, before: NodeTimes) -> NodeTimes {
        NodeTimes {
            cpu: self.cpu - before.cpu,
            gc: self.gc - before.gc,
        }
    }
}

/// Waits until the node runs no merge (at most `limit`); the seconds waited.
async fn merges_done(opensearch: &OpenSearchNode, limit: Duration) -> f64 {
    let started = Instant::now();
    loop {
        let node = node_stats(opensearch, "indices/merge").await;
        let running = node["indices"]["merges"]["current"].as_u64().unwrap_or(0);
        if running == 0 || started.elapsed() >= limit {
            return started.elapsed().as_secs_f64();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What the node spent per event, and the rate at which that cost would fill every core of
/// this machine with nothing else running: the destination's ceiling here. GC pauses are
/// wall time (G1 collects on several threads), printed to show whether the heap is too small.
fn print_node_cpu(times: NodeTimes, events: usize, seconds: f64) {
    let cpu_seconds = times.cpu;
    let per_event = cpu_seconds / events as f64;
    let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
    println!(
        "                     OpenSearch CPU {:.0} µs/event ({cpu_seconds:.1} s over {seconds:.1} s, {:.2} cores busy; GC pauses {:.1} s): {cores} cores at that cost index at most {:.0} events/s",
        per_event * 1e6,
        cpu_seconds / seconds,
        times.gc,
        cores as f64 / per_event
    );
}

/// Seconds to index `events`, formatted as the sink formats them, with one `_bulk` request
/// of `batch` events at a time into `index` (the sink's template covers `PREFIX-*` indices;
/// formatting not timed).
async fn bulk_baseline(
    opensearch: &OpenSearchNode,
    index: &str,
    events: &[AuditEvent],
    batch: usize,
) -> f64 {
    let bodies: Vec<bytes::Bytes> = events
        .chunks(batch.max(1))
        .map(|chunk| {
            let mut body = Vec::new();
            for event in chunk {
                let action = json!({ "index": { "_index": index, "_id": event.id.to_string() } });
                serde_json::to_writer(&mut body, &action).expect("json");
                body.push(b'\n');
                auditlog_stream::Format::Ocsf.write(event, &mut body);
                body.push(b'\n');
            }
            bytes::Bytes::from(body)
        })
        .collect();
    let started = Instant::now();
    for body in bodies {
        let answer = opensearch
            .request("POST", "/_bulk", Some(body))
            .await
            .expect("bulk answer");
        assert!(
            answer.status.is_success() && answer.json()["errors"] == json!(false),
            "bulk baseline refused: {}",
            answer.text().chars().take(2000).collect::<String>()
        );
    }
    started.elapsed().as_secs_f64()
}

/// A live stream to OpenSearch (default batching) while the SDK sends at a steady rate;
/// prints the send-to-visible percentiles of the sampled events.
async fn freshness(settings: &Settings, brokers: &str, opensearch: &OpenSearchNode) {
    let topic = unique_name("bench_fresh");
    create_topic(brokers, &topic, PARTITIONS).await;
    let prefix = unique_name("fresh").replace('_', "-").to_lowercase();
    let (_, config) = write_config(
        "fresh",
        &format!(
            "kind = \"opensearch\"\nurl = \"{}\"\nindex_prefix = \"{prefix}\"",
            opensearch.url()
        ),
    );
    let mut stream = stream_command(&config, &topic, brokers, None, false).spawn();
    stream
        .wait_until_ok("/readyz", Duration::from_secs(120))
        .await
        .expect("stream ready");
    // Its consumer group takes the partitions after a rebalance; a few events first, not
    // timed, make sure it reads and the index template is installed.
    let producer = Producer::builder(brokers, &topic)
        .with_linger(Duration::from_millis(5))
        .build()
        .expect("producer");
    let warm_up: Vec<AuditEvent> = TrafficGenerator::new(99).take(100).collect();
    for event in &warm_up {
        producer.send(event).await.expect("sent");
    }
    let warm_up_deadline = Instant::now() + Duration::from_secs(120);
    while visible(opensearch, &prefix, &[warm_up[99].id])
        .await
        .is_empty()
    {
        assert!(
            Instant::now() < warm_up_deadline,
            "warm-up not visible; log:\n{}",
            stream.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let total = settings.rate * settings.freshness_secs as usize;
    let mut events = TrafficGenerator::new(26).take(total);
    let pending = std::sync::Arc::new(std::sync::Mutex::new(HashMap::<Uuid, Instant>::new()));
    let (sent_all, sending_done) = tokio::sync::watch::channel(None);
    let poller = tokio::spawn(poll_visibility(
        opensearch.port(),
        prefix.clone(),
        std::sync::Arc::clone(&pending),
        sending_done,
        Duration::from_secs(settings.drain_secs),
    ));
    // 10 ms ticks: rate / 100 events each, stamped with the time they are handed to the SDK.
    let per_tick = (settings.rate / 100).max(1);
    let mut ticker = tokio::time::interval(Duration::from_millis(10));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut sent = 0;
    while sent < total {
        ticker.tick().await;
        for _ in 0..per_tick.min(total - sent) {
            let Some(mut event) = events.next() else {
                break;
            };
            event.time = time::OffsetDateTime::now_utc();
            if sent % SAMPLE_EVERY == 0 {
                pending
                    .lock()
                    .expect("pending")
                    .insert(event.id, Instant::now());
            }
            producer.record(&event).await.expect("enqueued");
            sent += 1;
        }
    }
    let send_seconds = started.elapsed().as_secs_f64();
    let _ = sent_all.send(Some(Instant::now()));
    producer
        .shutdown(Duration::from_secs(60))
        .await
        .expect("every event confirmed");
    let (mut latencies, missing) = poller.await.expect("poller");
    let _ = stream.terminate(Duration::from_secs(30));
    latencies.sort_by(f64::total_cmp);
    // Samples never seen count as slower than any seen, so a percentile that falls among
    // them is "more than the drain allowed".
    let sampled = latencies.len() + missing;
    let percentile = |p: f64| {
        let rank = ((sampled as f64 * p).ceil() as usize).saturating_sub(1);
        match latencies.get(rank) {
            Some(seconds) => format!("{seconds:.2} s"),
            None => format!("> {} s", settings.drain_secs),
        }
    };
    println!(
        "  freshness:         {total} events at {:.0} events/s for {send_seconds:.0} s, {} sampled, send → visible in a search of OpenSearch:",
        total as f64 / send_seconds,
        sampled
    );
    println!(
        "                     p50 {}, p99 {} (target ≤ 5 s), max {}{}",
        percentile(0.50),
        percentile(0.99),
        percentile(1.0),
        if missing > 0 {
            format!(
                "; {missing} not visible {} s after the last send",
                settings.drain_secs
            )
        } else {
            String::new()
        }
    );
}

/// Searches for the pending sampled ids every 100 ms until the sending is done and every
/// sample was seen, or `drain` after the sending ended; the latencies in seconds, and how
/// many samples were not seen.
async fn poll_visibility(
    port: u16,
    prefix: String,
    pending: std::sync::Arc<std::sync::Mutex<HashMap<Uuid, Instant>>>,
    sending_done: tokio::sync::watch::Receiver<Option<Instant>>,
    drain: Duration,
) -> (Vec<f64>, usize) {
    let mut latencies = Vec::new();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let ids: Vec<Uuid> = pending.lock().expect("pending").keys().copied().collect();
        let done_at = *sending_done.borrow();
        if let Some(done_at) = done_at
            && (ids.is_empty() || done_at.elapsed() > drain)
        {
            return (latencies, ids.len());
        }
        if ids.is_empty() {
            continue;
        }
        let found = search_ids(port, &prefix, &ids).await;
        let now = Instant::now();
        let mut pending = pending.lock().expect("pending");
        for id in found {
            if let Some(sent) = pending.remove(&id) {
                latencies.push(now.duration_since(sent).as_secs_f64());
            }
        }
    }
}

async fn visible(opensearch: &OpenSearchNode, prefix: &str, ids: &[Uuid]) -> Vec<Uuid> {
    search_ids(opensearch.port(), prefix, ids).await
}

/// The ids among `ids` that a search of the indices under `prefix` finds now.
async fn search_ids(port: u16, prefix: &str, ids: &[Uuid]) -> Vec<Uuid> {
    let body = json!({
        "size": ids.len(),
        "_source": false,
        "query": { "ids": { "values": ids } },
    });
    let Ok(answer) = auditlog_testkit::http_request(
        "POST",
        port,
        &format!("/{prefix}-*/_search?ignore_unavailable=true&allow_no_indices=true"),
        &[("content-type", "application/json")],
        bytes::Bytes::from(body.to_string()),
    )
    .await
    else {
        return Vec::new();
    };
    let answer: Value = answer.json();
    answer["hits"]["hits"]
        .as_array()
        .map(|hits| {
            hits.iter()
                .filter_map(|hit| hit["_id"].as_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}
