//! Whole-system test of a sink's dead-letter topic: a real OpenSearch node refuses one event
//! for good, and `auditlog stream --until-caught-up` puts that event in the sink's
//! dead-letter topic with the destination's reason, delivers every other event once, and
//! commits past the batch.
//!
//! The refusal is a real one: the month's index is made before the sink runs, with
//! `user_agent` mapped as an integer. OpenSearch takes the events whose user agent is a
//! number in a string ("1234") and answers `mapper_parsing_exception` for the one whose
//! user agent is not, in the same bulk request: a refusal about that event, not about the
//! index, which is what the sink dead-letters.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use auditlog_e2e::pipeline::events;
use auditlog_event::AuditEvent;
use auditlog_producer::Producer;
use auditlog_testkit::{
    AuditlogCommand, OpenSearchNode, auditlog_binary, create_topic, free_port, kafka_brokers,
    log_dir, read_topic, unique_name,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{Value, json};
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(180);

async fn publish(topic: &str, events: &[AuditEvent]) {
    let producer = Producer::builder(kafka_brokers(), topic)
        .build()
        .expect("producer");
    for event in events {
        producer.send(event).await.expect("delivered to kafka");
    }
    producer
        .shutdown(Duration::from_secs(30))
        .await
        .expect("producer shutdown");
}

/// The offset the consumer group committed for partition 0 of `topic`.
async fn committed(group: &str, topic: &str) -> Option<i64> {
    let (group, topic) = (group.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", kafka_brokers())
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let mut list = TopicPartitionList::new();
        list.add_partition(&topic, 0);
        let committed = consumer
            .committed_offsets(list, Duration::from_secs(10))
            .expect("committed offsets");
        match committed.elements()[0].offset() {
            Offset::Offset(offset) => Some(offset),
            _ => None,
        }
    })
    .await
    .expect("reading the commit")
}

/// Every document id of the indices under `prefix`.
async fn indexed_ids(opensearch: &OpenSearchNode, prefix: &str) -> Vec<Uuid> {
    opensearch.refresh(&format!("{prefix}-*")).await;
    let answer = opensearch
        .json(
            "POST",
            &format!("/{prefix}-*/_search"),
            Some(&json!({ "size": 10000, "_source": false })),
        )
        .await;
    answer["hits"]["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|hit| {
            hit["_id"]
                .as_str()
                .and_then(|id| id.parse().ok())
                .expect("uuid")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_the_destination_refuses_for_good_lands_in_the_sinks_dead_letter_topic_with_its_reason()
 {
    let topic = unique_name("stream_dead_letter");
    create_topic(&kafka_brokers(), &topic, 1).await;
    let opensearch = OpenSearchNode::start().await;
    let prefix = unique_name("refusing").replace('_', "-").to_lowercase();
    let sink = unique_name("search").replace('_', "-");

    let mut sent = events(95, 30);
    for event in &mut sent {
        event.user_agent = "1234".into();
    }
    let refused = 17;
    sent[refused].user_agent = "Mozilla/5.0 (not a number)".into();
    let refused_id = sent[refused].id;
    publish(&topic, &sent).await;

    // The index as the sink's template would make it, but for `user_agent`.
    let opaque = json!({ "type": "object", "enabled": false });
    let mapping = json!({ "mappings": { "properties": {
        "id": { "type": "keyword" },
        "request_id": { "type": "keyword" },
        "time": { "type": "date" },
        "diff": opaque,
        "additional_fields": opaque,
        "user_agent": { "type": "integer" }
    } } });
    let months: BTreeSet<String> = sent
        .iter()
        .map(|event| {
            format!(
                "{prefix}-{:04}.{:02}",
                event.time.year(),
                u8::from(event.time.month())
            )
        })
        .collect();
    for index in &months {
        opensearch
            .json("PUT", &format!("/{index}"), Some(&mapping))
            .await;
    }

    // One batch for the whole partition (sealed at the end offset, not by age), so the
    // refused event shares its bulk request with events OpenSearch takes.
    let config = log_dir().join(format!("{}.toml", unique_name("stream_dead_letter")));
    std::fs::write(
        &config,
        format!(
            "[[stream.sinks]]\nname = \"{sink}\"\nkind = \"opensearch\"\nformat = \"coder\"\n\
             url = \"{}\"\nindex_prefix = \"{prefix}\"\nbatch_max_age_ms = 60000\n",
            opensearch.url()
        ),
    )
    .expect("config file");
    let ops_port = free_port();
    let mut process = AuditlogCommand::new(auditlog_binary(), "stream_dead_letter")
        .args([
            "--config".to_owned(),
            config.to_str().expect("utf-8 path").to_owned(),
            "--kafka-topic".to_owned(),
            topic.clone(),
            "stream".to_owned(),
            "--metrics-listen".to_owned(),
            format!("127.0.0.1:{ops_port}"),
            "--until-caught-up".to_owned(),
        ])
        .ops_port(ops_port)
        .spawn();
    let deadline = Instant::now() + TIMEOUT;
    let status: ExitStatus = loop {
        if let Some(status) = process.exit_status() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "stream did not catch up within {TIMEOUT:?}; log:\n{}",
            process.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let log = process.log();
    assert!(status.success(), "exit {status}; log:\n{log}");

    // The refused event, in the sink's own dead-letter topic, with the reason.
    let dead_letter_topic = format!("{topic}-stream-{sink}-dlq");
    let letters = read_topic(&kafka_brokers(), &dead_letter_topic, 1, 1, TIMEOUT).await;
    assert_eq!(letters.len(), 1, "one letter: {letters:?}\n{log}");
    let letter = &letters[0];
    let header = |name: &str| {
        letter
            .header(name)
            .unwrap_or_else(|| panic!("header {name}: {:?}", letter.headers))
    };
    assert_eq!(header("auditlog.dlq.event_id"), refused_id.to_string());
    assert_eq!(header("auditlog.dlq.kind"), "mapper_parsing_exception");
    let reason = header("auditlog.dlq.reason");
    assert!(
        reason.contains("400 mapper_parsing_exception") && reason.contains("user_agent"),
        "{reason}"
    );
    assert_eq!(header("auditlog.dlq.source.topic"), topic);
    assert_eq!(header("auditlog.dlq.source.partition"), "0");
    assert_eq!(header("auditlog.dlq.source.offset"), refused.to_string());
    assert_eq!(header("auditlog.dlq.sink"), sink);
    assert_eq!(header("auditlog.dlq.format"), "coder");
    assert!(!header("auditlog.dlq.time").is_empty());
    assert_eq!(letter.key, refused_id.to_string().into_bytes());
    let value: Value = serde_json::from_slice(letter.value()).expect("the event as sent");
    assert_eq!(value["id"], refused_id.to_string());
    assert_eq!(value["user_agent"], "Mozilla/5.0 (not a number)");

    // Every other event indexed once; the refused one not at all.
    let mut counts: BTreeMap<Uuid, usize> = BTreeMap::new();
    for id in indexed_ids(&opensearch, &prefix).await {
        *counts.entry(id).or_default() += 1;
    }
    assert!(counts.values().all(|count| *count == 1), "{counts:?}");
    let expected: BTreeSet<Uuid> = sent
        .iter()
        .map(|event| event.id)
        .filter(|id| *id != refused_id)
        .collect();
    assert_eq!(counts.into_keys().collect::<BTreeSet<_>>(), expected);

    // Caught up: the group committed past the whole partition, the refused event included.
    assert_eq!(
        committed(&format!("auditlog-stream-{sink}"), &topic).await,
        Some(sent.len() as i64)
    );
    // And said so, naming the event and the reason.
    let line = log
        .lines()
        .find(|line| line.contains("refused an event for good"))
        .unwrap_or_else(|| panic!("no dead-letter line:\n{log}"));
    assert!(
        line.contains(&refused_id.to_string()) && line.contains("mapper_parsing_exception"),
        "{line}"
    );
}
