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

use crate::batch::{Batch, PartitionBatcher};
use crate::checkpoints::{CheckpointPublisher, Heads};
use crate::config::IngesterConfig;
use crate::decode::Decoded;
use crate::dlq::letter::Poison;
use crate::dlq::producer::DeadLetterProducer;
use crate::intent::IntentStore;
use crate::offsets::CommitTracker;
use crate::retry::{Retrier, Stage};
use crate::revocations::Revocations;
use crate::row_buffers::RowBuffers;
use crate::sink::ClickHouseSink;
use crate::source::{self, ChunkRecycler, MessageRef, SourceCommand, SourceEvent};
use crate::stages::StageTimer;
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

    let revocations = Arc::new(Revocations::default());
    let (context, events_rx, recycler) = source::context(
        &config.topic,
        EVENTS_CHANNEL_CAPACITY,
        config.revoke_timeout,
        Arc::clone(&revocations),
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
            config.insert_compression,
            &config.clickhouse.database,
            &config.clickhouse.table,
            &stored_columns(),
        ),
        intents: IntentStore::new(client),
        dead_letters,
        retrier,
    };
    if let Some(publisher) = publisher.clone() {
        let kafka = kafka.clone();
        tokio::spawn(async move { publisher.heal_logged(&kafka).await });
    }
    let mut coordinator = Coordinator::new(config, writer, commands_tx, health.clone(), stop);
    coordinator.checkpoints = publisher;
    coordinator.recycler = Some(recycler);
    coordinator.revocations = revocations;
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

/// How often a revocation's flush looks whether the consumer still waits for it.
const GIVEN_UP_CHECK: Duration = Duration::from_millis(250);

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
    /// Revocations the source gave up waiting for: until one is handled here, what
    /// finishes for its partitions is ignored like an old generation's batch.
    revocations: Arc<Revocations>,
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
    /// Where emptied chunks go back to the poll thread; `None` drops them.
    recycler: Option<ChunkRecycler>,
    /// Every partition's batch row buffers, reused once their insert is done.
    row_buffers: RowBuffers,
    decode_time: StageTimer,
    encode_time: StageTimer,
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
            revocations: Arc::default(),
            permits: Arc::new(Semaphore::new(config.max_in_flight_batches)),
            completions: mpsc::unbounded_channel(),
            commands_tx,
            poison_window: PoisonWindow::new(config.poison.window, config.poison.max_poison),
            health,
            report: IngestReport::default(),
            checkpoints: None,
            heads: Heads::default(),
            recycler: None,
            row_buffers: RowBuffers::default(),
            decode_time: StageTimer::new("decode"),
            encode_time: StageTimer::new("encode"),
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
                    Some(SourceEvent::Messages(chunk)) => {
                        age_check_parked = false;
                        // One clock read per chunk: its messages arrived together.
                        let now = batch_clock();
                        for message in chunk.iter() {
                            match self.consume(message, now).await {
                                // A stop came while a partition's intents were loading: that
                                // message and the rest are not taken, so nothing depends on
                                // them.
                                Err(IngestError::ShutdownDeadline { .. }) => {
                                    return self.drain_and_commit().await;
                                }
                                other => other?,
                            }
                        }
                        if let Some(recycler) = &self.recycler {
                            recycler.recycle(chunk);
                        }
                    }
                    Some(SourceEvent::Assigned(partitions)) => {
                        metrics::gauge!(names::ASSIGNED_PARTITIONS).set(partitions.len() as f64);
                        self.health.set_assigned(partitions.len());
                    }
                    Some(SourceEvent::Revoked { partitions, number, reply }) => {
                        let offsets = self.revoke(&partitions).await?;
                        self.revocations.handled(number);
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

    async fn consume(&mut self, message: MessageRef<'_>, now: Instant) -> Result<(), IngestError> {
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
            )
            .with_row_buffers(self.row_buffers.clone());
            self.batchers.insert(partition, batcher);
        }

        let started = self.decode_time.sample_start();
        let decoded = Decoded::read(&self.codec, message.payload.unwrap_or_default());
        self.decode_time.sample_end(started);
        let Some(batcher) = self.batchers.get_mut(&partition) else {
            return Ok(());
        };
        let sealed = match decoded {
            Ok(decoded) => {
                // Only live traffic counts toward the flood stop: a replay of old poison
                // must neither trip it nor dilute it.
                if message.replay.is_none() {
                    self.poison_window.push(false);
                }
                let encoder = &mut self.row_encoder;
                let encode_time = &mut self.encode_time;
                let source = Source {
                    partition,
                    offset: message.offset,
                };
                batcher.push_row(
                    message.offset,
                    decoded.time_micros(),
                    |rows| {
                        let started = encode_time.sample_start();
                        decoded.encode_stored(encoder, source, rows);
                        encode_time.sample_end(started);
                    },
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
                    key: message.key.map(<[u8]>::to_vec),
                    payload: message.payload.map(<[u8]>::to_vec),
                    timestamp_millis: message.timestamp_millis,
                    replay: message.replay.cloned(),
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
        self.decode_time.flush();
        self.encode_time.flush();
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
    /// Batches of a partition revoked since they were dispatched (older generation), or
    /// whose revocation the source gave up waiting for, count but commit nothing.
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
        if self.generations.get(&partition).copied() != Some(completion.generation)
            || self.revocations.abandoned(partition)
        {
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
            if partitions
                .iter()
                .all(|partition| self.revocations.abandoned(*partition))
            {
                // Nobody waits for the answer any more: the other partitions need the
                // coordinator back.
                tracing::warn!(
                    ?partitions,
                    "revocation given up by the consumer; not waiting for its batches"
                );
                break;
            }
            let slice = (tokio::time::Instant::now() + GIVEN_UP_CHECK).min(deadline);
            let completion = match tokio::time::timeout_at(slice, self.completions.1.recv()).await {
                Ok(Some(completion)) => completion,
                Err(_) if slice < deadline => continue,
                _ => {
                    tracing::warn!(?partitions, "revocation flush timed out");
                    break;
                }
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
mod tests;
