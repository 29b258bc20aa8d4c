//! The coordinator: decode, batch, write, commit.
//!
//! ```text
//!  source thread ──events (bounded)──▶ coordinator ──spawn, ≤ N at once──▶ write task
//!        ▲                               │  decode → RowBinary → PartitionBatcher   │ intent → dead letters → insert
//!        └──────── commits ◀─────────────┴──────────── completions ◀─────────────────┘
//! ```
//!
//! The coordinator owns every piece of mutable state (batchers, commit tracker, poison
//! window), so there are no locks on the hot path. Write tasks are bounded by a semaphore:
//! when ClickHouse is down they retry, permits run out, the coordinator stops reading, the
//! events channel fills, and the source pauses its partitions.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use auditlog_event::{EventCodec, EventError, Framing};
use rdkafka::consumer::{BaseConsumer, Consumer};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};

use crate::batch::{Batch, PartitionBatcher, Poison};
use crate::checkpoints::{CheckpointPublisher, Heads};
use crate::config::IngesterConfig;
use crate::dlq::DeadLetterProducer;
use crate::intent::IntentStore;
use crate::offsets::CommitTracker;
use crate::retry::{Retrier, Stage};
use crate::sink::ClickHouseSink;
use crate::source::{self, RawMessage, SourceCommand, SourceEvent};
use crate::stop::Stop;
use crate::writer::{BatchWriter, ClickHouseWriter};
use crate::{Health, IngestError, metrics as names};
use auditlog_store::{RowEncoder, Source, stored_columns};

/// Messages buffered between the source thread and the coordinator.
const EVENTS_CHANNEL_CAPACITY: usize = 8_192;

/// The least time the final offset commit gets, even past the shutdown deadline.
const FINAL_COMMIT_GRACE: Duration = Duration::from_secs(5);

/// How often open batches are checked against their age limit.
const AGE_CHECK_INTERVAL: Duration = Duration::from_millis(50);

/// What a run did, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestReport {
    /// Rows acknowledged by ClickHouse.
    pub rows_inserted: u64,
    /// Poison messages acknowledged by the dead-letter topic.
    pub dead_lettered: u64,
    /// Batches acknowledged.
    pub batches: u64,
    /// Batches still unwritten when shutdown's deadline passed (their offsets are not
    /// committed: a restart consumes them again). Zero after a clean stop.
    pub unwritten_batches: u64,
}

/// Runs the ingester until `shutdown` turns true, then flushes and commits within the
/// shutdown timeout and returns `Ok` (with [`IngestReport::unwritten_batches`] above zero
/// if the deadline passed first), or until a permanent error (returns it, having committed
/// only what is safe).
pub async fn run(
    config: IngesterConfig,
    health: Health,
    shutdown: watch::Receiver<bool>,
) -> Result<IngestReport, IngestError> {
    config.validate()?;
    names::describe();
    let stop = Stop::follow(shutdown, config.shutdown_timeout);
    let kafka = source::client_config(&config);
    let mut topics = vec![config.topic.as_str(), config.dlq_topic.as_str()];
    if let Some(checkpoints) = &config.checkpoints {
        topics.push(checkpoints.topic.as_str());
    } else {
        tracing::warn!(
            "no signing key configured: batches are digested, but no checkpoints are signed, \
             so `auditlog verify` cannot vouch for them"
        );
    }
    source::check_topics_exist(&kafka, &topics)?;
    let dead_letters = DeadLetterProducer::new(&kafka, config.dlq_topic.clone())?;

    let (context, events_rx) = source::context(
        &config.topic,
        EVENTS_CHANNEL_CAPACITY,
        config.revoke_timeout,
    );
    let consumer: BaseConsumer<source::SourceContext> =
        source::consumer_config(&config).create_with_context(context)?;
    consumer.subscribe(&[&config.topic])?;
    let (commands_tx, commands_rx) = std::sync::mpsc::channel();
    let stop_source = Arc::new(AtomicBool::new(false));
    let source_thread = {
        let stop_source = Arc::clone(&stop_source);
        std::thread::Builder::new()
            .name("auditlog-kafka-poll".into())
            .spawn(move || source::poll_loop(consumer, commands_rx, stop_source))
            .map_err(|error| IngestError::Pipeline(format!("spawn poll thread: {error}")))?
    };

    let client = config.clickhouse.client();
    let retrier = Retrier::new(config.retry, health.clone(), stop.clone());
    let publisher = match &config.checkpoints {
        Some(checkpoints) => Some(CheckpointPublisher::new(
            checkpoints,
            &kafka,
            client.clone(),
            config.topic.clone(),
            retrier.clone(),
        )?),
        None => None,
    };
    let writer = ClickHouseWriter {
        sink: ClickHouseSink::new(
            client.clone(),
            &config.clickhouse.database,
            &config.clickhouse.table,
            &stored_columns(),
        ),
        intents: IntentStore::new(client),
        dead_letters,
        retrier,
    };
    let mut coordinator = Coordinator::new(config, writer, commands_tx, health.clone(), stop);
    coordinator.checkpoints = publisher;
    health.set_running(true);
    let outcome = coordinator.run(events_rx).await;
    health.set_running(false);
    stop_source.store(true, Ordering::Release);
    let _ = tokio::task::spawn_blocking(move || source_thread.join()).await;
    outcome.map(|()| coordinator.report)
}

/// The time batches are aged by: tokio's clock, so that tests with paused time age them
/// too (outside tests it is the system's monotonic clock).
fn batch_clock() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// A finished write task.
#[derive(Debug)]
struct Completion {
    partition: i32,
    generation: u64,
    first_offset: i64,
    last_offset: i64,
    digest: auditlog_integrity::Hash,
    result: Result<(usize, usize), IngestError>,
}

struct Coordinator<W> {
    config: IngesterConfig,
    topic: Arc<str>,
    writer: W,
    stop: Stop,
    codec: EventCodec,
    row_encoder: RowEncoder,
    batchers: HashMap<i32, PartitionBatcher>,
    tracker: CommitTracker,
    /// Bumped each time a partition is revoked, so late completions of its old batches are
    /// recognised and ignored.
    generations: HashMap<i32, u64>,
    permits: Arc<Semaphore>,
    completions: (
        mpsc::UnboundedSender<Completion>,
        mpsc::UnboundedReceiver<Completion>,
    ),
    commands_tx: std::sync::mpsc::Sender<SourceCommand>,
    poison_window: PoisonWindow,
    health: Health,
    report: IngestReport,
    /// Signs the heads; `None` without a signing key.
    checkpoints: Option<CheckpointPublisher>,
    heads: Heads,
}

impl<W: BatchWriter> Coordinator<W> {
    fn new(
        config: IngesterConfig,
        writer: W,
        commands_tx: std::sync::mpsc::Sender<SourceCommand>,
        health: Health,
        stop: Stop,
    ) -> Self {
        Self {
            topic: Arc::from(config.topic.as_str()),
            writer,
            stop,
            codec: EventCodec::new(Framing::SingleObject),
            row_encoder: RowEncoder::default(),
            batchers: HashMap::new(),
            tracker: CommitTracker::default(),
            generations: HashMap::new(),
            permits: Arc::new(Semaphore::new(config.max_in_flight_batches)),
            completions: mpsc::unbounded_channel(),
            commands_tx,
            poison_window: PoisonWindow::new(config.poison.window, config.poison.max_poison),
            health,
            report: IngestReport::default(),
            checkpoints: None,
            heads: Heads::default(),
            config,
        }
    }

    async fn run(&mut self, mut events_rx: mpsc::Receiver<SourceEvent>) -> Result<(), IngestError> {
        let mut age_check = tokio::time::interval(AGE_CHECK_INTERVAL);
        age_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut age_check_parked = false;
        let checkpoint_interval = self
            .config
            .checkpoints
            .as_ref()
            .map_or(Duration::from_secs(3600), |checkpoints| {
                checkpoints.interval
            });
        let mut checkpoint_tick = tokio::time::interval_at(
            tokio::time::Instant::now() + checkpoint_interval,
            checkpoint_interval,
        );
        checkpoint_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let stop = self.stop.clone();
        loop {
            tokio::select! {
                biased;
                () = stop.requested() => return self.drain_and_commit().await,
                Some(completion) = self.completions.1.recv() => self.complete(completion)?,
                event = events_rx.recv() => match event {
                    Some(SourceEvent::Message(message)) => {
                        age_check_parked = false;
                        match self.consume(message).await {
                            // A stop came while a partition's intents were loading: that
                            // message is not taken, so nothing depends on it.
                            Err(IngestError::ShutdownDeadline { .. }) => {
                                return self.drain_and_commit().await;
                            }
                            other => other?,
                        }
                    }
                    Some(SourceEvent::Assigned(partitions)) => {
                        metrics::gauge!(names::ASSIGNED_PARTITIONS).set(partitions.len() as f64);
                        self.health.set_assigned(partitions.len());
                    }
                    Some(SourceEvent::Revoked { partitions, reply }) => {
                        let offsets = self.revoke(&partitions).await?;
                        let _ = reply.send(offsets);
                    }
                    None => return Err(IngestError::Pipeline("kafka source stopped".into())),
                },
                _ = checkpoint_tick.tick(), if self.checkpoints.is_some() => {
                    if let (Some(publisher), Some(heads)) =
                        (&self.checkpoints, self.heads.take_changed(&self.topic, false))
                    {
                        let publisher = publisher.clone();
                        tokio::spawn(async move { publisher.publish_logged(heads).await });
                    }
                }
                _ = age_check.tick(), if !age_check_parked => {
                    let now = batch_clock();
                    let expired: Vec<Batch> = self
                        .batchers
                        .values_mut()
                        .filter_map(|batcher| batcher.seal_if_expired(now))
                        .collect();
                    for batch in expired {
                        self.dispatch(batch).await;
                    }
                    // Nothing open, nothing to age: an idle ingester stops waking up for
                    // it until a message arrives.
                    age_check_parked = !self.batchers.values().any(PartitionBatcher::has_open);
                }
            }
        }
    }

    async fn consume(&mut self, message: RawMessage) -> Result<(), IngestError> {
        let partition = message.partition;
        let already_seen = self
            .batchers
            .get(&partition)
            .and_then(PartitionBatcher::last_seen_offset)
            .is_some_and(|last| message.offset <= last);
        if already_seen {
            // A redelivery (e.g. a re-assignment whose revocation could not reach us in time):
            // every offset up to the last one seen is already in an open, in-flight or finished
            // batch of this partition, so taking it again could only duplicate it, and
            // starting the partition afresh would drop the open batch while later commits
            // moved past it.
            metrics::counter!(names::REDELIVERED).increment(1);
            tracing::debug!(
                partition,
                offset = message.offset,
                "skipping a redelivered message"
            );
            return Ok(());
        }
        if !self.batchers.contains_key(&partition) {
            // Without the recorded ranges the first batches could be cut differently from
            // before a crash, so none is cut until they are loaded. A stop does not wait
            // for them: nothing of this partition has been taken yet.
            let plans = tokio::select! {
                biased;
                () = self.stop.requested() => {
                    return Err(IngestError::ShutdownDeadline {
                        stage: Stage::IntentLoad.label(),
                    });
                }
                resume = self.writer.load_plans(&self.topic, partition, message.offset) => resume?,
            };
            let batcher = PartitionBatcher::new(
                Arc::clone(&self.topic),
                partition,
                self.config.batch,
                plans.plans,
                plans.chain_head,
            );
            self.batchers.insert(partition, batcher);
        }

        let now = batch_clock();
        let decoded = self
            .codec
            .decode(message.payload.as_deref().unwrap_or_default())
            .and_then(|event| {
                event.validate_allow_unknown()?;
                Ok(event)
            });
        let Some(batcher) = self.batchers.get_mut(&partition) else {
            return Ok(());
        };
        let sealed = match decoded {
            Ok(event) => {
                // Only live traffic counts toward the flood stop: a replay of old poison
                // must neither trip it nor dilute it.
                if message.replay.is_none() {
                    self.poison_window.push(false);
                }
                let micros = auditlog_event::unix_micros_saturating(event.time);
                let encoder = &mut self.row_encoder;
                let source = Source {
                    partition,
                    offset: message.offset,
                };
                batcher.push_row(
                    message.offset,
                    micros,
                    |rows| encoder.encode_stored(&event, source, rows),
                    now,
                )
            }
            Err(error) => {
                let kind = poison_kind(&error);
                let reason = error.to_string();
                if message.replay.is_none() && self.poison_window.push(true) {
                    return Err(IngestError::PoisonFlood {
                        num_poison: self.poison_window.num_poison,
                        window: self.poison_window.window.len(),
                        limit: self.poison_window.max_poison,
                        last_reason: reason,
                    });
                }
                tracing::warn!(partition, offset = message.offset, kind, %reason, "poison message, dead-lettering");
                let poison = Poison {
                    offset: message.offset,
                    key: message.key,
                    payload: message.payload,
                    timestamp_millis: message.timestamp_millis,
                    replay: message.replay,
                    kind,
                    reason,
                };
                batcher.push_poison(poison, now)
            }
        };
        for batch in sealed {
            self.dispatch(batch).await;
        }
        Ok(())
    }

    /// Hands a sealed batch to a write task, waiting for a free slot (backpressure). Past
    /// the shutdown deadline the batch stays registered but unwritten: its offsets are
    /// never committed.
    async fn dispatch(&mut self, batch: Batch) {
        let partition = batch.partition;
        let generation = *self.generations.entry(partition).or_default();
        self.tracker
            .register(partition, batch.first_offset, batch.last_offset);
        let permit = tokio::select! {
            biased;
            permit = Arc::clone(&self.permits).acquire_owned() => permit,
            () = self.stop.expired() => return,
        };
        let Ok(permit) = permit else {
            return;
        };
        let writer = self.writer.clone();
        let completions_tx = self.completions.0.clone();
        tokio::spawn(async move {
            let first_offset = batch.first_offset;
            let last_offset = batch.last_offset;
            let digest = batch.digest.digest;
            let result = writer.write(batch).await;
            drop(permit);
            let _ = completions_tx.send(Completion {
                partition,
                generation,
                first_offset,
                last_offset,
                digest,
                result,
            });
        });
    }

    /// Records a finished batch; commits when the contiguous prefix grew.
    fn complete(&mut self, completion: Completion) -> Result<(), IngestError> {
        if let Some((partition, offset)) = self.settle(completion)? {
            self.commit_async(partition, offset);
        }
        Ok(())
    }

    /// Counts a finished batch and marks it done. Returns the partition's new committable
    /// offset if the contiguous finished prefix grew; a failed batch's error stops the run.
    /// Batches of a partition revoked since they were dispatched (older generation) count,
    /// but commit nothing.
    fn settle(&mut self, completion: Completion) -> Result<Option<(i32, i64)>, IngestError> {
        let (num_rows, num_poison) = match completion.result {
            Ok(counts) => counts,
            // Left unfinished in the tracker, so nothing at or after it is committed.
            Err(IngestError::ShutdownDeadline { .. }) => return Ok(None),
            Err(error) => return Err(error),
        };
        self.report.rows_inserted += num_rows as u64;
        self.report.dead_lettered += num_poison as u64;
        self.report.batches += 1;
        let partition = completion.partition;
        if self.generations.get(&partition).copied() != Some(completion.generation) {
            return Ok(None);
        }
        self.heads
            .finished(partition, completion.last_offset, completion.digest);
        let Some(offset) = self.tracker.finish(partition, completion.first_offset) else {
            return Ok(None);
        };
        self.heads.committed(partition, offset);
        self.health.set_committed(partition, offset);
        Ok(Some((partition, offset)))
    }

    fn commit_async(&self, partition: i32, offset: i64) {
        let _ = self.commands_tx.send(SourceCommand::Commit {
            offsets: vec![(partition, offset)],
            reply: None,
        });
    }

    /// Flushes the revoked partitions and waits (bounded) for their batches to finish.
    async fn revoke(&mut self, partitions: &[i32]) -> Result<Vec<(i32, i64)>, IngestError> {
        for partition in partitions {
            if let Some(batch) = self
                .batchers
                .get_mut(partition)
                .and_then(PartitionBatcher::seal_now)
            {
                self.dispatch(batch).await;
            }
        }
        let deadline = tokio::time::Instant::now() + self.config.revoke_timeout;
        let mut committable: HashMap<i32, i64> = HashMap::new();
        while partitions
            .iter()
            .any(|partition| self.tracker.num_in_flight(*partition) > 0)
        {
            let Ok(Some(completion)) =
                tokio::time::timeout_at(deadline, self.completions.1.recv()).await
            else {
                tracing::warn!(?partitions, "revocation flush timed out");
                break;
            };
            if let Some((partition, offset)) = self.settle(completion)? {
                if partitions.contains(&partition) {
                    // Committed synchronously by the rebalance callback, before they leave.
                    committable.insert(partition, offset);
                } else {
                    self.commit_async(partition, offset);
                }
            }
        }
        for partition in partitions {
            self.forget_partition(*partition);
        }
        // Sign what this owner wrote before the next owner carries the chains on.
        let revoked_heads = self.heads.remove(&self.topic, partitions);
        if let Some(publisher) = &self.checkpoints
            && !revoked_heads.is_empty()
        {
            let publisher = publisher.clone();
            tokio::spawn(async move { publisher.publish_logged(revoked_heads).await });
        }
        Ok(committable.into_iter().collect())
    }

    fn forget_partition(&mut self, partition: i32) {
        self.batchers.remove(&partition);
        self.tracker.forget(partition);
        *self.generations.entry(partition).or_default() += 1;
    }

    /// Shutdown: seal everything, wait for the writes until the deadline, commit what
    /// finished. What did not finish by then is counted in the report and not committed.
    async fn drain_and_commit(&mut self) -> Result<(), IngestError> {
        self.health.set_stopping();
        let deadline = self
            .stop
            .deadline()
            .unwrap_or_else(|| tokio::time::Instant::now() + self.config.shutdown_timeout);
        tracing::info!(timeout = ?deadline.saturating_duration_since(tokio::time::Instant::now()), "shutting down: flushing open batches");
        let open: Vec<Batch> = self
            .batchers
            .values_mut()
            .filter_map(PartitionBatcher::seal_now)
            .collect();
        for batch in open {
            self.dispatch(batch).await;
        }
        let mut committable: HashMap<i32, i64> = HashMap::new();
        while self.tracker.total_in_flight() > 0 {
            let Ok(Some(completion)) =
                tokio::time::timeout_at(deadline, self.completions.1.recv()).await
            else {
                break;
            };
            if let Some((partition, offset)) = self.settle(completion)? {
                committable.insert(partition, offset);
            }
        }
        self.report.unwritten_batches = self.tracker.total_in_flight() as u64;
        if self.report.unwritten_batches > 0 {
            tracing::warn!(
                unwritten_batches = self.report.unwritten_batches,
                "shutdown deadline reached with batches unwritten; they are consumed again on restart"
            );
        }
        if committable.is_empty() {
            let deadline = deadline.max(tokio::time::Instant::now() + FINAL_COMMIT_GRACE);
            self.final_checkpoint(deadline).await;
            return Ok(());
        }
        let (reply_tx, reply_rx) = oneshot::channel();
        let offsets: Vec<(i32, i64)> = committable.into_iter().collect();
        let _ = self.commands_tx.send(SourceCommand::Commit {
            offsets: offsets.clone(),
            reply: Some(reply_tx),
        });
        // Kafka is a different system from the one that may be down: give the commit a
        // moment of its own even when the deadline has passed.
        let commit_deadline = deadline.max(tokio::time::Instant::now() + FINAL_COMMIT_GRACE);
        match tokio::time::timeout_at(commit_deadline, reply_rx).await {
            Ok(Ok(Ok(()))) => tracing::info!(?offsets, "final offsets committed"),
            Ok(Ok(Err(error))) => tracing::warn!(%error, "final commit failed"),
            _ => tracing::warn!("final commit did not complete"),
        }
        self.final_checkpoint(commit_deadline).await;
        Ok(())
    }

    /// Signs every head once more at shutdown, so that nothing this ingester committed is
    /// left outside a checkpoint.
    async fn final_checkpoint(&mut self, deadline: tokio::time::Instant) {
        let Some(publisher) = &self.checkpoints else {
            return;
        };
        let Some(heads) = self.heads.take_changed(&self.topic, false) else {
            return;
        };
        if tokio::time::timeout_at(deadline, publisher.publish_logged(heads))
            .await
            .is_err()
        {
            tracing::warn!("final checkpoint did not complete before the deadline");
        }
    }
}

/// The dead-letter class of a message the ingester cannot use.
fn poison_kind(error: &EventError) -> &'static str {
    match error {
        EventError::UnknownFingerprint { .. }
        | EventError::UnknownSchemaId { .. }
        | EventError::UnknownSchemaVersion { .. } => "unknown_schema",
        EventError::Empty
        | EventError::TooShort { .. }
        | EventError::UnknownMagic { .. }
        | EventError::Truncated { .. }
        | EventError::MalformedVarint { .. }
        | EventError::NegativeLength { .. }
        | EventError::InvalidUnionIndex { .. }
        | EventError::InvalidBool { .. }
        | EventError::InvalidUuid { .. }
        | EventError::InvalidIp
        | EventError::InvalidJson { .. }
        | EventError::TrailingBytes { .. }
        | EventError::Avro { .. } => "decode",
        _ => "invalid_event",
    }
}

/// The last `window` messages, as poison or not.
#[derive(Debug)]
struct PoisonWindow {
    window: VecDeque<bool>,
    capacity: usize,
    num_poison: usize,
    max_poison: usize,
}

impl PoisonWindow {
    fn new(capacity: usize, max_poison: usize) -> Self {
        Self {
            window: VecDeque::with_capacity(capacity.min(1 << 16)),
            capacity: capacity.max(1),
            num_poison: 0,
            max_poison,
        }
    }

    /// Adds one message; returns true when the window now holds too much poison.
    fn push(&mut self, is_poison: bool) -> bool {
        if self.window.len() == self.capacity && self.window.pop_front() == Some(true) {
            self.num_poison -= 1;
        }
        self.window.push_back(is_poison);
        if is_poison {
            self.num_poison += 1;
        }
        self.num_poison > self.max_poison
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Mutex;
    use std::sync::mpsc::Receiver;

    use tokio::time::Instant as TokioInstant;

    use super::*;
    use crate::batch::PlannedRange;
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
    }

    impl Harness {
        fn start(config: IngesterConfig, writer: FakeWriter) -> Self {
            let (events, events_rx) = mpsc::channel(64);
            let (commands_tx, commands) = std::sync::mpsc::channel();
            let (stop, stop_rx) = Stop::manual();
            let mut coordinator =
                Coordinator::new(config, writer, commands_tx, Health::default(), stop_rx);
            let running = tokio::spawn(async move {
                let outcome = coordinator.run(events_rx).await;
                (outcome, coordinator.report)
            });
            Self {
                events,
                commands,
                stop,
                running,
            }
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
        SourceEvent::Message(RawMessage {
            partition,
            offset,
            key: None,
            payload: Some(payload),
            timestamp_millis: None,
            replay: None,
        })
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
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        harness
            .events
            .send(SourceEvent::Revoked {
                partitions: vec![3],
                reply,
            })
            .await
            .expect("coordinator running");
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
}
