//! What the streaming tests (`stream*` modules) share: events published the way a service
//! publishes them, checkpoints signed the way an ingester signs them, the `stream` process, and
//! the "each id once" check every destination is held to.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use auditlog_event::{Actor, AuditEvent};
use auditlog_integrity::{ChainHead, CheckpointSigner};
use auditlog_producer::Producer;
use auditlog_testkit::{AuditlogCommand, S3Server, auditlog_binary, free_port, read_topic};
use uuid::Uuid;

use crate::kafka_brokers;
use crate::pipeline::{AuditlogProcess, produce_payloads};

/// How long a test waits for the topic it signs to hold the messages it published.
const READ_TIMEOUT: Duration = Duration::from_secs(180);

/// Publishes `events` to `topic` on the shared broker through the SDK, each acknowledged
/// before the next is sent, so the topic holds them in this order.
pub async fn publish(topic: &str, events: &[AuditEvent]) {
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

/// The event id an OpenSearch search hit is indexed under (its `_id`).
pub fn hit_id(hit: &serde_json::Value) -> Uuid {
    hit["_id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("a hit under an event id: {hit}"))
}

/// The distinct ids, or a panic naming those that came more than once (`what` says where).
pub fn ids_once(ids: impl IntoIterator<Item = Uuid>, what: &str) -> BTreeSet<Uuid> {
    let mut counts: BTreeMap<Uuid, usize> = BTreeMap::new();
    for id in ids {
        *counts.entry(id).or_default() += 1;
    }
    let repeated: Vec<_> = counts.iter().filter(|(_, count)| **count > 1).collect();
    assert!(
        repeated.is_empty(),
        "{what}: ids delivered more than once: {repeated:?}"
    );
    counts.into_keys().collect()
}

/// Makes every third event's actor "Carol" and takes the name from every other actor that
/// had it: afterwards exactly the returned positions are those a `username:carol` filter
/// selects, by construction.
pub fn every_third_by_carol(events: &mut [AuditEvent]) -> BTreeSet<usize> {
    let mut carol = BTreeSet::new();
    for (index, event) in events.iter_mut().enumerate() {
        if index % 3 == 0 {
            event.user = Some(Actor {
                id: Uuid::from_u128(0xCA501),
                username: "Carol".into(),
                email: "carol@example.com".into(),
                name: "Carol".into(),
            });
            carol.insert(index);
        } else if event
            .user
            .as_ref()
            .is_some_and(|user| user.username.eq_ignore_ascii_case("carol"))
        {
            event.user = None;
        }
    }
    carol
}

/// Waits for `process` (an `auditlog stream --until-caught-up`) to exit and returns how; panics
/// with its log when it is still running after `timeout`. The test kit's wait blocks its thread,
/// so it runs where the (multi-threaded) runtime allows that.
pub async fn wait_for_exit(
    process: &mut crate::pipeline::AuditlogProcess,
    timeout: Duration,
) -> std::process::ExitStatus {
    tokio::task::block_in_place(|| process.wait_for_exit(timeout)).unwrap_or_else(|| {
        panic!(
            "stream did not catch up within {timeout:?}; log:\n{}",
            process.log()
        )
    })
}

/// `auditlog stream` (its log named after `test`), with `--until-caught-up` or until killed.
/// The archive's manifests find signed checkpoints in `TOPIC-checkpoints`, and the S3 key pair
/// comes through the environment, as an operator keeps it out of the file.
pub fn spawn_stream(
    test: &str,
    config: &Path,
    topic: &str,
    s3: Option<&S3Server>,
    until_caught_up: bool,
) -> AuditlogProcess {
    let kafka = [
        "--kafka-topic".to_owned(),
        topic.to_owned(),
        "--kafka-checkpoint-topic".to_owned(),
        format!("{topic}-checkpoints"),
    ];
    stream_command(test, config, &kafka, s3, until_caught_up).spawn()
}

/// The `auditlog stream` command for `config`, not yet started: `kafka` are the global
/// Kafka flags (topic, brokers, checkpoint topic), the S3 key pair comes through the
/// environment, and its ops endpoints listen on a free port.
pub fn stream_command(
    test: &str,
    config: &Path,
    kafka: &[String],
    s3: Option<&S3Server>,
    until_caught_up: bool,
) -> AuditlogCommand {
    let ops_port = free_port();
    let mut args = vec![
        "--config".to_owned(),
        config.to_str().expect("utf-8 path").to_owned(),
    ];
    args.extend_from_slice(kafka);
    args.extend([
        "stream".to_owned(),
        "--metrics-listen".to_owned(),
        format!("127.0.0.1:{ops_port}"),
    ]);
    if until_caught_up {
        args.push("--until-caught-up".to_owned());
    }
    let mut command = AuditlogCommand::new(auditlog_binary(), test).args(args);
    if let Some(s3) = s3 {
        let credentials = s3.credentials();
        command = command
            .env("AUDITLOG_S3_ACCESS_KEY", credentials.access_key.clone())
            .env("AUDITLOG_S3_SECRET_KEY", credentials.secret_key.clone());
    }
    command.ops_port(ops_port)
}

/// Signs the end offsets of `topic` (once it holds `messages` messages over `partitions`) as
/// an ingester would, its digests aside (they are not the archive's business), and publishes
/// the checkpoint to `TOPIC-checkpoints`; the signed last offset of each partition.
pub async fn publish_checkpoint(
    topic: &str,
    partitions: i32,
    signer: &CheckpointSigner,
    messages: usize,
) -> BTreeMap<i32, i64> {
    let records = read_topic(&kafka_brokers(), topic, partitions, messages, READ_TIMEOUT).await;
    let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
    for record in &records {
        let end = ends.entry(record.partition).or_default();
        *end = (*end).max(record.offset);
    }
    let heads = ends
        .iter()
        .map(|(partition, last_offset)| ChainHead {
            topic: topic.to_owned(),
            partition: *partition,
            last_offset: *last_offset,
            digest: [7; 32],
        })
        .collect();
    let micros = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000) as i64;
    let envelope = signer.sign(micros, heads).envelope();
    produce_payloads(
        &format!("{topic}-checkpoints"),
        vec![(
            "checkpoint".into(),
            serde_json::to_vec(&envelope).expect("json"),
        )],
    )
    .await;
    ends
}
