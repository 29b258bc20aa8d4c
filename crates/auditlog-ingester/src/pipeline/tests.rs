//! The coordinator's tests: it runs on its own task, fed source events by the test, with a
//! fake writer whose batches finish only when the test releases them; time is paused.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::mpsc::Receiver;

use tokio::time::Instant as TokioInstant;

use super::*;
use crate::batch::PlannedRange;
use crate::source::MessageChunk;
use crate::{BatchLimits, PoisonPolicy, RetryPolicy};
use auditlog_store::ClickHouseConfig;

/// A batch as the fake writer saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Written {
    partition: i32,
    first_offset: i64,
    last_offset: i64,
    num_rows: usize,
    num_poison: usize,
    planned: bool,
}

/// A writer whose batches finish only when the test releases them (by first offset).
#[derive(Clone)]
struct FakeWriter {
    plans: Arc<Mutex<HashMap<i32, Vec<PlannedRange>>>>,
    started: Arc<Mutex<Vec<Written>>>,
    released: watch::Sender<BTreeSet<i64>>,
    hang_plans: bool,
}

impl FakeWriter {
    fn new() -> Self {
        Self {
            plans: Arc::default(),
            started: Arc::default(),
            released: watch::channel(BTreeSet::new()).0,
            hang_plans: false,
        }
    }

    fn release(&self, first_offset: i64) {
        self.released.send_modify(|released| {
            released.insert(first_offset);
        });
    }

    fn started(&self) -> Vec<Written> {
        self.started.lock().expect("lock").clone()
    }
}

impl BatchWriter for FakeWriter {
    async fn load_plans(
        &self,
        _topic: &str,
        partition: i32,
        from_offset: i64,
    ) -> Result<crate::intent::ResumePoint, IngestError> {
        if self.hang_plans {
            std::future::pending::<()>().await;
        }
        let plans = self.plans.lock().expect("lock");
        Ok(crate::intent::ResumePoint {
            plans: plans
                .get(&partition)
                .into_iter()
                .flatten()
                .filter(|plan| plan.last_offset >= from_offset)
                .copied()
                .collect(),
            chain_head: auditlog_integrity::GENESIS,
        })
    }

    async fn write(&self, batch: Batch) -> Result<(usize, usize), IngestError> {
        self.started.lock().expect("lock").push(Written {
            partition: batch.partition,
            first_offset: batch.first_offset,
            last_offset: batch.last_offset,
            num_rows: batch.num_rows,
            num_poison: batch.poison.len(),
            planned: batch.planned,
        });
        let mut released = self.released.subscribe();
        let _ = released
            .wait_for(|released| released.contains(&batch.first_offset))
            .await;
        Ok((batch.num_rows, batch.poison.len()))
    }
}

fn config(max_rows: usize, max_in_flight_batches: usize) -> IngesterConfig {
    IngesterConfig {
        brokers: "unused:9092".into(),
        topic: "audit-events".into(),
        dlq_topic: "audit-events-dlq".into(),
        group: "test".into(),
        instance_id: None,
        kafka_properties: std::collections::BTreeMap::new(),
        clickhouse: ClickHouseConfig {
            url: "http://unused:8123".into(),
            database: "audit".into(),
            table: "audit_logs".into(),
            user: "default".into(),
            password: String::new(),
            cluster: false,
        },
        batch: BatchLimits {
            max_rows,
            max_bytes: 1 << 30,
            // Only explicit limits seal batches in these tests.
            max_age: Duration::from_secs(24 * 3600),
        },
        max_in_flight_batches,
        insert_compression: crate::InsertCompression::default(),
        retry: RetryPolicy::default(),
        poison: PoisonPolicy::default(),
        revoke_timeout: Duration::from_secs(5),
        shutdown_timeout: Duration::from_secs(30),
        checkpoints: None,
    }
}

/// A coordinator running on its own task, fed and observed by the test.
struct Harness {
    events: mpsc::Sender<SourceEvent>,
    commands: Receiver<SourceCommand>,
    stop: watch::Sender<Option<TokioInstant>>,
    running: tokio::task::JoinHandle<(Result<(), IngestError>, IngestReport)>,
    /// What the source shares with the coordinator about revocations it gave up.
    revocations: Arc<Revocations>,
}

impl Harness {
    fn start(config: IngesterConfig, writer: FakeWriter) -> Self {
        let (events, events_rx) = mpsc::channel(64);
        let (commands_tx, commands) = std::sync::mpsc::channel();
        let (stop, stop_rx) = Stop::manual();
        let mut coordinator =
            Coordinator::new(config, writer, commands_tx, Health::default(), stop_rx);
        let revocations = Arc::new(Revocations::default());
        coordinator.revocations = Arc::clone(&revocations);
        let running = tokio::spawn(async move {
            let outcome = coordinator.run(events_rx).await;
            (outcome, coordinator.report)
        });
        Self {
            events,
            commands,
            stop,
            running,
            revocations,
        }
    }

    /// Sends a revocation of `partitions` as the source numbers it; its answer comes back
    /// on the receiver.
    async fn revoke(&self, partitions: &[i32]) -> (u64, Receiver<Vec<(i32, i64)>>) {
        let number = self.revocations.begin();
        (number, self.send_revoked(partitions, number).await)
    }

    /// Sends revocation `number`, already numbered; its answer comes back on the receiver.
    async fn send_revoked(&self, partitions: &[i32], number: u64) -> Receiver<Vec<(i32, i64)>> {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        self.events
            .send(SourceEvent::Revoked {
                partitions: partitions.to_vec(),
                number,
                reply,
            })
            .await
            .expect("coordinator running");
        answer
    }

    async fn feed(&self, partition: i32, offsets: std::ops::Range<i64>) {
        for offset in offsets {
            self.events
                .send(message(partition, offset))
                .await
                .expect("coordinator running");
        }
        settle().await;
    }

    /// Every commit sent so far, in order, replying to synchronous ones.
    fn commits(&self) -> Vec<(i32, i64)> {
        let mut commits = Vec::new();
        while let Ok(SourceCommand::Commit { offsets, reply }) = self.commands.try_recv() {
            commits.extend(offsets);
            if let Some(reply) = reply {
                let _ = reply.send(Ok(()));
            }
        }
        commits.sort_unstable();
        commits
    }

    /// Requests the stop, answers the final commit, and returns how long the run took
    /// from the request, with its outcome.
    async fn stop(
        self,
    ) -> (
        Duration,
        Result<(), IngestError>,
        IngestReport,
        Vec<(i32, i64)>,
    ) {
        let requested = TokioInstant::now();
        self.stop
            .send(Some(requested + Duration::from_secs(30)))
            .expect("stop");
        let mut commits = Vec::new();
        let running = self.running;
        tokio::pin!(running);
        let (outcome, report) = loop {
            tokio::select! {
                finished = &mut running => break finished.expect("coordinator task"),
                () = tokio::time::sleep(Duration::from_millis(10)) => {
                    while let Ok(SourceCommand::Commit { offsets, reply }) = self.commands.try_recv() {
                        commits.extend(offsets);
                        if let Some(reply) = reply {
                            let _ = reply.send(Ok(()));
                        }
                    }
                }
            }
        };
        while let Ok(SourceCommand::Commit { offsets, .. }) = self.commands.try_recv() {
            commits.extend(offsets);
        }
        commits.sort_unstable();
        (requested.elapsed(), outcome, report, commits)
    }
}

/// A valid event at `partition`/`offset`, as the source hands it over.
fn message(partition: i32, offset: i64) -> SourceEvent {
    let payload = EventCodec::new(Framing::SingleObject)
        .encode_to_vec(&auditlog_event::testing::sample_event())
        .expect("encode");
    let mut chunk = MessageChunk::default();
    chunk.push(MessageRef {
        partition,
        offset,
        key: None,
        payload: Some(&payload),
        timestamp_millis: None,
        replay: None,
    });
    SourceEvent::Messages(chunk)
}

/// Lets the coordinator and its write tasks run until they wait on something.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(1)).await;
}

fn range(first_offset: i64, last_offset: i64) -> (i64, i64) {
    (first_offset, last_offset)
}

fn ranges(written: &[Written]) -> Vec<(i64, i64)> {
    written
        .iter()
        .map(|batch| range(batch.first_offset, batch.last_offset))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn commits_only_the_contiguous_prefix_of_finished_batches() {
    let writer = FakeWriter::new();
    let harness = Harness::start(config(2, 4), writer.clone());
    harness.feed(0, 0..6).await;
    assert_eq!(ranges(&writer.started()), [(0, 1), (2, 3), (4, 5)]);

    // Later batches finishing first commit nothing: the first is still being written.
    writer.release(2);
    writer.release(4);
    settle().await;
    assert_eq!(harness.commits(), []);

    writer.release(0);
    settle().await;
    assert_eq!(harness.commits(), [(0, 6)], "one commit past all three");
    let (_, outcome, report, _) = harness.stop().await;
    outcome.expect("clean stop");
    assert_eq!(
        (
            report.rows_inserted,
            report.batches,
            report.unwritten_batches
        ),
        (6, 3, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn a_revoked_partitions_late_batch_commits_nothing_and_redelivery_starts_afresh() {
    let writer = FakeWriter::new();
    let harness = Harness::start(config(2, 4), writer.clone());
    harness.feed(3, 0..2).await;
    let (_, answer) = harness.revoke(&[3]).await;
    // The batch is still being written when the revocation's time runs out.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(answer.try_recv().expect("revocation answered"), vec![]);

    // It finishes late, under the old generation: counted, but never committed.
    writer.release(0);
    settle().await;
    assert_eq!(harness.commits(), []);

    // The partition comes back from the last commit: the same offsets are new again.
    harness.feed(3, 0..2).await;
    assert_eq!(ranges(&writer.started()), [(0, 1), (0, 1)]);
    settle().await;
    assert_eq!(harness.commits(), [(3, 2)]);
    let (_, outcome, _, _) = harness.stop().await;
    outcome.expect("clean stop");
}

#[tokio::test(start_paused = true)]
async fn a_batch_finishing_after_the_consumer_gave_its_revocation_up_is_not_committed() {
    // ClickHouse is down through a rebalance: the consumer's callback stops waiting, and the
    // group may hand the partition on. The batch that then finishes here must not move the
    // commit or the signed head, or two owners sign different chains over the same offsets.
    let writer = FakeWriter::new();
    let harness = Harness::start(config(2, 4), writer.clone());
    harness.feed(3, 0..2).await;
    let (number, answer) = harness.revoke(&[3]).await;
    // Between two of the coordinator's looks at the mark, so the batch finishing is what
    // wakes it.
    tokio::time::sleep(GIVEN_UP_CHECK * 4 + GIVEN_UP_CHECK / 2).await;
    harness.revocations.give_up(&[3], number);
    writer.release(0);
    settle().await;
    tokio::time::sleep(GIVEN_UP_CHECK * 2).await;
    assert_eq!(
        answer
            .try_recv()
            .expect("answered without waiting out its own deadline"),
        vec![],
        "the late batch is not committable"
    );
    assert_eq!(harness.commits(), []);
    let (_, outcome, report, commits) = harness.stop().await;
    outcome.expect("clean stop");
    assert_eq!(commits, []);
    assert_eq!(report.batches, 1, "counted, as written");
}

#[tokio::test(start_paused = true)]
async fn a_revocation_given_up_before_it_reached_the_coordinator_holds_its_batches_back() {
    // The channel was full until the callback's deadline: the revocation is still on its
    // way when the partition's batch finishes.
    let writer = FakeWriter::new();
    let harness = Harness::start(config(2, 4), writer.clone());
    harness.feed(3, 0..2).await;
    harness.feed(4, 0..2).await;
    let number = harness.revocations.begin();
    harness.revocations.give_up(&[3], number);
    writer.release(0);
    settle().await;
    assert_eq!(harness.commits(), [(4, 2)], "partition 4 was not revoked");

    let answer = harness.send_revoked(&[3], number).await;
    settle().await;
    assert_eq!(answer.try_recv().expect("answered"), vec![]);
    // Handled, the mark is spent: the partition assigned back commits again.
    harness.feed(3, 0..2).await;
    settle().await;
    assert_eq!(harness.commits(), [(3, 2)]);
    let (_, outcome, _, _) = harness.stop().await;
    outcome.expect("clean stop");
}

#[tokio::test(start_paused = true)]
async fn a_redelivered_message_is_skipped_not_taken_twice() {
    let writer = FakeWriter::new();
    for first_offset in [0, 4] {
        writer.release(first_offset);
    }
    let harness = Harness::start(config(4, 4), writer.clone());
    harness.feed(1, 0..2).await;
    harness.feed(1, 0..2).await;
    harness.feed(1, 2..4).await;
    let written = writer.started();
    assert_eq!(ranges(&written), [(0, 3)]);
    assert_eq!(written[0].num_rows, 4);
    assert_eq!(harness.commits(), [(1, 4)]);
    let (_, outcome, _, _) = harness.stop().await;
    outcome.expect("clean stop");
}

#[tokio::test(start_paused = true)]
async fn recorded_ranges_cut_the_first_batches_exactly_as_before() {
    let writer = FakeWriter::new();
    writer.plans.lock().expect("lock").insert(
        0,
        vec![
            PlannedRange {
                first_offset: 10,
                last_offset: 12,
                digest: Some([0; 32]),
            },
            PlannedRange {
                first_offset: 13,
                last_offset: 14,
                digest: Some([0; 32]),
            },
        ],
    );
    for first_offset in [10, 13, 15] {
        writer.release(first_offset);
    }
    let harness = Harness::start(config(100, 4), writer.clone());
    harness.feed(0, 10..18).await;
    let (_, outcome, report, commits) = harness.stop().await;
    outcome.expect("clean stop");
    let written = writer.started();
    assert_eq!(ranges(&written), [(10, 12), (13, 14), (15, 17)]);
    assert_eq!(
        written
            .iter()
            .map(|batch| batch.planned)
            .collect::<Vec<_>>(),
        [true, true, false],
        "replayed ranges are not recorded again"
    );
    assert_eq!(report.unwritten_batches, 0);
    assert_eq!(commits, [(0, 13), (0, 15), (0, 18)]);
}

#[tokio::test(start_paused = true)]
async fn shutdown_gives_up_at_its_deadline_and_commits_only_what_was_written() {
    let writer = FakeWriter::new();
    writer.release(0);
    let harness = Harness::start(config(2, 4), writer.clone());
    harness.feed(0, 0..5).await;
    // Batch 2-3 never finishes (ClickHouse is away); 4 is sealed by the shutdown.
    let (took, outcome, report, commits) = harness.stop().await;
    outcome.expect("a stop at the deadline is not an error");
    assert_eq!(ranges(&writer.started()), [(0, 1), (2, 3), (4, 4)]);
    assert_eq!(report.unwritten_batches, 2);
    assert_eq!(commits, [(0, 2)]);
    assert!(
        took >= Duration::from_secs(30),
        "waited for the writes: {took:?}"
    );
    assert!(
        took < Duration::from_secs(31),
        "bounded by the deadline: {took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_dispatch_waiting_for_a_write_slot_is_bounded_by_the_deadline() {
    let writer = FakeWriter::new();
    let harness = Harness::start(config(1, 1), writer.clone());
    // One slot: the first batch takes it and hangs; the second waits for the slot,
    // and the coordinator with it.
    let events = harness.events.clone();
    tokio::spawn(async move {
        for offset in 0..3 {
            let _ = events.send(message(0, offset)).await;
        }
    });
    settle().await;
    assert_eq!(ranges(&writer.started()), [(0, 0)]);
    let (took, outcome, report, commits) = harness.stop().await;
    outcome.expect("clean stop");
    assert!(took < Duration::from_secs(31), "bounded: {took:?}");
    assert!(report.unwritten_batches >= 2, "{report:?}");
    assert_eq!(commits, []);
}

#[tokio::test(start_paused = true)]
async fn a_stop_while_intents_load_does_not_wait_for_them() {
    let mut writer = FakeWriter::new();
    writer.hang_plans = true;
    let harness = Harness::start(config(2, 4), writer.clone());
    harness.feed(0, 0..1).await;
    let (took, outcome, report, commits) = harness.stop().await;
    outcome.expect("clean stop");
    assert!(
        took < Duration::from_secs(1),
        "did not wait for the load: {took:?}"
    );
    assert_eq!(writer.started(), []);
    assert_eq!((report.unwritten_batches, commits), (0, vec![]));
}

#[tokio::test(start_paused = true)]
async fn age_seals_batches_again_after_an_idle_spell() {
    let writer = FakeWriter::new();
    for first_offset in [0, 1] {
        writer.release(first_offset);
    }
    let mut config = config(100, 4);
    config.batch.max_age = Duration::from_secs(1);
    let harness = Harness::start(config, writer.clone());
    harness.feed(0, 0..1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(ranges(&writer.started()), [(0, 0)]);
    // Idle: the age check parks; the next message must wake it.
    tokio::time::sleep(Duration::from_secs(60)).await;
    harness.feed(0, 1..2).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(ranges(&writer.started()), [(0, 0), (1, 1)]);
    assert_eq!(harness.commits(), [(0, 1), (0, 2)]);
    let (_, outcome, _, _) = harness.stop().await;
    outcome.expect("clean stop");
}

#[test]
fn poison_window_trips_only_above_the_limit_within_the_window() {
    let mut window = PoisonWindow::new(10, 2);
    assert!(!window.push(true));
    assert!(!window.push(true));
    for _ in 0..8 {
        assert!(!window.push(false));
    }
    // The two old poison messages slide out; two new ones are still within the limit.
    assert!(!window.push(true));
    assert!(!window.push(true));
    assert!(window.push(true));
}

#[test]
fn one_percent_poison_never_trips_the_default_policy() {
    let policy = crate::PoisonPolicy::default();
    let mut window = PoisonWindow::new(policy.window, policy.max_poison);
    for index in 0..100_000 {
        assert!(!window.push(index % 100 == 0));
    }
}
