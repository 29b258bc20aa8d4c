//! Whole-system tests of `auditlog ingest` against the real broker and ClickHouse engine.
//!
//! Every test has its own topic, group and database. The ingester runs as a real child
//! process, so "kill -9" is a real SIGKILL and a restart starts from what Kafka and
//! ClickHouse actually hold.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use auditlog_e2e::PrivateClickHouse;
use auditlog_e2e::pipeline::{
    AuditlogProcess, PipelineTarget, assert_exact, events, metric_sum, produce_events,
    produce_payloads,
};
use auditlog_ingester::{DeadLetterFilter, read_dead_letters};

const INGEST_TIMEOUT: Duration = Duration::from_secs(180);
const RETRIES: &str = "auditlog_ingest_retries_total";
/// What the ingester logs when it takes its first SIGTERM.
const STOPPING: &str = "shutting down (a second signal exits at once)";

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_thousand_events_become_exactly_as_many_rows() {
    const NUM_EVENTS: usize = 200_000;
    let target = PipelineTarget::create("ingest_exact", 4).await;
    target.migrate();
    let mut ingester = target.spawn_ingester("ingest_exact", &[]);
    produce_events(&target.topic, &events(1, NUM_EVENTS)).await;
    let counts = target
        .wait_for_rows(NUM_EVENTS as u64, INGEST_TIMEOUT)
        .await;
    assert_exact(counts, NUM_EVENTS as u64, &ingester.log());
    // Nothing was written twice in the first place: retries and replays were deduplicated.
    assert_eq!(counts.2, NUM_EVENTS as u64, "physical rows");

    // Rows are visible before their insert is acknowledged: ClickHouse answers only after
    // the materialized views (lookup, rollups) have taken the block too. The ingester counts
    // a batch when the answer arrives.
    let inserted = format!("auditlog_ingest_inserted_rows_total {NUM_EVENTS}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let metrics = loop {
        let metrics = ingester.metrics().await.expect("metrics endpoint");
        if metrics.contains(&inserted) || Instant::now() > deadline {
            break metrics;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(metrics.contains(&inserted), "{metrics}");
    assert!(
        metrics.contains("auditlog_ingest_freshness_seconds_bucket"),
        "{metrics}"
    );
    let status = ingester
        .terminate(Duration::from_secs(30))
        .expect("exits on SIGTERM");
    assert!(
        status.success(),
        "clean exit on SIGTERM: {status:?}\n{}",
        ingester.log()
    );
}

/// Every other test inserts LZ4 blocks (the default); this one sends the rows as they are.
/// Both must store the same bytes: the verifier recomputes each row's digest from what
/// ClickHouse holds.
#[tokio::test(flavor = "multi_thread")]
async fn uncompressed_insert_bodies_store_rows_that_verify() {
    const NUM_EVENTS: usize = 20_000;
    let target = PipelineTarget::create("ingest_plain", 2).await;
    target.migrate();
    let mut ingester = target.spawn_ingester("ingest_plain", &["--insert-compression", "none"]);
    produce_events(&target.topic, &events(7, NUM_EVENTS)).await;
    let counts = target
        .wait_for_rows(NUM_EVENTS as u64, INGEST_TIMEOUT)
        .await;
    assert_exact(counts, NUM_EVENTS as u64, &ingester.log());
    let status = ingester
        .terminate(Duration::from_secs(30))
        .expect("exits on SIGTERM");
    assert!(status.success(), "{}", ingester.log());
    target.assert_verifies(NUM_EVENTS as u64, &ingester.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_dash_nine_three_times_loses_and_shows_nothing_twice() {
    const NUM_EVENTS: usize = 90_000;
    let target = PipelineTarget::create("ingest_kill9", 4).await;
    target.migrate();
    let all_events = events(2, NUM_EVENTS);
    let mut logs = String::new();
    let mut ingester = target.spawn_ingester("ingest_kill9", &["--batch-rows", "2000"]);
    let mut chunks = all_events.chunks(NUM_EVENTS / 4);
    for (round, chunk) in chunks.by_ref().take(3).enumerate() {
        produce_events(&target.topic, chunk).await;
        // Kill once some of this chunk is in, mid-stream.
        let partial = (round * NUM_EVENTS / 4 + 1_000) as u64;
        target.wait_for_rows(partial, INGEST_TIMEOUT).await;
        ingester.kill_dash_nine();
        logs.push_str(&ingester.log());
        ingester = target.spawn_ingester("ingest_kill9", &["--batch-rows", "2000"]);
    }
    // A killed ingester leaves its last batches unsigned (its 1 s checkpoint timer may not
    // have fired since), and a checkpoint signs only the heads its own ingester moved: the
    // last chunk goes to the cleanly stopped one, so it moves every partition's head, however
    // much of the third chunk its predecessor took before the kill.
    for chunk in chunks {
        produce_events(&target.topic, chunk).await;
    }
    let counts = target
        .wait_for_rows(NUM_EVENTS as u64, INGEST_TIMEOUT)
        .await;
    assert_exact(
        counts,
        NUM_EVENTS as u64,
        &format!("{logs}{}", ingester.log()),
    );

    // The digest chains survived the kills: each restart replayed the recorded ranges and
    // chained after the last recorded digest, so the untouched data verifies.
    let status = ingester.terminate(Duration::from_secs(30)).expect("exits");
    logs.push_str(&ingester.log());
    assert!(status.success(), "{logs}");
    target.assert_verifies(NUM_EVENTS as u64, &logs);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clickhouse_outage_of_twenty_seconds_heals_by_itself() {
    const NUM_EVENTS: usize = 60_000;
    let mut clickhouse = PrivateClickHouse::start().await;
    let mut target = PipelineTarget::create("ingest_outage", 4).await;
    target.clickhouse_url = clickhouse.url();
    target.migrate();
    let ingester = target.spawn_ingester("ingest_outage", &["--batch-rows", "5000"]);
    let all_events = events(3, NUM_EVENTS);
    produce_events(&target.topic, &all_events[..NUM_EVENTS / 3]).await;
    target.wait_for_rows(1_000, INGEST_TIMEOUT).await;

    clickhouse.stop();
    let outage = Instant::now();
    // Events keep arriving while ClickHouse is away.
    produce_events(&target.topic, &all_events[NUM_EVENTS / 3..]).await;
    // Polled rather than read once after the twenty seconds: a loaded machine may not have
    // sealed and tried a batch by then.
    let deadline = outage + INGEST_TIMEOUT;
    let metrics = loop {
        let metrics = ingester.metrics().await.unwrap_or_default();
        if metric_sum(&metrics, RETRIES) > 0.0 || Instant::now() >= deadline {
            break metrics;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    tokio::time::sleep(Duration::from_secs(20).saturating_sub(outage.elapsed())).await;
    clickhouse.resume().await;

    let counts = target
        .wait_for_rows(NUM_EVENTS as u64, INGEST_TIMEOUT)
        .await;
    assert_exact(counts, NUM_EVENTS as u64, &ingester.log());
    assert!(
        metric_sum(&metrics, RETRIES) > 0.0,
        "the outage shows up as retries: {metrics}"
    );
    let mut ingester = ingester;
    let status = ingester.terminate(Duration::from_secs(30)).expect("exits");
    assert!(status.success(), "{}", ingester.log());
    target.assert_verifies(NUM_EVENTS as u64, &ingester.log());
}

/// The issue this pins down: a stop during a ClickHouse outage waited for ClickHouse, for
/// ever, deaf to signals and with its endpoints gone. Now every stage gives up at the
/// shutdown deadline, and nothing it gave up on is committed.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_clickhouse_outage_exits_within_the_shutdown_timeout() {
    const CHUNK: usize = 20_000;
    let mut clickhouse = PrivateClickHouse::start().await;
    let mut target = PipelineTarget::create("ingest_stop_outage", 4).await;
    target.clickhouse_url = clickhouse.url();
    target.migrate();
    let all_events = events(7, 3 * CHUNK);
    let mut logs = String::new();

    // 1. Batches in flight when ClickHouse goes away: the deadline ends the stop, exit 75.
    let mut ingester = target.spawn_ingester("stop_in_flight", &["--shutdown-timeout-secs", "5"]);
    produce_events(&target.topic, &all_events[..CHUNK]).await;
    // Every partition's first batches are stored, so its recorded ranges are loaded: the
    // outage's events become batches at once. A partition first seen during the outage
    // would hold the pipeline in its intent load instead, with nothing taken (step 2).
    target.wait_for_rows(CHUNK as u64, INGEST_TIMEOUT).await;
    clickhouse.stop();
    produce_events(&target.topic, &all_events[CHUNK..2 * CHUNK]).await;
    wait_until_unready(&ingester, "clickhouse writes failing").await;
    wait_until_a_batch_write_fails(&ingester).await;
    ingester.send_sigterm();
    // Asked as soon as the stop has begun: it lasts the 5 s deadline, which a fixed wait
    // would eat into on a loaded machine.
    wait_until_stopping(&ingester).await;
    let healthz = ingester.ops_get("/healthz").await;
    assert!(
        healthz
            .as_ref()
            .is_some_and(|response| response.status == 200),
        "liveness answers while stopping: {healthz:?}"
    );
    let status = ingester
        .wait_for_exit(Duration::from_secs(5 + 10))
        .unwrap_or_else(|| panic!("no exit within the timeout\n{}", ingester.log()));
    logs.push_str(&ingester.log());
    assert_eq!(
        status.code(),
        Some(75),
        "unwritten batches have their own code\n{logs}"
    );

    // 2. A backlog while ClickHouse is still away: stuck loading intents, it still stops.
    let mut ingester = target.spawn_ingester("stop_loading", &["--shutdown-timeout-secs", "60"]);
    wait_until_unready(&ingester, "clickhouse writes failing").await;
    // Well inside the 60 s deadline, which is what the step tells apart.
    let status = ingester
        .terminate(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("no exit while intents load\n{}", ingester.log()));
    logs.push_str(&ingester.log());
    assert_eq!(
        status.code(),
        Some(0),
        "nothing was taken, nothing is owed\n{logs}"
    );

    // 3. A second signal does not wait for the 60 s deadline.
    clickhouse.resume().await;
    let mut ingester = target.spawn_ingester("stop_twice", &["--shutdown-timeout-secs", "60"]);
    // Everything so far is stored before the second outage, for the reason of step 1.
    let before = target
        .wait_for_rows(2 * CHUNK as u64, INGEST_TIMEOUT)
        .await
        .1;
    clickhouse.stop();
    produce_events(&target.topic, &all_events[2 * CHUNK..]).await;
    wait_until_unready(&ingester, "clickhouse writes failing").await;
    wait_until_a_batch_write_fails(&ingester).await;
    ingester.send_sigterm();
    // Signals sent before the first is taken count as one: the second waits for the log.
    wait_until_stopping(&ingester).await;
    assert!(
        ingester.is_running(),
        "the first signal waits for the writes\n{}",
        ingester.log()
    );
    let status = ingester
        .terminate(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("a second signal exits at once\n{}", ingester.log()));
    logs.push_str(&ingester.log());
    assert_eq!(status.code(), Some(130), "{logs}");

    // Everything comes back: every event exactly once, whatever each stop gave up on.
    clickhouse.resume().await;
    let mut ingester = target.spawn_ingester("stop_after", &[]);
    let counts = target
        .wait_for_rows(all_events.len() as u64, INGEST_TIMEOUT)
        .await;
    logs.push_str(&ingester.log());
    assert!(before > CHUNK as u64, "ingest resumed between the outages");
    assert_exact(counts, all_events.len() as u64, &logs);
    let status = ingester.terminate(Duration::from_secs(30)).expect("exits");
    assert_eq!(status.code(), Some(0), "a clean stop\n{}", ingester.log());
}

/// Waits until the ingester has taken a SIGTERM, failing the test after a minute.
async fn wait_until_stopping(ingester: &AuditlogProcess) {
    assert!(
        ingester
            .wait_for_log(STOPPING, Duration::from_secs(60))
            .await,
        "the ingester never took its SIGTERM\n{}",
        ingester.log()
    );
}

/// Waits until `/readyz` reports `words` (as 503), failing the test after a minute.
/// Waits until a batch's own write is being retried (its intent or its insert): only then is
/// a batch in flight and owed, which is what a stop's exit code and wait are about. Readiness
/// alone also turns on a failing checkpoint or intent load, which can come first: under a CPU
/// hog the new events were not yet a batch when the stop began.
async fn wait_until_a_batch_write_fails(ingester: &AuditlogProcess) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let metrics = ingester.metrics().await.unwrap_or_default();
        let batch_retries: f64 = ["intent", "insert"]
            .iter()
            .map(|stage| metric_sum(&metrics, &format!("{RETRIES}{{stage=\"{stage}\"}}")))
            .sum();
        if batch_retries > 0.0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no batch write was retried within a minute\n{metrics}\n{}",
            ingester.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_until_unready(ingester: &AuditlogProcess, words: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let readyz = ingester.ops_get("/readyz").await;
        if readyz
            .as_ref()
            .is_some_and(|response| response.status == 503 && response.text().contains(words))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz never said {words:?}; last answer {readyz:?}\n{}",
            ingester.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn one_percent_poison_is_dead_lettered_with_reasons_and_the_rest_ingested() {
    const NUM_EVENTS: usize = 20_000;
    let target = PipelineTarget::create("ingest_poison", 4).await;
    target.migrate();
    let codec = auditlog_event::EventCodec::new(auditlog_event::Framing::SingleObject);
    let valid = events(4, NUM_EVENTS);
    let mut payloads = Vec::new();
    let mut poison_keys = BTreeSet::new();
    for (index, event) in valid.iter().enumerate() {
        payloads.push((
            event.resource_id.to_string(),
            codec.encode_to_vec(event).unwrap(),
        ));
        if index % 100 == 0 {
            let key = format!("poison-{index}");
            let payload = match index % 300 {
                // Not Avro at all.
                0 => b"{\"json\": \"is not our framing\"}".to_vec(),
                // Our framing, an unknown schema fingerprint.
                100 => vec![0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 0],
                // Our framing and schema, a truncated datum.
                _ => {
                    let mut bytes = codec.encode_to_vec(event).unwrap();
                    bytes.truncate(bytes.len() / 2);
                    bytes
                }
            };
            poison_keys.insert(key.clone());
            payloads.push((key, payload));
        }
    }
    produce_payloads(&target.topic, payloads).await;
    let ingester = target.spawn_ingester("ingest_poison", &[]);
    let counts = target
        .wait_for_rows(NUM_EVENTS as u64, INGEST_TIMEOUT)
        .await;
    assert_exact(counts, NUM_EVENTS as u64, &ingester.log());

    let mut kafka = rdkafka::ClientConfig::new();
    kafka.set("bootstrap.servers", auditlog_e2e::kafka_brokers());
    let letters = tokio::task::spawn_blocking(move || {
        read_dead_letters(&kafka, &target.dlq_topic, &DeadLetterFilter::default())
    })
    .await
    .unwrap()
    .expect("read dead letters");
    let letter_keys: BTreeSet<String> = letters
        .iter()
        .map(|letter| {
            String::from_utf8_lossy(letter.key.as_deref().unwrap_or_default()).into_owned()
        })
        .collect();
    assert_eq!(letter_keys, poison_keys, "every poison message, once");
    let kinds: BTreeSet<&str> = letters.iter().map(|letter| letter.kind.as_str()).collect();
    assert!(
        kinds.contains("unknown_schema") && kinds.contains("decode"),
        "{kinds:?}"
    );
    for letter in &letters {
        assert!(!letter.reason.is_empty(), "a reason: {letter:?}");
        assert!(
            letter.source_offset >= 0 && letter.source_partition >= 0,
            "{letter:?}"
        );
        assert!(!letter.dead_lettered_at.is_empty(), "{letter:?}");
    }
}
