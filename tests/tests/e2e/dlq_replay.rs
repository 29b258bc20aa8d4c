//! Whole-system tests of `auditlog dlq replay` against the real broker and ClickHouse
//! engine: replaying poison converges (the dead-letter topic does not grow, however often),
//! replays never trip the flood stop, and a null value stays null all the way.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use auditlog_e2e::pipeline::{
    AuditlogProcess, PipelineTarget, events, metric_sum, produce_payloads, producer,
};
use auditlog_e2e::{Record, read_topic};
use auditlog_event::{EventCodec, Framing};
use auditlog_ingester::headers::{
    HEADER_REPLAY_LETTER_OFFSET, HEADER_REPLAY_LETTER_PARTITION, HEADER_REPLAY_ORIGIN_OFFSET,
    HEADER_REPLAY_ORIGIN_PARTITION, HEADER_REPLAY_ORIGIN_TOPIC, HEADER_REPLAY_REASON,
    HEADER_REPLAYED_OFFSET, HEADER_SOURCE_OFFSET, HEADER_SOURCE_TOPIC,
};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;

const TIMEOUT: Duration = Duration::from_secs(180);
const NUM_EVENTS: usize = 200;
const NUM_POISON: usize = 30;
const NUM_TOMBSTONES: usize = 3;
const NUM_LETTERS: usize = NUM_POISON + NUM_TOMBSTONES;
/// Below the live poison count plus one replay of it: counting replays would trip it.
const POISON_MAX: usize = NUM_LETTERS + 10;

/// Every message in `topic` (one partition), however many: read until `at_least` have come
/// (and a second more), or for at most [`TIMEOUT`] while fewer are there.
async fn whole_topic(target: &PipelineTarget, topic: &str, at_least: usize) -> Vec<Record> {
    read_topic(&target.brokers, topic, 1, at_least, TIMEOUT).await
}

/// Waits until the ingester's counter `name` reaches `expected`.
async fn wait_for_counter(ingester: &AuditlogProcess, name: &str, expected: f64) -> f64 {
    let deadline = Instant::now() + TIMEOUT;
    let mut last = 0.0;
    while Instant::now() < deadline {
        last = metric_sum(&ingester.metrics().await.unwrap_or_default(), name);
        if last >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    last
}

#[tokio::test(flavor = "multi_thread")]
async fn replaying_poison_twice_does_not_grow_the_dead_letter_topic() {
    let target = PipelineTarget::create("dlq_replay", 1).await;
    target.migrate();
    let codec = EventCodec::new(Framing::SingleObject);
    let valid = events(21, NUM_EVENTS);
    let mut payloads: Vec<(String, Vec<u8>)> = valid
        .iter()
        .map(|event| {
            (
                event.resource_id.to_string(),
                codec.encode_to_vec(event).unwrap(),
            )
        })
        .collect();
    // One of each kind: a registry id nobody registered, an invalid uuid in our own framing
    // and schema, a zero-length value (not null).
    let mut bad_uuid = codec.encode_to_vec(&valid[0]).unwrap();
    bad_uuid[11] = b'x';
    let kinds = [vec![0x00, 0, 0, 0, 42, 0], bad_uuid, Vec::new()];
    for index in 0..NUM_POISON {
        let position = index * NUM_EVENTS / NUM_POISON;
        payloads.insert(
            position + index,
            (
                format!("poison-{index}"),
                kinds[index % kinds.len()].clone(),
            ),
        );
    }
    produce_payloads(&target.topic, payloads).await;
    let tombstone_keys: BTreeSet<String> = (0..NUM_TOMBSTONES)
        .map(|index| format!("tombstone-{index}"))
        .collect();
    let producer = producer();
    for key in &tombstone_keys {
        producer
            .send(
                FutureRecord::<str, [u8]>::to(&target.topic).key(key),
                Duration::from_secs(30),
            )
            .await
            .expect("tombstone delivered");
    }

    let poison_max = POISON_MAX.to_string();
    let mut ingester = target.spawn_ingester("dlq_replay", &["--poison-max", &poison_max]);
    target.wait_for_rows(NUM_EVENTS as u64, TIMEOUT).await;
    let letters = whole_topic(&target, &target.dlq_topic, NUM_LETTERS).await;
    assert_eq!(letters.len(), NUM_LETTERS, "{}", ingester.log());
    let null_letters: BTreeSet<String> = letters
        .iter()
        .filter(|letter| letter.payload.is_none())
        .map(|letter| String::from_utf8_lossy(&letter.key).into_owned())
        .collect();
    assert_eq!(
        null_letters, tombstone_keys,
        "null values are dead-lettered as null"
    );

    let dry_run = target.run(&["dlq", "replay", "--dry-run"]);
    assert!(
        dry_run.contains(&format!("would re-send {NUM_LETTERS} to {}", target.topic)),
        "{dry_run}"
    );
    for round in 1..=2 {
        let report = target.run(&["dlq", "replay"]);
        assert!(
            report.contains(&format!("re-sent {NUM_LETTERS} to {}", target.topic))
                && report.contains(&format!(
                    "{:>8}  decode          empty message",
                    NUM_POISON / 3 + NUM_TOMBSTONES
                ))
                && report.contains(&format!(
                    "{:>8}  decode          invalid uuid at id",
                    NUM_POISON / 3
                ))
                && report.contains(&format!(
                    "{:>8}  unknown_schema  unknown schema id 42",
                    NUM_POISON / 3
                ))
                && report.contains("skipped 0"),
            "round {round}: {report}"
        );
        let recognised = wait_for_counter(
            &ingester,
            "auditlog_ingest_replayed_still_poison_total",
            (round * NUM_LETTERS) as f64,
        )
        .await;
        assert_eq!(
            recognised,
            (round * NUM_LETTERS) as f64,
            "round {round}: every replayed letter recognised as still poison\n{}",
            ingester.log()
        );
        assert!(
            ingester.is_running(),
            "round {round}: replays must not trip the flood stop\n{}",
            ingester.log()
        );
        let letters = whole_topic(&target, &target.dlq_topic, NUM_LETTERS).await;
        assert_eq!(
            letters.len(),
            NUM_LETTERS,
            "round {round}: the dead-letter topic grew"
        );
    }

    // Each replayed message carried its origin, and a tombstone was replayed as null.
    let main_topic = whole_topic(&target, &target.topic, NUM_EVENTS + 3 * NUM_LETTERS).await;
    let replayed: Vec<&Record> = main_topic
        .iter()
        .filter(|record| record.header(HEADER_REPLAY_ORIGIN_OFFSET).is_some())
        .collect();
    assert_eq!(replayed.len(), 2 * NUM_LETTERS);
    for record in &replayed {
        let origin: i64 = record
            .header(HEADER_REPLAY_ORIGIN_OFFSET)
            .unwrap()
            .parse()
            .unwrap();
        let original = main_topic
            .iter()
            .find(|candidate| candidate.offset == origin)
            .expect("the original position exists");
        assert_eq!(original.key, record.key);
        assert_eq!(
            original.payload, record.payload,
            "replayed unchanged, null as null"
        );
        assert!(record.header(HEADER_REPLAY_REASON).is_some());
    }
    assert_eq!(
        replayed
            .iter()
            .filter(|record| record.payload.is_none())
            .count(),
        2 * NUM_TOMBSTONES
    );

    // A replayed message that fails for another reason than its letter recorded gets a new
    // letter, under its original position.
    let headers = OwnedHeaders::new()
        .insert(text_header(HEADER_REPLAY_ORIGIN_TOPIC, &target.topic))
        .insert(text_header(HEADER_REPLAY_ORIGIN_PARTITION, "0"))
        .insert(text_header(HEADER_REPLAY_ORIGIN_OFFSET, "999999"))
        .insert(text_header(HEADER_REPLAY_LETTER_PARTITION, "0"))
        .insert(text_header(HEADER_REPLAY_LETTER_OFFSET, "0"))
        .insert(text_header(
            HEADER_REPLAY_REASON,
            "a reason an older ingester gave",
        ));
    producer
        .send(
            FutureRecord::<str, [u8]>::to(&target.topic)
                .key("changed-reason")
                .payload(b"not avro")
                .headers(headers),
            Duration::from_secs(30),
        )
        .await
        .expect("delivered");
    let letters = whole_topic(&target, &target.dlq_topic, NUM_LETTERS + 1).await;
    assert_eq!(letters.len(), NUM_LETTERS + 1, "{}", ingester.log());
    let new_letter = letters.last().unwrap();
    assert_eq!(new_letter.key, b"changed-reason");
    assert_eq!(
        new_letter.header(HEADER_SOURCE_TOPIC),
        Some(target.topic.clone())
    );
    assert_eq!(
        new_letter.header(HEADER_SOURCE_OFFSET).as_deref(),
        Some("999999")
    );
    assert!(new_letter.header(HEADER_REPLAYED_OFFSET).is_some());
    let status = ingester
        .terminate(Duration::from_secs(30))
        .expect("exits on SIGTERM");
    assert!(status.success(), "{status:?}\n{}", ingester.log());
}

fn text_header<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header {
        key,
        value: Some(value),
    }
}
