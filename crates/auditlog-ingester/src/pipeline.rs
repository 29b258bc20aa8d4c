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
use bytes::Bytes;
use rdkafka::consumer::{BaseConsumer, Consumer};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};

use crate::batch::{Batch, PartitionBatcher, PlannedRange, Poison};
use crate::config::IngesterConfig;
use crate::dlq::DeadLetterProducer;
use crate::intent::IntentStore;
use crate::offsets::CommitTracker;
use crate::row::{COLUMNS, RowEncoder};
use crate::sink::{ClickHouseSink, ErrorClass, classify, permanent};
use crate::source::{self, RawMessage, SourceCommand, SourceEvent};
use crate::{Health, IngestError, metrics as names};

/// Messages buffered between the source thread and the coordinator.
const EVENTS_CHANNEL_CAPACITY: usize = 8_192;

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
}

/// Runs the ingester until `shutdown` turns true (then flushes and commits within the
/// shutdown timeout and returns `Ok`) or until a permanent error (returns it, having
/// committed only what is safe).
pub async fn run(
    config: IngesterConfig,
    health: Health,
    mut shutdown: watch::Receiver<bool>,
) -> Result<IngestReport, IngestError> {
    config.validate()?;
    names::describe();
    let kafka = source::client_config(&config);
    source::check_topics_exist(&kafka, &[&config.topic, &config.dlq_topic])?;
    let dead_letters = DeadLetterProducer::new(&kafka, config.dlq_topic.clone(), config.retry)?;

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
    let mut coordinator = Coordinator {
        topic: Arc::from(config.topic.as_str()),
        sink: ClickHouseSink::new(
            client.clone(),
            &config.clickhouse.database,
            &config.clickhouse.table,
            COLUMNS,
        ),
        intents: IntentStore::new(client),
        dead_letters,
        codec: EventCodec::new(Framing::SingleObject),
        row_encoder: RowEncoder::default(),
        batchers: HashMap::new(),
        tracker: CommitTracker::default(),
        generations: HashMap::new(),
        permits: Arc::new(Semaphore::new(config.max_in_flight_batches)),
        completions: mpsc::unbounded_channel(),
        commands_tx,
        poison_window: PoisonWindow::new(config.poison.window, config.poison.max_poison),
        health: health.clone(),
        report: IngestReport::default(),
        config,
    };
    health.set_running(true);
    let outcome = coordinator.run(events_rx, &mut shutdown).await;
    health.set_running(false);
    stop_source.store(true, Ordering::Release);
    let _ = tokio::task::spawn_blocking(move || source_thread.join()).await;
    outcome.map(|()| coordinator.report)
}

/// A finished write task.
#[derive(Debug)]
struct Completion {
    partition: i32,
    generation: u64,
    first_offset: i64,
    result: Result<(usize, usize), IngestError>,
}

struct Coordinator {
    config: IngesterConfig,
    topic: Arc<str>,
    sink: ClickHouseSink,
    intents: IntentStore,
    dead_letters: DeadLetterProducer,
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
}

impl Coordinator {
    async fn run(
        &mut self,
        mut events_rx: mpsc::Receiver<SourceEvent>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), IngestError> {
        let mut age_check = tokio::time::interval(AGE_CHECK_INTERVAL);
        age_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        return self.drain_and_commit().await;
                    }
                }
                Some(completion) = self.completions.1.recv() => self.complete(completion)?,
                event = events_rx.recv() => match event {
                    Some(SourceEvent::Message(message)) => self.consume(message).await?,
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
                _ = age_check.tick() => {
                    let now = Instant::now();
                    let expired: Vec<Batch> = self
                        .batchers
                        .values_mut()
                        .filter_map(|batcher| batcher.seal_if_expired(now))
                        .collect();
                    for batch in expired {
                        self.dispatch(batch).await;
                    }
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
            let plans = self.load_plans(partition, message.offset).await?;
            let batcher =
                PartitionBatcher::new(Arc::clone(&self.topic), partition, self.config.batch, plans);
            self.batchers.insert(partition, batcher);
        }

        let now = Instant::now();
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
                let micros =
                    i64::try_from(event.time.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX);
                let encoder = &mut self.row_encoder;
                batcher.push_row(
                    message.offset,
                    micros,
                    |rows| encoder.encode(&event, rows),
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

    /// Loads the recorded batch ranges of a partition, retrying while ClickHouse is away:
    /// without them the first batches could be cut differently from before a crash.
    async fn load_plans(
        &mut self,
        partition: i32,
        from_offset: i64,
    ) -> Result<Vec<PlannedRange>, IngestError> {
        let mut attempt = 0;
        loop {
            match self.intents.load(&self.topic, partition, from_offset).await {
                Ok(plans) => {
                    if attempt > 0 {
                        metrics::gauge!(names::CLICKHOUSE_DOWN).set(0.0);
                        self.health.set_clickhouse_error(None);
                    }
                    if !plans.is_empty() {
                        tracing::info!(
                            partition,
                            from_offset,
                            num_plans = plans.len(),
                            "replaying recorded batch ranges"
                        );
                    }
                    return Ok(plans);
                }
                Err(error) if classify(&error) == ErrorClass::Permanent => {
                    return Err(permanent(&error));
                }
                Err(error) => {
                    attempt += 1;
                    metrics::counter!(names::RETRIES, "stage" => "intent_load").increment(1);
                    metrics::gauge!(names::CLICKHOUSE_DOWN).set(1.0);
                    self.health.set_clickhouse_error(Some(error.to_string()));
                    tracing::warn!(%error, attempt, "loading batch intents failed, retrying");
                    tokio::time::sleep(self.config.retry.delay(attempt)).await;
                }
            }
        }
    }

    /// Hands a sealed batch to a write task, waiting for a free slot (backpressure).
    async fn dispatch(&mut self, batch: Batch) {
        let partition = batch.partition;
        let generation = *self.generations.entry(partition).or_default();
        self.tracker
            .register(partition, batch.first_offset, batch.last_offset);
        let Ok(permit) = Arc::clone(&self.permits).acquire_owned().await else {
            return;
        };
        let writer = Writer {
            sink: self.sink.clone(),
            intents: self.intents.clone(),
            dead_letters: self.dead_letters.clone(),
            retry: self.config.retry,
            health: self.health.clone(),
        };
        let completions_tx = self.completions.0.clone();
        tokio::spawn(async move {
            let first_offset = batch.first_offset;
            let result = writer.write(batch).await;
            drop(permit);
            let _ = completions_tx.send(Completion {
                partition,
                generation,
                first_offset,
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
        let (num_rows, num_poison) = completion.result?;
        self.report.rows_inserted += num_rows as u64;
        self.report.dead_lettered += num_poison as u64;
        self.report.batches += 1;
        let partition = completion.partition;
        if self.generations.get(&partition).copied() != Some(completion.generation) {
            return Ok(None);
        }
        let Some(offset) = self.tracker.finish(partition, completion.first_offset) else {
            return Ok(None);
        };
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
        Ok(committable.into_iter().collect())
    }

    fn forget_partition(&mut self, partition: i32) {
        self.batchers.remove(&partition);
        self.tracker.forget(partition);
        *self.generations.entry(partition).or_default() += 1;
    }

    /// Shutdown: seal everything, wait (bounded) for the writes, commit synchronously.
    async fn drain_and_commit(&mut self) -> Result<(), IngestError> {
        tracing::info!("shutting down: flushing open batches");
        let open: Vec<Batch> = self
            .batchers
            .values_mut()
            .filter_map(PartitionBatcher::seal_now)
            .collect();
        for batch in open {
            self.dispatch(batch).await;
        }
        let deadline = tokio::time::Instant::now() + self.config.shutdown_timeout;
        let mut committable: HashMap<i32, i64> = HashMap::new();
        while self.tracker.total_in_flight() > 0 {
            let Ok(Some(completion)) =
                tokio::time::timeout_at(deadline, self.completions.1.recv()).await
            else {
                tracing::warn!(
                    in_flight = self.tracker.total_in_flight(),
                    "shutdown deadline reached with batches unwritten; they are consumed again on restart"
                );
                break;
            };
            if let Some((partition, offset)) = self.settle(completion)? {
                committable.insert(partition, offset);
            }
        }
        if committable.is_empty() {
            return Ok(());
        }
        let (reply_tx, reply_rx) = oneshot::channel();
        let offsets: Vec<(i32, i64)> = committable.into_iter().collect();
        let _ = self.commands_tx.send(SourceCommand::Commit {
            offsets: offsets.clone(),
            reply: Some(reply_tx),
        });
        match tokio::time::timeout(Duration::from_secs(10), reply_rx).await {
            Ok(Ok(Ok(()))) => tracing::info!(?offsets, "final offsets committed"),
            Ok(Ok(Err(error))) => tracing::warn!(%error, "final commit failed"),
            _ => tracing::warn!("final commit did not complete"),
        }
        Ok(())
    }
}

/// Everything a write task needs; cheap to clone.
struct Writer {
    sink: ClickHouseSink,
    intents: IntentStore,
    dead_letters: DeadLetterProducer,
    retry: crate::sink::RetryPolicy,
    health: Health,
}

impl Writer {
    /// Intent, then dead letters, then rows. Returns (rows, poison) once all are acknowledged.
    async fn write(&self, batch: Batch) -> Result<(usize, usize), IngestError> {
        let started = Instant::now();
        if !batch.planned {
            let range = PlannedRange {
                first_offset: batch.first_offset,
                last_offset: batch.last_offset,
            };
            self.retry_transient("intent", || {
                self.intents
                    .record(&batch.topic, batch.partition, range, batch.num_messages())
            })
            .await?;
        }
        if !batch.poison.is_empty() {
            self.dead_letters
                .send_all(&batch.topic, batch.partition, &batch.poison)
                .await?;
        }
        if batch.num_rows > 0 {
            let token = batch.dedup_token();
            let rows = Bytes::from(batch.rows);
            self.retry_transient("insert", || self.sink.insert_once(&rows, &token))
                .await?;
            metrics::histogram!(names::BATCH_ROWS).record(batch.num_rows as f64);
            metrics::histogram!(names::BATCH_BYTES).record(rows.len() as f64);
            metrics::counter!(names::INSERTED).increment(batch.num_rows as u64);
            let now_micros = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000;
            let freshness = metrics::histogram!(names::FRESHNESS);
            for event_micros in &batch.event_times_micros {
                let lag_micros = now_micros - i128::from(*event_micros);
                freshness.record(lag_micros.max(0) as f64 / 1e6);
            }
        }
        metrics::counter!(names::BATCHES).increment(1);
        metrics::histogram!(names::BATCH_LATENCY).record(started.elapsed().as_secs_f64());
        Ok((batch.num_rows, batch.poison.len()))
    }

    /// Runs `attempt` until it succeeds or fails permanently, backing off in between.
    async fn retry_transient<F, Fut>(
        &self,
        stage: &'static str,
        mut attempt: F,
    ) -> Result<(), IngestError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(), clickhouse::error::Error>>,
    {
        let mut failures = 0;
        loop {
            match attempt().await {
                Ok(()) => {
                    if failures > 0 {
                        tracing::info!(stage, failures, "clickhouse write succeeded after retries");
                        metrics::gauge!(names::CLICKHOUSE_DOWN).set(0.0);
                    }
                    self.health.set_clickhouse_error(None);
                    return Ok(());
                }
                Err(error) if classify(&error) == ErrorClass::Permanent => {
                    tracing::error!(stage, %error, "clickhouse rejected the write permanently");
                    return Err(permanent(&error));
                }
                Err(error) => {
                    failures += 1;
                    metrics::counter!(names::RETRIES, "stage" => stage).increment(1);
                    metrics::gauge!(names::CLICKHOUSE_DOWN).set(1.0);
                    self.health.set_clickhouse_error(Some(error.to_string()));
                    let delay = self.retry.delay(failures);
                    tracing::warn!(stage, %error, failures, ?delay, "clickhouse write failed, retrying the same batch");
                    tokio::time::sleep(delay).await;
                }
            }
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
    use super::*;

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
