//! Whole-system tests of `auditlog generate`: the real binary against the local broker.
//!
//! Acceptance: `generate --count 100000` exits 0 only when every event is confirmed, and
//! the topic then holds exactly that many decodable events with distinct ids.

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use auditlog_e2e::pipeline::{auditlog_binary, create_topic, free_port};
use auditlog_e2e::{kafka_brokers, unique_name};
use auditlog_event::{EventCodec, Framing};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

const PARTITIONS: i32 = 4;

/// Every message of `topic`, read from the beginning until `expected` arrived and a
/// second passed without more (or `timeout`).
fn read_topic(topic: &str, expected: usize, timeout: Duration) -> Vec<Vec<u8>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka_brokers())
        .set("group.id", unique_name("generate_reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .expect("assignment");
    }
    consumer.assign(&assignment).expect("assign");
    let deadline = Instant::now() + timeout;
    let mut payloads = Vec::with_capacity(expected);
    let mut quiet_since = Instant::now();
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                payloads.push(message.payload().unwrap_or_default().to_vec());
                quiet_since = Instant::now();
            }
            Some(Err(error)) => panic!("consume {topic}: {error}"),
            None if payloads.len() >= expected
                && quiet_since.elapsed() > Duration::from_secs(1) =>
            {
                break;
            }
            None => {}
        }
    }
    payloads
}

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

    let payloads = tokio::task::spawn_blocking({
        let topic = topic.clone();
        move || read_topic(&topic, NUM_EVENTS, Duration::from_secs(180))
    })
    .await
    .expect("reader");
    assert_eq!(payloads.len(), NUM_EVENTS, "messages in {topic}");
    let codec = EventCodec::new(Framing::SingleObject);
    let mut ids = HashSet::with_capacity(NUM_EVENTS);
    for payload in &payloads {
        let event = codec.decode(payload).expect("decodable event");
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
