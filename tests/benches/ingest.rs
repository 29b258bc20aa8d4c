//! Ingest benchmark: `auditlog ingest` against the raw ClickHouse insert rate, same run.
//!
//! 1. A private Apache Kafka broker (the local stack's, on its own ports and data directory,
//!    so no other traffic shares it); a 4-partition topic loaded with generated events
//!    (`AUDITLOG_BENCH_INGEST_EVENTS`, default 1,000,000) through the SDK, timed, against a
//!    bare rdkafka producer sending the same events pre-encoded to a second topic.
//!    `AUDITLOG_BENCH_BROKERS` uses an existing broker instead.
//! 2. `auditlog ingest` (release build) consumes them into a fresh database; wall time from
//!    start to the last row visible, CPU time and peak RSS from /proc.
//! 3. Baselines: the same events, pre-encoded as RowBinary, inserted straight into a fresh
//!    database of the same schema (its materialized views included) with the same batch size
//!    and compression, no Kafka, no decoding (and, for comparison, into a copy of the table
//!    alone, without the views); and a bare rdkafka consumer reading the topic, no processing (the broker's
//!    delivery rate). The ingester's per-stage timers (`auditlog_ingest_stage_microseconds_
//!    total`) split its time per event into hand-over, decode, encode and compression.
//!    `AUDITLOG_INGEST_INSERT_COMPRESSION=none` measures both without LZ4.
//! 4. Tamper evidence: the digest work alone on the same rows (its share of the ingester's
//!    CPU per event), and `auditlog verify` over the ingested data against reading the same
//!    rows out of ClickHouse.
//!
//! Run with `make bench` (or `cargo build --release -p auditlog && cargo bench -p auditlog-e2e
//! --bench ingest`). Needs the local stack's ClickHouse (`make up`).

use std::process::Command;
use std::time::{Duration, Instant};

use auditlog_e2e::pipeline::{
    AuditlogCommand, PipelineTarget, auditlog_binary, consume_only, free_port, metric_sum,
};
use auditlog_e2e::{PrivateBroker, unique_name};
use auditlog_event::{AuditEvent, EventCodec, Framing};
use auditlog_producer::Producer;
use auditlog_store::{COLUMNS, RowEncoder};
use auditlog_traffic::TrafficGenerator;
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

const PARTITIONS: i32 = 4;
/// How long any stage of a run may take before the bench gives up on it.
const INGEST_TIMEOUT: Duration = Duration::from_secs(1800);

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        // `cargo bench --workspace -- --list` style probes: nothing to list.
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let num_events: usize = std::env::var("AUDITLOG_BENCH_INGEST_EVENTS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(1_000_000);
    // AUDITLOG_BENCH_BROKERS runs against an existing broker instead (e.g. a real cluster);
    // by default a private broker, so nothing else competes for it.
    let broker = match std::env::var("AUDITLOG_BENCH_BROKERS") {
        Ok(_) => None,
        Err(_) => {
            println!("  broker: private Apache Kafka");
            Some(PrivateBroker::start())
        }
    };
    let brokers = std::env::var("AUDITLOG_BENCH_BROKERS").unwrap_or_else(|_| {
        broker
            .as_ref()
            .map(PrivateBroker::brokers)
            .unwrap_or_default()
    });

    println!("ingest benchmark: {num_events} generated events, {PARTITIONS} partitions");
    let started = Instant::now();
    let events: Vec<AuditEvent> = TrafficGenerator::new(7).take(num_events).collect();
    println!("  generated in {:.1} s", started.elapsed().as_secs_f64());

    let target = PipelineTarget::create_on(&brokers, "bench_ingest", PARTITIONS).await;
    // The topic is loaded through the SDK, timed; the same events, pre-encoded, through a
    // bare rdkafka producer with the same settings into a topic of their own are its baseline.
    let sdk_seconds = sdk_produce(&brokers, &target.topic, &events).await;
    let raw_topic = unique_name("bench_produce_raw");
    auditlog_testkit::create_topic(&brokers, &raw_topic, PARTITIONS).await;
    let raw_produce_seconds = raw_produce(&brokers, &raw_topic, &events).await;
    println!(
        "  SDK produce:   {:>12.0} events/s  ({sdk_seconds:.1} s: validate, encode, send, confirmed)",
        num_events as f64 / sdk_seconds
    );
    println!(
        "  raw produce:   {:>12.0} events/s  ({raw_produce_seconds:.1} s, pre-encoded, bare rdkafka producer; baseline)",
        num_events as f64 / raw_produce_seconds
    );
    println!(
        "  ratio:         {:>12.2}   SDK produce / raw produce",
        raw_produce_seconds / sdk_seconds
    );

    // A serving cluster has its offsets topic; a fresh private broker creates it (50
    // partitions) for the first group that asks, and that group waited 3.1 s for its
    // partitions where a later one waits 1.1 s. A throwaway group asks first, untimed.
    if broker.is_some() {
        consume_only(&brokers, &target.topic, 1, INGEST_TIMEOUT);
    }

    // The ingester, measured from process start to the last row visible.
    target.migrate();
    let env = target.env();
    let metrics_port = free_port();
    let command = AuditlogCommand::new(auditlog_binary(), "bench_ingest")
        .arg("ingest")
        .arg("--metrics-listen")
        .arg(format!("127.0.0.1:{metrics_port}"))
        .envs(env)
        .ops_port(metrics_port);
    let started = Instant::now();
    let mut ingester = command.spawn();
    let counts = target
        .wait_for_rows(num_events as u64, INGEST_TIMEOUT)
        .await;
    let ingest_seconds = started.elapsed().as_secs_f64();
    assert_eq!(
        counts.1,
        num_events as u64,
        "every event ingested: {}",
        ingester.log()
    );
    let cpu_seconds = process_cpu_seconds(ingester.id());
    let peak_rss_mib = ingester.peak_rss_kib().unwrap_or(0) as f64 / 1024.0;
    // Rows are visible before the ingester has its insert's answer and counts the batch.
    let deadline = Instant::now() + Duration::from_secs(60);
    let metrics = loop {
        let metrics = ingester.metrics().await.unwrap_or_default();
        if metric_sum(&metrics, "auditlog_ingest_inserted_rows_total") >= num_events as f64
            || Instant::now() >= deadline
        {
            break metrics;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let num_batches = metric_sum(&metrics, "auditlog_ingest_batches_total").max(1.0);
    let stage_micros = |stage: &str| {
        metric_sum(
            &metrics,
            &format!("auditlog_ingest_stage_microseconds_total{{stage=\"{stage}\"}}"),
        ) / num_events as f64
    };
    let stages: Vec<(&str, f64, &str)> = vec![
        (
            "hand-over",
            stage_micros("handover"),
            "poll thread: copy out of librdkafka, chunk, send",
        ),
        (
            "decode",
            stage_micros("decode"),
            "Avro → event view (or event + validation)",
        ),
        ("encode", stage_micros("encode"), "RowBinary row"),
        (
            "compress",
            stage_micros("compress"),
            "insert body: LZ4 blocks of the rows, built once per batch",
        ),
    ];
    let _ = ingester.terminate(Duration::from_secs(30));
    let rows_per_batch = (num_events as f64 / num_batches).round().max(1.0) as usize;

    // Baseline: the same rows, pre-encoded, the same batch size and compression, straight
    // into the same schema: a database `migrate` made afresh, so every materialized view the
    // ingester's inserts feed is fed here too and the ratio is the ingester's own overhead.
    // The table alone (no views) is printed beside it, to show what the views cost.
    let compression = insert_compression();
    let mut schema_twin = PipelineTarget::named(&brokers, "bench_ingest_raw");
    schema_twin.clickhouse_url = target.clickhouse_url.clone();
    schema_twin.migrate();
    let baseline_seconds = raw_insert(
        &schema_twin.client(),
        "audit_logs",
        &events,
        rows_per_batch,
        compression,
    )
    .await;
    let table_client = target.client();
    table_client
        .query("CREATE TABLE raw_table_alone AS audit_logs")
        .execute()
        .await
        .expect("a copy of the table alone");
    let table_alone_seconds = raw_insert(
        &table_client,
        "raw_table_alone",
        &events,
        rows_per_batch,
        compression,
    )
    .await;

    let consume_cpu_before = process_cpu_seconds(std::process::id());
    let consume_seconds = consume_only(&brokers, &target.topic, num_events, INGEST_TIMEOUT);
    // The bench process does nothing else meanwhile: its CPU is librdkafka's own cost.
    let consume_cpu_seconds = process_cpu_seconds(std::process::id()) - consume_cpu_before;

    let ingest_rate = num_events as f64 / ingest_seconds;
    let consume_rate = num_events as f64 / consume_seconds;
    let raw_rate = num_events as f64 / baseline_seconds;
    let cpu_micros_per_event = cpu_seconds * 1e6 / num_events as f64;
    println!(
        "  batches: {num_batches} (≈ {rows_per_batch} rows each), insert compression {}",
        std::env::var("AUDITLOG_INGEST_INSERT_COMPRESSION")
            .unwrap_or_else(|_| "lz4 (default)".into())
    );
    println!(
        "  ingest:        {ingest_rate:>12.0} rows/s  ({ingest_seconds:.1} s, Kafka → decode → batch → ClickHouse)"
    );
    println!(
        "  raw insert:    {raw_rate:>12.0} rows/s  ({baseline_seconds:.1} s, pre-encoded RowBinary, same batch size, same schema and views; baseline)"
    );
    println!(
        "  table alone:   {:>12.0} rows/s  ({table_alone_seconds:.1} s, the same inserts into a copy of the table without its views)",
        num_events as f64 / table_alone_seconds
    );
    println!(
        "  consume only:  {consume_rate:>12.0} rows/s  ({consume_seconds:.1} s, bare rdkafka consumer, no processing; baseline)"
    );
    println!(
        "  ratio:         {:>12.2}   ingest / raw insert (target ≥ 0.80)",
        ingest_rate / raw_rate
    );
    println!(
        "  ratio:         {:>12.2}   ingest / consume only",
        ingest_rate / consume_rate
    );
    let consume_cpu_micros = consume_cpu_seconds * 1e6 / num_events as f64;
    println!("  ingester CPU:  {cpu_micros_per_event:>12.2} µs/event (user+system, target < 3)");
    println!(
        "  consumer CPU:  {consume_cpu_micros:>12.2} µs/event (bare rdkafka consumer; baseline)"
    );
    println!(
        "  ratio:         {:>12.2}   ingester CPU / bare consumer CPU",
        cpu_micros_per_event / consume_cpu_micros.max(1e-9)
    );
    println!("  peak RSS:      {peak_rss_mib:>12.1} MiB (target < 256)");

    // What the digests add: the same work the ingester does per batch (a SHA-256 over each
    // encoded row, its 8-byte prefix, the Merkle tree), timed alone on the same rows.
    let digest_micros = digest_cpu_micros_per_event(&events, rows_per_batch);
    let without = (cpu_micros_per_event - digest_micros).max(1e-9);
    println!(
        "  digests CPU:   {digest_micros:>12.2} µs/event (leaf SHA-256, prefix, Merkle tree; timed alone)"
    );
    // Where the ingester's time goes, from its own per-stage timers: wall time on the
    // thread doing the stage, one event in 16, so above CPU time when the machine is
    // oversubscribed. The decode and encode work timed alone (CPU) is beside them.
    let (decode_alone, encode_alone) = decode_encode_micros_per_event(&events);
    println!(
        "  decode alone:  {decode_alone:>12.2} µs/event (the ingester's decode of the same messages, timed alone)"
    );
    println!(
        "  encode alone:  {encode_alone:>12.2} µs/event (the ingester's row encoding of the same events, timed alone)"
    );
    for (stage, micros, what) in &stages {
        println!("  stage {stage:<9}{micros:>12.2} µs/event ({what}; wall, sampled)");
    }
    println!(
        "  rest:          {:>12.2} µs/event (librdkafka, hand-over, batching, compression, HTTP, runtime: CPU minus digests, decode and encode alone)",
        cpu_micros_per_event - digest_micros - decode_alone - encode_alone
    );
    println!(
        "  ingest CPU:    {cpu_micros_per_event:>12.2} µs/event with digests, {without:.2} without: +{:.1} % (target < 10 %)",
        digest_micros / without * 100.0
    );

    // verify over what was just ingested, against reading the same rows out of ClickHouse.
    let (verify_seconds, verify_output) = timed_verify(&target);
    let read_seconds = read_stored_rows(&target).await;
    println!(
        "  verify:        {:>12.0} events/s  ({verify_seconds:.1} s: checkpoints, chains, every row's leaf and every root; target ≥ 200000)",
        num_events as f64 / verify_seconds
    );
    println!(
        "  read rows:     {:>12.0} events/s  ({read_seconds:.1} s, SELECT the stored columns FORMAT RowBinary; baseline)",
        num_events as f64 / read_seconds
    );
    println!(
        "  ratio:         {:>12.2}   verify / read rows",
        read_seconds / verify_seconds
    );
    println!(
        "  verify said:   {}",
        verify_output.lines().next().unwrap_or_default()
    );
}

/// µs per event of the ingester's decode (a valid event read in place) and of its row
/// encoding, each timed alone over the same messages.
fn decode_encode_micros_per_event(events: &[AuditEvent]) -> (f64, f64) {
    let codec = EventCodec::new(Framing::SingleObject);
    let messages: Vec<Vec<u8>> = events
        .iter()
        .map(|event| codec.encode_to_vec(event).expect("encode"))
        .collect();
    let started = Instant::now();
    let mut num_views = 0_usize;
    for message in &messages {
        num_views += usize::from(codec.decode_view(message).is_some());
    }
    let decode_seconds = started.elapsed().as_secs_f64();
    assert_eq!(
        num_views,
        messages.len(),
        "every generated event takes the fast path"
    );
    let views: Vec<_> = messages
        .iter()
        .filter_map(|message| codec.decode_view(message))
        .collect();
    let mut encoder = RowEncoder::default();
    let mut rows = Vec::with_capacity(1 << 20);
    let started = Instant::now();
    for (offset, view) in views.iter().enumerate() {
        if rows.len() > 1 << 20 {
            rows.clear();
        }
        let source = auditlog_store::Source {
            partition: 0,
            offset: offset as i64,
        };
        encoder.encode_view_stored(view, source, &mut rows);
    }
    let encode_seconds = started.elapsed().as_secs_f64();
    std::hint::black_box(rows);
    let per_event = |seconds: f64| seconds * 1e6 / messages.len() as f64;
    (per_event(decode_seconds), per_event(encode_seconds))
}

/// µs per event of the digest work alone, over batches of `rows_per_batch` stored rows.
fn digest_cpu_micros_per_event(events: &[AuditEvent], rows_per_batch: usize) -> f64 {
    let mut encoder = RowEncoder::default();
    let batches: Vec<(Vec<u8>, Vec<usize>)> = events
        .chunks(rows_per_batch)
        .map(|chunk| {
            let mut rows = Vec::new();
            let mut ends = Vec::new();
            for (offset, event) in chunk.iter().enumerate() {
                let source = auditlog_store::Source {
                    partition: 0,
                    offset: offset as i64,
                };
                encoder.encode_stored(event, source, &mut rows);
                ends.push(rows.len());
            }
            (rows, ends)
        })
        .collect();
    let started = Instant::now();
    let mut checksum = 0_u8;
    for (rows, ends) in &batches {
        let mut leaves = Vec::with_capacity(ends.len());
        let mut prefixes = Vec::with_capacity(ends.len() * 8);
        let mut start = 0;
        for end in ends {
            let leaf = auditlog_integrity::event_leaf(&rows[start..*end]);
            prefixes.extend_from_slice(&auditlog_integrity::leaf_prefix(&leaf));
            leaves.push(leaf);
            start = *end;
        }
        checksum ^= auditlog_integrity::merkle::root(&leaves)[0] ^ prefixes[0];
    }
    let elapsed = started.elapsed().as_secs_f64();
    std::hint::black_box(checksum);
    elapsed * 1e6 / events.len() as f64
}

/// Runs `auditlog verify` on the target; its wall time and output.
fn timed_verify(target: &PipelineTarget) -> (f64, String) {
    let started = Instant::now();
    let (valid, output) = target.verify(&["--no-progress"]);
    let seconds = started.elapsed().as_secs_f64();
    assert!(valid, "the benchmark's data verifies: {output}");
    (seconds, output)
}

/// Seconds to read every stored row's bytes (what verify hashes) out of ClickHouse.
async fn read_stored_rows(target: &PipelineTarget) -> f64 {
    let client = target.client();
    let started = Instant::now();
    let mut cursor = client
        .query(&format!(
            "SELECT {} FROM audit_logs",
            auditlog_store::stored_columns().join(", ")
        ))
        .fetch_bytes("RowBinary")
        .expect("read rows");
    let mut bytes = 0_usize;
    while let Some(chunk) = cursor.next().await.expect("read rows") {
        bytes += chunk.len();
    }
    std::hint::black_box(bytes);
    started.elapsed().as_secs_f64()
}

/// Seconds for the SDK to publish `events` to `topic` until the last one is confirmed.
async fn sdk_produce(brokers: &str, topic: &str, events: &[AuditEvent]) -> f64 {
    let failed = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let producer = Producer::builder(brokers, topic)
        .with_linger(Duration::from_millis(20))
        .with_queue_capacity(100_000)
        .with_delivery_timeout(Duration::from_secs(120))
        .with_delivery_callback({
            let failed = std::sync::Arc::clone(&failed);
            move |result| {
                if result.is_err() {
                    failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        })
        .build()
        .expect("producer");
    let started = Instant::now();
    for event in events {
        producer.record(event).await.expect("enqueued");
    }
    producer
        .shutdown(Duration::from_secs(300))
        .await
        .expect("every event confirmed");
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(
        failed.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "every event confirmed"
    );
    seconds
}

/// Seconds for a bare rdkafka producer, with the SDK's delivery settings, to publish the
/// same events pre-encoded (encoding is not timed).
async fn raw_produce(brokers: &str, topic: &str, events: &[AuditEvent]) -> f64 {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "20")
        .set("compression.type", "lz4")
        .set("batch.size", "1048576")
        .set("partitioner", "murmur2_random")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    let codec = EventCodec::new(Framing::SingleObject);
    let payloads: Vec<(String, Vec<u8>)> = events
        .iter()
        .map(|event| {
            (
                event.resource_id.to_string(),
                codec.encode_to_vec(event).expect("encode"),
            )
        })
        .collect();
    let started = Instant::now();
    for chunk in payloads.chunks(50_000) {
        let sends = chunk.iter().map(|(key, payload)| {
            producer.send(
                FutureRecord::to(topic).key(key).payload(payload),
                Duration::from_secs(120),
            )
        });
        for result in futures::future::join_all(sends).await {
            result.map_err(|(error, _)| error).expect("delivered");
        }
    }
    started.elapsed().as_secs_f64()
}

/// The insert compression the ingester was given (its default when not), for the raw insert
/// to match.
fn insert_compression() -> clickhouse::Compression {
    match std::env::var("AUDITLOG_INGEST_INSERT_COMPRESSION").as_deref() {
        Ok("none") => clickhouse::Compression::None,
        _ => clickhouse::Compression::Lz4,
    }
}

/// Seconds to insert `events` into `table`, pre-encoded, `rows_per_batch` at a time, one
/// insert after the other.
async fn raw_insert(
    client: &clickhouse::Client,
    table: &str,
    events: &[AuditEvent],
    rows_per_batch: usize,
    compression: clickhouse::Compression,
) -> f64 {
    let client = client.clone().with_compression(compression);
    let sql = format!(
        "INSERT INTO {table} ({}) FORMAT RowBinary",
        COLUMNS.join(", ")
    );
    let mut encoder = RowEncoder::default();
    let batches: Vec<bytes::Bytes> = events
        .chunks(rows_per_batch)
        .map(|chunk| {
            let mut rows = Vec::new();
            for event in chunk {
                encoder.encode(event, &mut rows);
            }
            bytes::Bytes::from(rows)
        })
        .collect();
    let started = Instant::now();
    for (index, rows) in batches.into_iter().enumerate() {
        let mut insert = client
            .insert_formatted_with(sql.clone())
            .with_setting("async_insert", "0")
            .with_setting("insert_deduplication_token", format!("baseline-{index}"));
        insert.send(rows).await.expect("send");
        insert.end().await.expect("insert");
    }
    started.elapsed().as_secs_f64()
}

fn process_cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: f64 = fields
        .get(11..13)
        .map(|pair| {
            pair.iter()
                .filter_map(|text| text.parse::<f64>().ok())
                .sum()
        })
        .unwrap_or(0.0);
    let ticks_per_second = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| {
            String::from_utf8_lossy(&output.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(100.0);
    ticks / ticks_per_second
}
