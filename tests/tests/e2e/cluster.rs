//! The pipeline on a three-node Kafka cluster, as production runs it, while brokers fail.
//!
//! One private cluster (`KafkaCluster`, three combined broker-controller nodes) serves the
//! four fault scenarios, one after another in one test: a JVM start is the dearest part of a
//! scenario, the faults of two scenarios must not overlap, and one test occupies one of the
//! test harness's threads where four tests waiting for the cluster would hold several. Each
//! scenario has its own topics, made by `auditlog migrate` with 3 replicas and
//! `min.insync.replicas=2`, its own ClickHouse database, the SDK sending (each event's outcome
//! recorded by id) and two `auditlog ingest` processes consuming. Each ends the same way:
//! every confirmed event stored exactly once, nothing stored that was not sent, and
//! `auditlog verify` valid.
//!
//! Nothing is timed: every wait is for a condition, with a generous deadline.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use auditlog_e2e::pipeline::{AuditlogProcess, PipelineTarget};
use auditlog_e2e::sender::Sender;
use auditlog_testkit::KafkaCluster;
use rdkafka::consumer::{BaseConsumer, Consumer};
use tokio::task::block_in_place;
use uuid::Uuid;

/// How long anything may take to happen on a loaded machine: a leader election, a node's
/// restart, ingesting what was sent.
const DEADLINE: Duration = Duration::from_secs(240);
/// The SDK's default delivery timeout: a send fails when Kafka has not confirmed it by then.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// One test's pipeline on the cluster.
struct Run {
    target: PipelineTarget,
    sender: Sender,
    ingesters: Vec<AuditlogProcess>,
}

impl Run {
    /// Topics made by migrate with production replication, two ingesters, a sender.
    async fn begin(cluster: &KafkaCluster, prefix: &str) -> Self {
        let mut target = PipelineTarget::named(&cluster.brokers(), prefix);
        target.replication = (3, 2);
        block_in_place(|| {
            target.migrate();
            cluster.wait_for_full_isr(&target.topic, DEADLINE);
        });
        let ingesters = (1..=2)
            .map(|n| target.spawn_ingester(&format!("{prefix}_{n}"), &["--batch-rows", "2000"]))
            .collect();
        let sender = Sender::new(&cluster.brokers(), &target.topic, DELIVERY_TIMEOUT);
        Self {
            target,
            sender,
            ingesters,
        }
    }

    fn logs(&self) -> String {
        self.ingesters
            .iter()
            .map(AuditlogProcess::log)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits until at least `rows` distinct events are stored.
    async fn wait_for_rows(&self, rows: u64) {
        let counts = self.target.wait_for_rows(rows, DEADLINE).await;
        if counts.1 < rows {
            // What each ingester believed it was doing when it stopped making progress.
            let mut metrics = String::new();
            for ingester in &self.ingesters {
                let scrape = ingester.metrics().await.unwrap_or_default();
                metrics.push_str(&format!("{}:\n", ingester.name()));
                for line in scrape.lines().filter(|line| {
                    line.starts_with("auditlog_ingest_")
                        && !line.contains("_bucket")
                        && !line.contains("stage_")
                }) {
                    metrics.push_str(&format!("  {line}\n"));
                }
            }
            panic!(
                "only {} of {rows} events stored; ingester metrics:\n{metrics}ingester logs:\n{}",
                counts.1,
                self.logs()
            );
        }
    }

    /// Every event id stored, with how many events queries show under it: one per time.
    /// Copies of one event at two Kafka offsets (an SDK re-send of a batch whose
    /// acknowledgement was lost while brokers were down) keep a row each, and are shown once.
    async fn stored(&self) -> HashMap<Uuid, u64> {
        let rows: Vec<(String, u64)> = self
            .target
            .client()
            .query("SELECT toString(id), uniqExact(time) FROM audit_logs GROUP BY id")
            .fetch_all()
            .await
            .expect("stored ids");
        rows.into_iter()
            .map(|(id, copies)| (id.parse().expect("a stored id is a UUID"), copies))
            .collect()
    }

    /// The end of every test: all outcomes in, everything confirmed stored once and nothing
    /// that was not sent, the ingesters stopped cleanly, and `verify` valid. Without
    /// `failures_allowed`, no event may have failed either.
    async fn finish(mut self, failures_allowed: bool) {
        self.sender.wait_for_outcomes(DEADLINE).await;
        self.sender
            .producer
            .shutdown(Duration::from_secs(60))
            .await
            .expect("SDK shutdown");
        let (sent, confirmed, failed, repeated) = {
            let outcomes = self.sender.outcomes.lock().unwrap();
            (
                outcomes.sent.iter().copied().collect::<HashSet<Uuid>>(),
                outcomes
                    .confirmed
                    .keys()
                    .copied()
                    .collect::<HashSet<Uuid>>(),
                outcomes.failed.clone(),
                outcomes.repeated.clone(),
            )
        };
        assert!(repeated.is_empty(), "ids reported twice: {repeated:?}");
        if !failures_allowed {
            assert!(
                failed.is_empty(),
                "{} of {} events failed, e.g. {:?}",
                failed.len(),
                sent.len(),
                failed.iter().next()
            );
        }
        self.wait_for_rows(confirmed.len() as u64).await;
        // A clean stop writes and commits everything consumed, and signs for it.
        for ingester in &mut self.ingesters {
            let status = block_in_place(|| ingester.terminate(Duration::from_secs(90)));
            assert!(
                status.is_some_and(|status| status.success()),
                "ingester exit {status:?}; log:\n{}",
                ingester.log()
            );
        }
        let stored = self.stored().await;
        let twice: Vec<_> = stored.iter().filter(|(_, rows)| **rows != 1).collect();
        assert!(twice.is_empty(), "events shown more than once: {twice:?}");
        let missing: Vec<_> = confirmed
            .iter()
            .filter(|id| !stored.contains_key(id))
            .collect();
        assert!(
            missing.is_empty(),
            "{} confirmed events not stored, e.g. {:?}; logs:\n{}",
            missing.len(),
            missing.first(),
            self.logs()
        );
        // Beyond the confirmed ones, only events whose send failed may be there: a failed
        // send may still have reached the topic (its outcome is unknown to the client).
        let unexplained: Vec<_> = stored
            .keys()
            .filter(|id| !confirmed.contains(id) && !failed.contains_key(id))
            .collect();
        assert!(
            unexplained.is_empty(),
            "stored events never confirmed nor failed: {unexplained:?}"
        );
        let (visible, distinct, physical) = self.target.counts().await.expect("counts");
        assert_eq!(
            (visible, distinct),
            (stored.len() as u64, stored.len() as u64)
        );
        eprintln!(
            "{}: {} sent, {} confirmed, {} failed ({} of those stored), {} shown once \
             ({} rows: the rest are copies that reached Kafka twice)",
            self.target.topic,
            sent.len(),
            confirmed.len(),
            failed.len(),
            stored.len() - confirmed.len(),
            stored.len(),
            physical
        );
        self.target
            .assert_verifies(stored.len() as u64, &self.logs());
    }
}

/// Waits until `condition` holds, panicking with `what` past the deadline.
async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !condition() {
        assert!(Instant::now() < deadline, "not within {DEADLINE:?}: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The node leading the most partitions of `topic`.
fn busiest_leader(cluster: &KafkaCluster, topic: &str) -> i32 {
    let mut led: BTreeMap<i32, usize> = BTreeMap::new();
    for leader in cluster.partition_leaders(topic).into_values() {
        *led.entry(leader).or_default() += 1;
    }
    led.into_iter()
        .filter(|(leader, _)| *leader >= 0)
        .max_by_key(|(_, partitions)| *partitions)
        .map(|(leader, _)| leader)
        .expect("the topic's partitions have leaders")
}

/// Sends under load while `fault` runs, and for a while after: the sender keeps going until
/// `after` more events are confirmed once the fault is over.
async fn under_load(run: &Run, fault: impl AsyncFnOnce(), after: usize) {
    let stop = Arc::new(AtomicBool::new(false));
    let sending = run.sender.spawn(400_000, Arc::clone(&stop));
    // Kafka has events and the ingesters are storing them before anything fails.
    wait_until("events confirmed before the fault", || {
        run.sender.confirmed() >= 2_000
    })
    .await;
    run.wait_for_rows(1_000).await;
    fault().await;
    let confirmed = run.sender.confirmed();
    wait_until("events confirmed after the fault", || {
        run.sender.confirmed() >= confirmed + after
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    sending.await.expect("sender task");
}

#[tokio::test(flavor = "multi_thread")]
async fn broker_failures_lose_nothing_confirmed_and_show_nothing_twice() {
    let mut cluster = block_in_place(|| KafkaCluster::start(3));
    let scenarios_started = Instant::now();
    let mut took = Vec::new();
    let started = Instant::now();
    kill_nine_of_the_partition_leader_during_generate_and_ingest(&mut cluster).await;
    took.push(("kill -9 of a partition leader", started.elapsed()));
    let started = Instant::now();
    kill_nine_of_the_active_controller(&mut cluster).await;
    took.push(("kill -9 of the controller", started.elapsed()));
    let started = Instant::now();
    a_rolling_restart_of_all_three_brokers_under_load(&mut cluster).await;
    took.push(("rolling restart", started.elapsed()));
    let started = Instant::now();
    two_of_three_brokers_down_fail_sends_by_id_and_lose_nothing_confirmed(&mut cluster).await;
    took.push(("two of three down", started.elapsed()));
    eprintln!(
        "cluster start-up {:.1} s, scenarios {:.1} s: {took:?}",
        cluster.start_up().as_secs_f64(),
        scenarios_started.elapsed().as_secs_f64()
    );
}

async fn kill_nine_of_the_partition_leader_during_generate_and_ingest(cluster: &mut KafkaCluster) {
    let run = Run::begin(cluster, "cluster_leader").await;
    let topic = run.target.topic.clone();
    let leader = busiest_leader(cluster, &topic);
    under_load(
        &run,
        async || {
            block_in_place(|| cluster.kill(leader));
            // Its partitions get leaders among the other two, and the flow goes on there.
            wait_until("new partition leaders", || {
                cluster
                    .partition_leaders(&topic)
                    .values()
                    .all(|node| *node >= 0 && *node != leader)
            })
            .await;
        },
        3_000,
    )
    .await;
    block_in_place(|| {
        cluster.restart(leader);
        cluster.wait_for_full_isr(&topic, DEADLINE);
    });
    run.finish(false).await;
}

async fn kill_nine_of_the_active_controller(cluster: &mut KafkaCluster) {
    let run = Run::begin(cluster, "cluster_controller").await;
    let controller = block_in_place(|| cluster.wait_for_controller(DEADLINE));
    under_load(
        &run,
        async || {
            block_in_place(|| cluster.kill(controller));
            // The other two elect one of themselves.
            let successor = block_in_place(|| cluster.wait_for_controller(DEADLINE));
            assert_ne!(successor, controller);
        },
        3_000,
    )
    .await;
    block_in_place(|| {
        cluster.restart(controller);
        cluster.wait_for_full_isr(&run.target.topic, DEADLINE);
    });
    run.finish(false).await;
}

async fn a_rolling_restart_of_all_three_brokers_under_load(cluster: &mut KafkaCluster) {
    let run = Run::begin(cluster, "cluster_rolling").await;
    let topic = run.target.topic.clone();
    under_load(
        &run,
        async || {
            // As an operator rolls a cluster: one node at a time, SIGTERM (a controlled
            // shutdown hands its leaderships over), and the next only once every replica
            // is back in sync.
            for node in cluster.node_ids() {
                block_in_place(|| {
                    cluster.stop(node);
                    cluster.restart(node);
                    cluster.wait_for_full_isr(&topic, DEADLINE);
                    cluster.wait_for_full_isr("__consumer_offsets", DEADLINE);
                });
            }
        },
        2_000,
    )
    .await;
    run.finish(false).await;
}

async fn two_of_three_brokers_down_fail_sends_by_id_and_lose_nothing_confirmed(
    cluster: &mut KafkaCluster,
) {
    let run = Run::begin(cluster, "cluster_two_down").await;
    let topic = run.target.topic.clone();
    run.sender.send(3_000).await;
    run.sender.wait_for_outcomes(DEADLINE).await;
    assert_eq!(
        run.sender.confirmed(),
        3_000,
        "all confirmed with three brokers"
    );
    run.wait_for_rows(1_000).await;

    let survivor = busiest_leader(cluster, &topic);
    let down: Vec<i32> = cluster
        .node_ids()
        .into_iter()
        .filter(|node| *node != survivor)
        .collect();
    for node in &down {
        block_in_place(|| cluster.kill(*node));
    }
    // One broker cannot hold two in-sync replicas (nor a controller quorum): nothing sent
    // now can be confirmed. Each send fails within the delivery timeout, reported by id.
    let before = run.sender.outcomes.lock().unwrap().sent.len();
    run.sender.send(1_000).await;
    run.sender.wait_for_outcomes(DEADLINE).await;
    {
        let outcomes = run.sender.outcomes.lock().unwrap();
        let during: Vec<Uuid> = outcomes.sent[before..].to_vec();
        let confirmed: Vec<&Uuid> = during
            .iter()
            .filter(|id| outcomes.confirmed.contains_key(id))
            .collect();
        assert!(
            confirmed.is_empty(),
            "{} events confirmed with one broker of three, e.g. {:?}",
            confirmed.len(),
            confirmed.first()
        );
        assert!(
            during.iter().all(|id| outcomes.failed.contains_key(id)),
            "every send during the outage is reported failed by its id"
        );
        eprintln!("two brokers down: e.g. {}", outcomes.failed[&during[0]]);
    }

    // The brokers return, and the flow with them.
    block_in_place(|| {
        cluster.heal();
        cluster.wait_for_full_isr(&topic, DEADLINE);
    });
    let before = run.sender.outcomes.lock().unwrap().sent.len();
    run.sender.send(3_000).await;
    run.sender.wait_for_outcomes(DEADLINE).await;
    {
        let outcomes = run.sender.outcomes.lock().unwrap();
        let errors: BTreeMap<&str, usize> = outcomes.sent[before..]
            .iter()
            .filter_map(|id| outcomes.failed.get(id))
            .fold(BTreeMap::new(), |mut errors, error| {
                *errors
                    .entry(error.split(": ").last().unwrap_or(error))
                    .or_default() += 1;
                errors
            });
        assert!(
            errors.is_empty(),
            "every send is confirmed once the brokers are back; failures: {errors:?}"
        );
    }
    run.finish(true).await;
}

/// The production defaults (3 replicas, 2 in sync) on the shared one-broker stack: migrate
/// creates nothing and names the setting, rather than a topic with fewer copies than asked.
#[tokio::test(flavor = "multi_thread")]
async fn migrate_refuses_more_replicas_than_brokers() {
    let target = PipelineTarget::named(&auditlog_e2e::kafka_brokers(), "cluster_too_few");
    let output = std::process::Command::new(auditlog_e2e::pipeline::auditlog_binary())
        .args(["migrate", "--topics-only"])
        .envs(target.env())
        .output()
        .expect("run auditlog migrate");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("1 broker(s), fewer than the replication factor 3")
            && stderr.contains("--kafka-replication-factor")
            && stderr.contains("AUDITLOG_KAFKA_REPLICATION_FACTOR"),
        "{stderr}"
    );
    let client: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", auditlog_e2e::kafka_brokers())
        .create()
        .expect("metadata client");
    let metadata = client
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata");
    for name in [&target.topic, &target.dlq_topic, &target.checkpoint_topic] {
        assert!(
            metadata
                .topics()
                .iter()
                .all(|topic| topic.name() != name.as_str()),
            "{name} was created"
        );
    }
}
