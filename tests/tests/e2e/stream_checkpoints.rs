//! The archive's manifests and the ingester's signed checkpoints, while `stream` runs: a
//! checkpoint published after the process started (and after it last read the checkpoint
//! topic) reaches a later manifest of every partition. Against the real S3 server (SeaweedFS,
//! private to the test) and the shared Kafka; the checkpoints are signed as an ingester signs
//! them.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use auditlog_e2e::pipeline::events;
use auditlog_e2e::stream::{publish, publish_checkpoint, spawn_stream};
use auditlog_integrity::CheckpointSigner;
use auditlog_testkit::{S3Server, create_topic, kafka_brokers, log_dir, unique_name};
use serde_json::Value;

const PARTITIONS: i32 = 3;
const BUCKET: &str = "audit-archive";
/// How long each round may take to reach the archive's manifests.
const ROUND_TIMEOUT: Duration = Duration::from_secs(120);
/// Events published to move the archive on when it stands still.
const NUDGE_EVENTS: usize = PARTITIONS as usize * 2;

/// Each partition's newest manifest, read from its chain's head (`None` before the first).
async fn newest_manifests(s3: &S3Server, prefix: &str, topic: &str) -> BTreeMap<i32, Value> {
    let mut newest = BTreeMap::new();
    for partition in 0..PARTITIONS {
        let head_key = format!("{prefix}/manifests/{topic}/{partition}/HEAD.json");
        let Some(head) = s3.get_object(BUCKET, &head_key).await else {
            continue;
        };
        let head: Value = serde_json::from_slice(&head).expect("HEAD.json is JSON");
        let key = head["key"].as_str().expect("the head names its manifest");
        let manifest = s3
            .get_object(BUCKET, key)
            .await
            .expect("the head's manifest");
        newest.insert(
            partition,
            serde_json::from_slice(&manifest).expect("manifest is JSON"),
        );
    }
    newest
}

/// Waits until every partition's newest manifest carries a checkpoint that signs at least
/// `signed` (its last offset). A manifest written just before the checkpoint was published
/// carries the one before it, and nothing new is written while no events arrive: a few more
/// events are published each time the archive stands still, so that another manifest
/// follows. Returns the manifests that met it, and how many events it published.
async fn wait_until_signed(
    s3: &S3Server,
    prefix: &str,
    topic: &str,
    signed: &BTreeMap<i32, i64>,
    seed: u64,
) -> (BTreeMap<i32, Value>, usize) {
    let deadline = Instant::now() + ROUND_TIMEOUT;
    let mut nudges = 0;
    loop {
        let newest = newest_manifests(s3, prefix, topic).await;
        let covered = |partition: &i32, last: &i64| {
            newest.get(partition).is_some_and(|manifest| {
                manifest["checkpoint"]["signed_through"]
                    .as_i64()
                    .is_some_and(|through| through >= *last)
            })
        };
        if signed
            .iter()
            .all(|(partition, last)| covered(partition, last))
        {
            return (newest, nudges as usize * NUDGE_EVENTS);
        }
        assert!(
            Instant::now() < deadline,
            "no manifest carries the checkpoint signing {signed:?} within {ROUND_TIMEOUT:?}; \
             newest manifests: {newest:#?}"
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
        nudges += 1;
        publish(topic, &events(seed + nudges, NUDGE_EVENTS)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_archive_carries_checkpoints_signed_after_it_started() {
    let topic = unique_name("stream_checkpoints");
    create_topic(&kafka_brokers(), &topic, PARTITIONS).await;
    create_topic(&kafka_brokers(), &format!("{topic}-checkpoints"), 1).await;
    let s3 = S3Server::start().await;
    s3.create_bucket(BUCKET).await;
    let prefix = unique_name("audit").replace('_', "-").to_lowercase();
    let config = log_dir().join(format!("{}.toml", unique_name("stream_checkpoints")));
    std::fs::write(
        &config,
        format!(
            "[[stream.sinks]]\nname = \"archive-{prefix}\"\nkind = \"s3\"\n\
             url = \"s3://{BUCKET}/{prefix}\"\nendpoint = \"{}\"\nbatch_events = 10\n\
             batch_max_age_ms = 200\nmanifest_interval_secs = 1\n",
            s3.endpoint()
        ),
    )
    .expect("config file");
    let signer = CheckpointSigner::generate();
    let mut stream = spawn_stream("stream_checkpoints", &config, &topic, Some(&s3), false);

    // The first round: the process reads the checkpoint topic for the first time.
    publish(&topic, &events(91, 60)).await;
    let first = publish_checkpoint(&topic, PARTITIONS, &signer, 60).await;
    let (_, nudged) = wait_until_signed(&s3, &prefix, &topic, &first, 1_000).await;

    // The second, while it keeps running: only a later read of the same reader finds it.
    let published = 60 + nudged;
    publish(&topic, &events(92, 60)).await;
    let second = publish_checkpoint(&topic, PARTITIONS, &signer, published + 60).await;
    assert!(
        second
            .iter()
            .all(|(partition, last)| first[partition] < *last),
        "the second round signs further: {first:?} then {second:?}"
    );
    let (manifests, _) = wait_until_signed(&s3, &prefix, &topic, &second, 2_000).await;
    assert!(
        stream.is_running(),
        "the stream ran throughout; log:\n{}",
        stream.log()
    );
    drop(stream);
    for (partition, manifest) in manifests {
        assert!(
            manifest["sequence"].as_u64() > Some(0),
            "partition {partition}: a later manifest than the first: {manifest:#}"
        );
    }
}
