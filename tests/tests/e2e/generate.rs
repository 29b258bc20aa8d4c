//! Whole-system tests of `auditlog generate`: the real binary against the local broker.
//!
//! Acceptance: `generate --count 100000` exits 0 only when every event is confirmed, and
//! the topic then holds exactly that many decodable events with distinct ids; a broker
//! restart in the middle of a run loses nothing and duplicates nothing.

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::time::{Duration, Instant};

use auditlog_e2e::pipeline::{AuditlogCommand, auditlog_binary, create_topic, free_port};
use auditlog_e2e::{PrivateBroker, kafka_brokers, read_topic, unique_name};
use auditlog_event::{EventCodec, Framing};
use auditlog_traffic::TrafficGenerator;
use uuid::Uuid;

const PARTITIONS: i32 = 4;

#[tokio::test(flavor = "multi_thread")]
async fn generate_100k_exits_0_and_the_topic_holds_exactly_100k_distinct_events() {
    const NUM_EVENTS: usize = 100_000;
    let topic = unique_name("generate");
    create_topic(&topic, PARTITIONS).await;
    let output = Command::new(auditlog_binary())
        .args([
            "generate",
            "--count",
            &NUM_EVENTS.to_string(),
            "--seed",
            "7",
        ])
        .env("AUDITLOG_KAFKA_BROKERS", kafka_brokers())
        .env("AUDITLOG_KAFKA_TOPIC", &topic)
        .env("AUDITLOG_LOG", "info")
        .output()
        .expect("run auditlog generate");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "auditlog generate failed:\n{stderr}"
    );
    assert!(stderr.contains("generation finished"), "{stderr}");

    let records = read_topic(
        &kafka_brokers(),
        &topic,
        PARTITIONS,
        NUM_EVENTS,
        Duration::from_secs(180),
    )
    .await;
    assert_eq!(records.len(), NUM_EVENTS, "messages in {topic}");
    let codec = EventCodec::new(Framing::SingleObject);
    let mut ids = HashSet::with_capacity(NUM_EVENTS);
    for record in &records {
        let event = codec.decode(record.value()).expect("decodable event");
        event.validate().expect("valid event");
        assert!(ids.insert(event.id), "duplicate id {}", event.id);
    }
    assert_eq!(ids.len(), NUM_EVENTS);
}

#[tokio::test]
async fn generate_exits_non_zero_naming_the_lost_events_when_no_broker_answers() {
    let nobody = format!("127.0.0.1:{}", free_port());
    let started = Instant::now();
    let output = Command::new(auditlog_binary())
        .args(["generate", "--count", "5", "--delivery-timeout-ms", "1000"])
        .env("AUDITLOG_KAFKA_BROKERS", &nobody)
        .env("AUDITLOG_KAFKA_TOPIC", unique_name("generate_nowhere"))
        .env("AUDITLOG_LOG", "error")
        .output()
        .expect("run auditlog generate");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "must fail without a broker:\n{stderr}"
    );
    assert!(
        stderr.contains("error: 5 of 5 events were not delivered; first error: event "),
        "{stderr}"
    );
    assert!(stderr.contains("Message timed out"), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_restart_during_generate_loses_nothing_and_duplicates_nothing() {
    const NUM_EVENTS: u64 = 50_000;
    const SEED: u64 = 21;
    // Slow enough that the run spans the restart; the restart itself (a controlled
    // shutdown, then a JVM start) takes seconds to tens of seconds on a busy machine.
    const RATE: &str = "5000";
    const DELIVERY_TIMEOUT_MS: &str = "90000";
    /// Events in the topic before the restart: a tenth of the run.
    const STARTED_AFTER: usize = 5_000;
    let mut broker = PrivateBroker::start();
    let topic = unique_name("generate_restart");
    auditlog_testkit::create_topic(&broker.brokers(), &topic, PARTITIONS).await;

    let mut generate = AuditlogCommand::new(auditlog_binary(), "generate_restart")
        .args(["generate", "--no-progress", "--count"])
        .arg(NUM_EVENTS.to_string())
        .args(["--seed", &SEED.to_string(), "--rate", RATE])
        .args(["--delivery-timeout-ms", DELIVERY_TIMEOUT_MS])
        .env("AUDITLOG_KAFKA_BROKERS", broker.brokers())
        .env("AUDITLOG_KAFKA_TOPIC", &topic)
        .spawn();

    // The restart must fall into the run: once some events are in, not after a fixed
    // time that a slow start could use up.
    let sent = read_topic(
        &broker.brokers(),
        &topic,
        PARTITIONS,
        STARTED_AFTER,
        Duration::from_secs(120),
    )
    .await;
    assert!(
        sent.len() >= STARTED_AFTER,
        "generate did not start sending:\n{}",
        generate.log()
    );
    let stopping = Instant::now();
    tokio::task::block_in_place(|| {
        broker.stop();
        broker.resume();
    });
    eprintln!("broker restarted in {:?}", stopping.elapsed());

    // The rest at the rate, plus the delivery timeout of what the restart held up.
    let status = tokio::task::block_in_place(|| generate.wait_for_exit(Duration::from_secs(600)))
        .unwrap_or_else(|| panic!("generate did not exit:\n{}", generate.log()));
    let output = generate.log();
    // Every event that was not confirmed is named, by id, in a warning of its own.
    let failed: HashSet<Uuid> = output
        .lines()
        .filter(|line| line.contains("audit event not delivered"))
        .filter_map(|line| {
            let start = line.find("event_id=")? + "event_id=".len();
            line.get(start..start + 36)?.parse().ok()
        })
        .collect();
    assert_eq!(
        status.success(),
        failed.is_empty(),
        "exit 0 exactly when every event was confirmed ({status:?}):\n{output}"
    );

    let expected: HashSet<Uuid> = TrafficGenerator::new(SEED)
        .take(NUM_EVENTS as usize)
        .map(|event| event.id)
        .collect();
    assert!(
        failed.is_subset(&expected),
        "failures name generated events"
    );
    let confirmed: HashSet<Uuid> = expected.difference(&failed).copied().collect();
    let records = read_topic(
        &broker.brokers(),
        &topic,
        PARTITIONS,
        confirmed.len(),
        Duration::from_secs(120),
    )
    .await;
    let codec = EventCodec::new(Framing::SingleObject);
    let mut copies: HashMap<Uuid, usize> = HashMap::new();
    for record in &records {
        let event = codec.decode(record.value()).expect("decodable event");
        *copies.entry(event.id).or_default() += 1;
    }
    let twice: Vec<_> = copies.iter().filter(|(_, count)| **count > 1).collect();
    assert!(
        twice.is_empty(),
        "idempotence: no event twice, got {} duplicated",
        twice.len()
    );
    let lost = confirmed
        .iter()
        .filter(|id| !copies.contains_key(id))
        .count();
    assert_eq!(lost, 0, "every confirmed event is in the topic");
    let unexpected = copies.keys().filter(|id| !expected.contains(id)).count();
    assert_eq!(unexpected, 0, "nothing but generated events");
    eprintln!(
        "{} confirmed, {} reported failed by id, {} read back",
        confirmed.len(),
        failed.len(),
        records.len()
    );
}
