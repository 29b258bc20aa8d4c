//! Fixtures for tests that run the real pipeline: topics, encoded events, `auditlog`
//! processes (killed for real).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use auditlog_event::{AuditEvent, EventCodec, Framing};
pub use auditlog_testkit::{
    AuditlogCommand, AuditlogProcess, auditlog_binary, free_port, log_dir, metric_sum, repo_root,
    tools_dir,
};
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use uuid::Uuid;

use crate::{kafka_brokers, unique_name};

/// Seconds a bare rdkafka consumer (a group of its own, no processing) takes to read
/// `num_events` messages of `topic` from the start, or `timeout`: the benches' baseline for
/// what reading alone costs.
pub fn consume_only(brokers: &str, topic: &str, num_events: usize, timeout: Duration) -> f64 {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique_name("bench_consume_only"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let started = Instant::now();
    let mut num_read = 0;
    while num_read < num_events && started.elapsed() < timeout {
        if let Some(Ok(_)) = consumer.poll(Duration::from_millis(100)) {
            num_read += 1;
        }
    }
    started.elapsed().as_secs_f64()
}

/// Creates a topic with `partitions` partitions on the shared broker.
pub async fn create_topic(name: &str, partitions: i32) {
    auditlog_testkit::create_topic(&kafka_brokers(), name, partitions).await;
}

/// A producer with the SDK's correctness settings (idempotent, acks=all).
pub fn producer() -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", kafka_brokers())
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("compression.type", "lz4")
        .create()
        .expect("producer")
}

/// `count` distinct, valid events derived from the sample events: ids and resource ids
/// differ per index, times increase by one millisecond per event from `start`.
pub fn events(seed: u64, count: usize) -> Vec<AuditEvent> {
    let samples = auditlog_event::testing::sample_events();
    let start = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    (0..count)
        .map(|index| {
            let mut event = samples[index % samples.len()].clone();
            let unique = (u128::from(seed) << 64) | index as u128;
            // Version 7 and RFC 4122 variant bits, so the id is a well-formed UUID.
            event.id =
                Uuid::from_u128((unique & !(0xf << 76) & !(0x3 << 62)) | (0x7 << 76) | (0x2 << 62));
            event.resource_id = Uuid::from_u128(unique ^ 0x5a5a_5a5a);
            event.time = start + time::Duration::milliseconds(index as i64);
            event
        })
        .collect()
}

/// Produces raw payloads keyed as the SDK does, waiting for every acknowledgement.
pub async fn produce_payloads(topic: &str, payloads: Vec<(String, Vec<u8>)>) {
    let producer = producer();
    for chunk in payloads.chunks(10_000) {
        let sends = chunk.iter().map(|(key, payload)| {
            let producer = producer.clone();
            async move {
                producer
                    .send(
                        FutureRecord::to(topic).key(key).payload(payload),
                        Duration::from_secs(60),
                    )
                    .await
                    .map_err(|(error, _)| error)
            }
        });
        for result in futures::future::join_all(sends).await {
            result.expect("delivery confirmed");
        }
    }
}

/// Encodes events (single-object framing) and produces them keyed by resource id.
pub async fn produce_events(topic: &str, events: &[AuditEvent]) {
    let codec = EventCodec::new(Framing::SingleObject);
    let payloads = events
        .iter()
        .map(|event| {
            let payload = codec.encode_to_vec(event).expect("encode");
            (event.resource_id.to_string(), payload)
        })
        .collect();
    produce_payloads(topic, payloads).await;
}

/// Asserts that exactly `expected` events are visible and distinct, with `log` to explain
/// a failure.
pub fn assert_exact(counts: (u64, u64, u64), expected: u64, log: &str) {
    let (visible, distinct, physical) = counts;
    assert_eq!(
        (visible, distinct),
        (expected, expected),
        "visible (one per (time, id)) and distinct ids must both equal the events produced \
         (physical rows {physical}); ingester logs:\n{log}"
    );
}

/// Everything a test's pipeline runs against.
#[derive(Debug, Clone)]
pub struct PipelineTarget {
    pub brokers: String,
    pub topic: String,
    pub dlq_topic: String,
    pub checkpoint_topic: String,
    pub group: String,
    pub clickhouse_url: String,
    pub database: String,
    /// The checkpoint signing key (`auditlog keygen`); its public half is `<path>.pub`.
    pub signing_key: PathBuf,
    /// The replication factor and `min.insync.replicas` [`migrate`](Self::migrate) creates
    /// topics with: 1 and 1 on the shared one-broker stack (`auditlog migrate` defaults to a
    /// production cluster's 3 and 2).
    pub replication: (i32, i32),
}

impl PipelineTarget {
    /// Fresh topic (with `partitions`), dead-letter topic, group and database names, on the
    /// shared broker.
    pub async fn create(prefix: &str, partitions: i32) -> Self {
        Self::create_on(&kafka_brokers(), prefix, partitions).await
    }

    /// The same on the broker at `brokers` (a private one).
    pub async fn create_on(brokers: &str, prefix: &str, partitions: i32) -> Self {
        let target = Self::named(brokers, prefix);
        auditlog_testkit::create_topic(brokers, &target.topic, partitions).await;
        auditlog_testkit::create_topic(brokers, &target.dlq_topic, 1).await;
        auditlog_testkit::create_topic(brokers, &target.checkpoint_topic, 1).await;
        target
    }

    /// Fresh names only: the topics are left for `auditlog migrate` to create.
    pub fn named(brokers: &str, prefix: &str) -> Self {
        let signing_key = log_dir().join(format!("{}.key", unique_name(prefix)));
        let keygen = Command::new(auditlog_binary())
            .arg("keygen")
            .arg("--out")
            .arg(&signing_key)
            .output()
            .expect("run auditlog keygen");
        assert!(keygen.status.success(), "{keygen:?}");
        Self {
            brokers: brokers.to_owned(),
            topic: unique_name(prefix),
            dlq_topic: unique_name(&format!("{prefix}_dlq")),
            checkpoint_topic: unique_name(&format!("{prefix}_checkpoints")),
            group: unique_name(&format!("{prefix}_group")),
            clickhouse_url: crate::clickhouse_url(),
            database: unique_name(prefix),
            signing_key,
            replication: (1, 1),
        }
    }

    /// The public key that verifies this target's checkpoints.
    pub fn public_key(&self) -> PathBuf {
        let mut path = self.signing_key.clone().into_os_string();
        path.push(".pub");
        PathBuf::from(path)
    }

    /// Environment that points `auditlog` at this target.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AUDITLOG_KAFKA_BROKERS", self.brokers.clone()),
            ("AUDITLOG_KAFKA_TOPIC", self.topic.clone()),
            ("AUDITLOG_KAFKA_DLQ_TOPIC", self.dlq_topic.clone()),
            (
                "AUDITLOG_KAFKA_CHECKPOINT_TOPIC",
                self.checkpoint_topic.clone(),
            ),
            (
                "AUDITLOG_SIGNING_KEY_FILE",
                self.signing_key.display().to_string(),
            ),
            // A checkpoint a second, so runs sign often. No test may count on a tick (a
            // loaded machine ingests a whole run between two): only a clean stop signs for
            // certain, and only the heads its own ingester moved.
            ("AUDITLOG_CHECKPOINT_INTERVAL_SECS", "1".to_owned()),
            (
                "AUDITLOG_PUBLIC_KEYS",
                self.public_key().display().to_string(),
            ),
            ("AUDITLOG_KAFKA_GROUP", self.group.clone()),
            ("AUDITLOG_CLICKHOUSE_URL", self.clickhouse_url.clone()),
            ("AUDITLOG_CLICKHOUSE_DATABASE", self.database.clone()),
            // A killed member's partitions move after 6 s instead of librdkafka's 45 s.
            (
                "AUDITLOG_KAFKA_PROPERTIES",
                "session.timeout.ms=6000,heartbeat.interval.ms=1000".to_owned(),
            ),
        ]
    }

    /// Runs `auditlog <args>` to completion and returns its stdout; panics on failure.
    pub fn run(&self, args: &[&str]) -> String {
        let output = Command::new(auditlog_binary())
            .args(args)
            .envs(self.env())
            .output()
            .expect("run auditlog");
        assert!(
            output.status.success(),
            "auditlog {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs `auditlog verify <args>`: whether it passed, and its stdout and stderr.
    pub fn verify(&self, args: &[&str]) -> (bool, String) {
        let output = Command::new(auditlog_binary())
            .arg("verify")
            .args(args)
            .envs(self.env())
            .output()
            .expect("run auditlog verify");
        (
            output.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        )
    }

    /// Asserts that `auditlog verify` finds the data untouched, with every one of
    /// `num_events` events signed for (`log` explains a failure).
    pub fn assert_verifies(&self, num_events: u64, log: &str) {
        let (valid, output) = self.verify(&["--no-progress"]);
        assert!(valid, "verify failed:\n{output}\ningester logs:\n{log}");
        let summary = output.lines().next().unwrap_or_default();
        let events = format!("{num_events}/{num_events} events valid");
        assert!(summary.ends_with(&events), "{output}");
        assert!(
            !output.contains("not yet signed") && !summary.starts_with("0/"),
            "every batch is signed for once the ingesters stopped:\n{output}"
        );
    }

    /// Creates the missing topics (with [`replication`](Self::replication)) and applies the
    /// schema.
    pub fn migrate(&self) {
        let (factor, min_insync) = self.replication;
        self.run(&[
            "migrate",
            "--kafka-replication-factor",
            &factor.to_string(),
            "--kafka-min-insync-replicas",
            &min_insync.to_string(),
        ]);
    }

    /// Starts an ingester in the background.
    pub fn spawn_ingester(&self, name: &str, extra_args: &[&str]) -> AuditlogProcess {
        self.spawn_ingester_with(name, &self.env(), extra_args)
    }

    /// Starts an ingester in the background with `env` instead of this target's own.
    pub fn spawn_ingester_with(
        &self,
        name: &str,
        env: &[(&'static str, String)],
        extra_args: &[&str],
    ) -> AuditlogProcess {
        let metrics_port = free_port();
        AuditlogCommand::new(auditlog_binary(), name)
            .arg("ingest")
            .arg("--metrics-listen")
            .arg(format!("127.0.0.1:{metrics_port}"))
            // Small, frequent batches: more batch boundaries to get wrong under faults.
            .args(["--batch-max-age-ms", "200"])
            .args(extra_args.iter().copied())
            .envs(env.iter().cloned())
            .ops_port(metrics_port)
            .spawn()
    }

    /// A client for this target's database.
    pub fn client(&self) -> clickhouse::Client {
        clickhouse::Client::default()
            .with_url(&self.clickhouse_url)
            .with_database(&self.database)
    }

    /// (events queries show, distinct ids, physical rows) in `audit_logs`. Queries show each
    /// `(time, id)` pair once (docs/schema.md, "One event: its id and its time"); `FINAL`
    /// alone does not collapse copies at different Kafka offsets (an SDK re-send after a
    /// lost acknowledgement), since the sorting key ends with the source position.
    pub async fn counts(&self) -> Result<(u64, u64, u64), clickhouse::error::Error> {
        let client = self.client();
        // Three plain queries: scalar subqueries would come back Nullable.
        let visible = client
            .query("SELECT uniqExact(time, id) FROM audit_logs")
            .fetch_one::<u64>()
            .await?;
        let distinct = client
            .query("SELECT uniqExact(id) FROM audit_logs")
            .fetch_one::<u64>()
            .await?;
        let physical = self.physical_rows().await?;
        Ok((visible, distinct, physical))
    }

    /// Rows in `audit_logs`, copies included: a count that reads no column.
    async fn physical_rows(&self) -> Result<u64, clickhouse::error::Error> {
        self.client()
            .query("SELECT count() FROM audit_logs")
            .fetch_one::<u64>()
            .await
    }

    /// Waits until `expected` distinct events are visible; returns the last counts.
    ///
    /// Polls the physical row count, which reads no column, until it reaches `expected`
    /// (there are never more distinct events than rows): the distinct counts read every row,
    /// and polled throughout they took half the server's time while an ingest bench ran.
    pub async fn wait_for_rows(&self, expected: u64, timeout: Duration) -> (u64, u64, u64) {
        let deadline = Instant::now() + timeout;
        let mut last = (0, 0, 0);
        let mut last_error = None;
        while Instant::now() < deadline {
            let enough_rows = match self.physical_rows().await {
                Ok(physical) => {
                    last.2 = physical;
                    physical >= expected
                }
                Err(error) => {
                    last_error = Some(error);
                    false
                }
            };
            if !enough_rows {
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
            match self.counts().await {
                Ok(counts) => {
                    last = counts;
                    if counts.1 >= expected {
                        // The three counts are three queries, and rows may have landed
                        // between them; now that all are in, read them once more together.
                        return self.counts().await.unwrap_or(counts);
                    }
                }
                Err(error) => last_error = Some(error),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        // Timed out: what is there now, for the caller's assertion to name.
        match self.counts().await {
            Ok(counts) => counts,
            Err(error) => {
                eprintln!(
                    "last error while counting rows: {}",
                    last_error.unwrap_or(error)
                );
                last
            }
        }
    }
}
