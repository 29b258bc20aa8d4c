//! The Kafka side: a consumer polled on its own thread, feeding a bounded channel.
//!
//! ```text
//!   librdkafka ──poll──▶ backlog ──try_send──▶ events channel (bounded) ──▶ coordinator
//!        ▲               (chunks of      │ full: pause every assigned partition, keep polling
//!        │                messages) ◀────┼──── emptied chunks, for reuse ◀────────┤
//!        └── commits ◀──────────────────┴──── commands channel ◀─────────────────┘
//! ```
//!
//! Messages go over in chunks ([`MessageChunk`]): what librdkafka already holds is copied
//! into one buffer, up to [`CHUNK_MESSAGES`], so a message costs neither a channel send nor
//! an allocation of its own.
//!
//! A full channel first just waits (librdkafka's prefetch queue is bounded by
//! `queued.max.messages.kbytes`). If the pipeline stays stalled (ClickHouse down), the
//! partitions are paused and polling goes on, so the member stays in its group and memory
//! stays bounded; on resume each partition is sought to the offset after the last message
//! handed out, so nothing is skipped.
//!
//! Revocation is a handshake inside librdkafka's rebalance callback: the coordinator flushes
//! the revoked partitions' batches, answers with the offsets that are now safe, and the
//! callback commits them synchronously before the partitions leave. A callback that stops
//! waiting (the revocation timeout) marks the revocation given up in [`Revocations`] before
//! it returns, so the coordinator neither commits nor signs what finishes for it later.
//!
//! Every group protocol works the same way here: the eager assignors (range, roundrobin)
//! revoke everything and assign the new set; `cooperative-sticky` and the consumer protocol
//! of KIP-848 (`group.protocol=consumer`) revoke and assign only the partitions that move.
//! So the source never trusts a rebalance's list to be the whole assignment: it reports the
//! consumer's actual assignment after each change.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};

use crate::dlq::letter::ReplayOrigin;
use crate::revocations::Revocations;
use crate::stages::StageTimer;
use crate::{IngestError, IngesterConfig};

/// How long the pipeline may refuse messages before the partitions are paused. Shorter
/// stalls are waited out without polling; a pause is for outages (ClickHouse down), since
/// it discards librdkafka's prefetched messages, which must then be fetched again.
const PAUSE_AFTER: Duration = Duration::from_secs(1);

/// Messages handed over at most this many at a time: one channel send, one wake-up and one
/// buffer per chunk instead of per message.
pub(crate) const CHUNK_MESSAGES: usize = 256;

/// Chunks whose buffer grew beyond this (unusually large messages) are not kept for reuse.
const MAX_RECYCLED_CHUNK_BYTES: usize = 4 * 1024 * 1024;

/// Emptied chunks kept for reuse, on their way back from the coordinator.
const RECYCLED_CHUNKS: usize = 16;

/// Consumed messages, in consumption order, copied out of librdkafka's buffers into one
/// buffer of their own. The coordinator sends emptied chunks back ([`ChunkRecycler`]), so in
/// the steady state no message costs an allocation.
#[derive(Debug, Default)]
pub(crate) struct MessageChunk {
    /// Keys and payloads, back to back.
    data: Vec<u8>,
    entries: Vec<ChunkEntry>,
}

#[derive(Debug)]
struct ChunkEntry {
    partition: i32,
    offset: i64,
    key: Option<(usize, usize)>,
    payload: Option<(usize, usize)>,
    timestamp_millis: Option<i64>,
    replay: Option<ReplayOrigin>,
}

/// One message of a [`MessageChunk`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct MessageRef<'a> {
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) key: Option<&'a [u8]>,
    /// `None` for a null value (a tombstone).
    pub(crate) payload: Option<&'a [u8]>,
    pub(crate) timestamp_millis: Option<i64>,
    pub(crate) replay: Option<&'a ReplayOrigin>,
}

impl MessageChunk {
    /// Copies a message in.
    pub(crate) fn push(&mut self, message: MessageRef<'_>) {
        let mut copy = |bytes: Option<&[u8]>| {
            bytes.map(|bytes| {
                let start = self.data.len();
                self.data.extend_from_slice(bytes);
                (start, self.data.len())
            })
        };
        let key = copy(message.key);
        let payload = copy(message.payload);
        self.entries.push(ChunkEntry {
            partition: message.partition,
            offset: message.offset,
            key,
            payload,
            timestamp_millis: message.timestamp_millis,
            replay: message.replay.cloned(),
        });
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The messages, in consumption order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = MessageRef<'_>> {
        let bytes =
            |range: Option<(usize, usize)>| range.map(|(start, end)| &self.data[start..end]);
        self.entries.iter().map(move |entry| MessageRef {
            partition: entry.partition,
            offset: entry.offset,
            key: bytes(entry.key),
            payload: bytes(entry.payload),
            timestamp_millis: entry.timestamp_millis,
            replay: entry.replay.as_ref(),
        })
    }

    /// Drops the messages of `partitions` (their bytes stay until the chunk is cleared).
    fn drop_partitions(&mut self, partitions: &[i32]) {
        self.entries
            .retain(|entry| !partitions.contains(&entry.partition));
    }

    fn clear(&mut self) {
        self.data.clear();
        self.entries.clear();
    }
}

/// The coordinator's way of sending emptied chunks back to the poll thread.
#[derive(Debug, Clone)]
pub(crate) struct ChunkRecycler(SyncSender<MessageChunk>);

impl ChunkRecycler {
    /// Gives `chunk` back for reuse, unless enough are waiting already.
    pub(crate) fn recycle(&self, mut chunk: MessageChunk) {
        if chunk.data.capacity() <= MAX_RECYCLED_CHUNK_BYTES {
            chunk.clear();
            let _ = self.0.try_send(chunk);
        }
    }
}

/// What the source tells the coordinator, in consumption order.
#[derive(Debug)]
pub(crate) enum SourceEvent {
    Messages(MessageChunk),
    /// The partitions this member owns now, after a rebalance (all of them, not the change).
    Assigned(Vec<i32>),
    /// Flush these partitions and answer with the offsets to commit before they leave.
    /// `number` is the revocation's in [`Revocations`], where the callback marks it if it
    /// stops waiting for the answer.
    Revoked {
        partitions: Vec<i32>,
        number: u64,
        reply: SyncSender<Vec<(i32, i64)>>,
    },
}

/// What the coordinator asks of the source.
#[derive(Debug)]
pub(crate) enum SourceCommand {
    /// Commit these next-offsets (only for partitions still assigned).
    Commit {
        offsets: Vec<(i32, i64)>,
        reply: Option<oneshot::Sender<Result<(), KafkaError>>>,
    },
}

/// The consumer's callbacks, shared with the poll loop.
pub(crate) struct SourceContext {
    topic: String,
    events_tx: mpsc::Sender<SourceEvent>,
    /// Events not yet accepted by the channel. Shared with the rebalance callback so that a
    /// revocation can drop the revoked partitions' pending messages first.
    backlog: Mutex<VecDeque<SourceEvent>>,
    /// The offset after the last message handed out, per partition: where a resumed
    /// partition must continue. Cleared for partitions that move, so a partition assigned
    /// again starts from its committed offset, never from a stale position.
    next_offsets: Mutex<HashMap<i32, i64>>,
    /// Whether the poll loop has paused the assignment (a stalled pipeline). A partition
    /// assigned meanwhile is paused as it arrives, or it would fill the backlog unbounded.
    paused: AtomicBool,
    revoke_timeout: Duration,
    revocations: Arc<Revocations>,
    /// Emptied chunks back from the coordinator, for the poll thread to fill again.
    recycled: Mutex<Receiver<MessageChunk>>,
}

impl SourceContext {
    fn backlog(&self) -> MutexGuard<'_, VecDeque<SourceEvent>> {
        // A panic while holding the lock leaves a consistent queue: keep going.
        self.backlog
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn next_offsets(&self) -> MutexGuard<'_, HashMap<i32, i64>> {
        self.next_offsets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Appends a consumed message to the backlog: to the chunk at its end while that has
    /// room, else to a new (reused) chunk after it, so order across events is kept.
    fn push_message(&self, message: MessageRef<'_>) {
        let mut backlog = self.backlog();
        if let Some(SourceEvent::Messages(chunk)) = backlog.back_mut()
            && chunk.len() < CHUNK_MESSAGES
        {
            chunk.push(message);
            return;
        }
        let mut chunk = self
            .recycled
            .lock()
            .ok()
            .and_then(|recycled| recycled.try_recv().ok())
            .unwrap_or_default();
        chunk.push(message);
        backlog.push_back(SourceEvent::Messages(chunk));
    }

    /// Moves backlog events into the channel until it is full. Returns false if the
    /// coordinator is gone.
    fn drain_backlog(&self) -> bool {
        let mut backlog = self.backlog();
        while let Some(event) = backlog.pop_front() {
            match self.events_tx.try_send(event) {
                Ok(()) => {}
                Err(TrySendError::Full(event)) => {
                    backlog.push_front(event);
                    return true;
                }
                Err(TrySendError::Closed(_)) => return false,
            }
        }
        true
    }

    /// This topic's partitions in `list`.
    fn partitions_of(&self, list: &TopicPartitionList) -> Vec<i32> {
        list.elements_for_topic(&self.topic)
            .iter()
            .map(|element| element.partition())
            .collect()
    }

    /// Tells the coordinator what the consumer owns now.
    fn report_assignment(&self, consumer: &BaseConsumer<Self>) {
        let partitions = match consumer.assignment() {
            Ok(assignment) => self.partitions_of(&assignment),
            Err(error) => {
                tracing::warn!(%error, "reading the assignment failed");
                return;
            }
        };
        self.backlog().push_back(SourceEvent::Assigned(partitions));
        self.drain_backlog();
    }

    fn revoke(&self, consumer: &BaseConsumer<Self>, revoked: &TopicPartitionList) {
        let partitions = self.partitions_of(revoked);
        if partitions.is_empty() {
            return;
        }
        tracing::info!(?partitions, "partitions revoked");
        {
            let mut next_offsets = self.next_offsets();
            for partition in &partitions {
                next_offsets.remove(partition);
                // The new owner reports this partition's lag from now on.
                metrics::gauge!(crate::metrics::PARTITION_LAG, "partition" => partition.to_string())
                    .set(0.0);
            }
        }
        let deadline = Instant::now() + self.revoke_timeout;
        let number = self.revocations.begin();
        let (reply_tx, reply_rx) = sync_channel(1);
        {
            let mut backlog = self.backlog();
            // Their new owner consumes these again from the committed offset.
            for event in backlog.iter_mut() {
                if let SourceEvent::Messages(chunk) = event {
                    chunk.drop_partitions(&partitions);
                }
            }
            backlog.retain(|event| match event {
                SourceEvent::Messages(chunk) => !chunk.is_empty(),
                _ => true,
            });
            backlog.push_back(SourceEvent::Revoked {
                partitions: partitions.clone(),
                number,
                reply: reply_tx,
            });
        }
        loop {
            if !self.drain_backlog() {
                return;
            }
            if self.backlog().is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                self.revocations.give_up(&partitions, number);
                tracing::warn!(
                    ?partitions,
                    "revocation could not reach the pipeline in time; the next owner resumes from the last commit"
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        match reply_rx.recv_timeout(remaining) {
            Ok(offsets) if !offsets.is_empty() => {
                let list = offsets_list(&self.topic, &offsets);
                match consumer.commit(&list, CommitMode::Sync) {
                    Ok(()) => {
                        metrics::counter!(crate::metrics::COMMITS).increment(1);
                        tracing::info!(?offsets, "committed revoked partitions");
                    }
                    Err(error) => tracing::warn!(%error, "commit on revocation failed"),
                }
            }
            Ok(_) => {}
            Err(_) => {
                self.revocations.give_up(&partitions, number);
                tracing::warn!(
                    ?partitions,
                    "revoked partitions were not flushed in time; the next owner resumes from the last commit"
                );
            }
        }
    }
}

impl ClientContext for SourceContext {
    fn stats(&self, statistics: Statistics) {
        if let Some(topic) = statistics.topics.get(&self.topic) {
            for (partition, stats) in &topic.partitions {
                if *partition >= 0 && stats.consumer_lag >= 0 {
                    metrics::gauge!(crate::metrics::PARTITION_LAG, "partition" => partition.to_string())
                        .set(stats.consumer_lag as f64);
                }
            }
        }
    }
}

impl ConsumerContext for SourceContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(revoked) = rebalance {
            self.revoke(consumer, revoked);
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(assigned) => {
                let partitions = self.partitions_of(assigned);
                tracing::info!(?partitions, "partitions assigned");
                {
                    let mut next_offsets = self.next_offsets();
                    for partition in &partitions {
                        next_offsets.remove(partition);
                    }
                }
                // librdkafka keeps an application's pause on a partition across its revocation
                // and a later assignment. A partition paused in a stall, revoked, and assigned
                // back after the stall ended would stay paused for good (the loop resumes only
                // while it believes itself paused), so each assignment gets the loop's state.
                let result = if self.paused.load(Ordering::Acquire) {
                    consumer.pause(assigned)
                } else {
                    consumer.resume(assigned)
                };
                if let Err(error) = result {
                    tracing::warn!(%error, "pausing or resuming newly assigned partitions failed");
                }
                self.report_assignment(consumer);
            }
            // After an incremental revoke the member keeps the rest; after an eager one the
            // next Assign follows. Either way the coordinator learns what is left.
            Rebalance::Revoke(_) => self.report_assignment(consumer),
            Rebalance::Error(error) => tracing::warn!(%error, "rebalance error"),
        }
    }
}

fn offsets_list(topic: &str, offsets: &[(i32, i64)]) -> TopicPartitionList {
    let mut list = TopicPartitionList::new();
    for (partition, offset) in offsets {
        // Only fails for an invalid offset value, which next-offsets never are.
        let _ = list.add_partition_offset(topic, *partition, Offset::Offset(*offset));
    }
    list
}

/// Builds the context, its channel (bounded to about `capacity_messages` messages) and the
/// way back for emptied chunks.
pub(crate) fn context(
    topic: &str,
    capacity_messages: usize,
    revoke_timeout: Duration,
    revocations: Arc<Revocations>,
) -> (SourceContext, mpsc::Receiver<SourceEvent>, ChunkRecycler) {
    let (events_tx, events_rx) = mpsc::channel((capacity_messages / CHUNK_MESSAGES).max(1));
    let (recycle_tx, recycle_rx) = sync_channel(RECYCLED_CHUNKS);
    (
        SourceContext {
            topic: topic.to_owned(),
            events_tx,
            backlog: Mutex::new(VecDeque::new()),
            next_offsets: Mutex::new(HashMap::new()),
            paused: AtomicBool::new(false),
            revoke_timeout,
            revocations,
            recycled: Mutex::new(recycle_rx),
        },
        events_rx,
        ChunkRecycler(recycle_tx),
    )
}

/// A poll while messages flow; one returns as soon as a message is there, so this bounds
/// only how soon commit commands and `stop` are seen.
const BUSY_POLL: Duration = Duration::from_millis(100);

/// How long the poll loop waits before trying a full channel again. The channel holds
/// about 8,000 messages, tens of milliseconds of the coordinator's work, so it never runs
/// dry meanwhile; waking every millisecond instead cost a few percent of the ingester's CPU
/// in a catch-up, in sleeps and wake-ups alone.
const BLOCKED_WAIT: Duration = Duration::from_millis(5);

/// After this long without a message the loop polls in [`IDLE_POLL`] windows instead.
const IDLE_AFTER: Duration = Duration::from_secs(1);

/// A poll of an idle consumer. rdkafka ends every poll by spinning through its last
/// fraction of a millisecond (the time left goes to librdkafka in whole milliseconds, so it
/// is polled with a zero timeout until the deadline passes): about a millisecond of CPU per
/// poll, 1% of a core at 100 ms windows. Idle, a commit command or `stop` waits up to this
/// long; a message still ends the poll at once.
const IDLE_POLL: Duration = Duration::from_secs(2);

/// The poll loop. Runs on its own thread until `stop` is set, then closes the consumer.
pub(crate) fn poll_loop(
    consumer: BaseConsumer<SourceContext>,
    commands_rx: Receiver<SourceCommand>,
    stop: Arc<AtomicBool>,
) {
    let context = Arc::clone(consumer.context());
    let topic = context.topic.clone();
    let mut open = true;
    let mut blocked_since: Option<Instant> = None;
    let mut quiet_since: Option<Instant> = None;
    // Registered once: looking the counter up by name for every message showed in profiles.
    let consumed = metrics::counter!(crate::metrics::CONSUMED);
    let mut handover = StageTimer::new("handover");
    while !stop.load(Ordering::Acquire) {
        while let Ok(command) = commands_rx.try_recv() {
            let SourceCommand::Commit { offsets, reply } = command;
            let result = commit_owned(&consumer, &topic, &offsets, reply.is_some());
            if let Some(reply) = reply {
                let _ = reply.send(result);
            } else if let Err(error) = result {
                tracing::warn!(%error, "offset commit failed; the next commit covers it");
            }
        }

        if open {
            open = context.drain_backlog();
        }
        let blocked = !context.backlog().is_empty();
        if !blocked {
            blocked_since = None;
        }
        let paused = context.paused.load(Ordering::Acquire);
        let stalled =
            blocked && blocked_since.get_or_insert_with(Instant::now).elapsed() >= PAUSE_AFTER;
        let flip = !blocked && paused || stalled && !paused;
        if flip && let Ok(assignment) = consumer.assignment() {
            let result = if paused {
                resume_at_next_offsets(&consumer, &topic, &assignment, &context.next_offsets())
            } else {
                tracing::info!("pipeline stalled: pausing partitions");
                consumer.pause(&assignment)
            };
            match result {
                Ok(()) => context.paused.store(!paused, Ordering::Release),
                Err(error) => tracing::warn!(%error, paused, "pause/resume failed"),
            }
        }
        if blocked && !paused {
            // A momentary full channel: wait for the coordinator instead of polling more.
            // librdkafka keeps prefetching up to its own queue bound meanwhile, which a
            // pause would throw away and fetch again.
            std::thread::sleep(BLOCKED_WAIT);
            continue;
        }

        let timeout = if blocked {
            Duration::from_millis(20)
        } else if quiet_since.is_some_and(|since| since.elapsed() >= IDLE_AFTER) {
            IDLE_POLL
        } else {
            BUSY_POLL
        };
        let mut polled = consumer.poll(timeout);
        if matches!(polled, Some(Ok(_))) {
            quiet_since = None;
        }
        // Whatever librdkafka already holds, up to a chunk, goes over together: later polls
        // do not wait. A rebalance inside one of them filters the backlog itself, so the
        // messages are always in it, never held aside here.
        let mut num_taken = 0;
        while let Some(Ok(message)) = &polled {
            let started = handover.sample_start();
            context
                .next_offsets()
                .insert(message.partition(), message.offset() + 1);
            let replay = ReplayOrigin::from_headers(message.headers());
            context.push_message(MessageRef {
                partition: message.partition(),
                offset: message.offset(),
                key: message.key(),
                payload: message.payload(),
                timestamp_millis: message.timestamp().to_millis(),
                replay: replay.as_ref(),
            });
            handover.sample_end(started);
            num_taken += 1;
            if num_taken == CHUNK_MESSAGES {
                break;
            }
            polled = consumer.poll(Duration::ZERO);
        }
        if num_taken > 0 {
            consumed.increment(num_taken as u64);
            let started = Instant::now();
            if open {
                open = context.drain_backlog();
            }
            handover.add_since(started);
            handover.flush();
        }
        match polled {
            Some(Err(error)) => tracing::warn!(%error, "kafka consumer error"),
            None if num_taken == 0 => {
                quiet_since.get_or_insert_with(Instant::now);
            }
            _ => {}
        }
    }
    // Final commands (the coordinator's last commit) arrive before `stop` is set.
    while let Ok(SourceCommand::Commit { offsets, reply }) = commands_rx.try_recv() {
        let result = commit_owned(&consumer, &topic, &offsets, true);
        if let Some(reply) = reply {
            let _ = reply.send(result);
        }
    }
    context.backlog().clear();
    drop(consumer);
}

/// Resumes paused partitions exactly after the last message handed out.
///
/// Pausing drops what librdkafka had prefetched; on resume it is meant to fetch again from
/// the application's position, but the benchmark showed partitions resuming past messages
/// that were never delivered (and a gap in offsets looks legitimate: compaction and
/// transaction markers make them). An explicit seek removes the doubt.
fn resume_at_next_offsets(
    consumer: &BaseConsumer<SourceContext>,
    topic: &str,
    assignment: &TopicPartitionList,
    next_offsets: &HashMap<i32, i64>,
) -> Result<(), KafkaError> {
    for element in assignment.elements_for_topic(topic) {
        if let Some(next) = next_offsets.get(&element.partition()) {
            consumer.seek(
                topic,
                element.partition(),
                Offset::Offset(*next),
                Duration::from_secs(10),
            )?;
        }
    }
    consumer.resume(assignment)
}

/// Commits offsets of partitions this member still owns: a commit for a partition that
/// moved to another member could move its offset under the new owner's feet.
fn commit_owned(
    consumer: &BaseConsumer<SourceContext>,
    topic: &str,
    offsets: &[(i32, i64)],
    sync: bool,
) -> Result<(), KafkaError> {
    let owned: HashSet<i32> = consumer
        .assignment()?
        .elements_for_topic(topic)
        .iter()
        .map(|element| element.partition())
        .collect();
    let offsets: Vec<(i32, i64)> = offsets
        .iter()
        .copied()
        .filter(|(partition, _)| owned.contains(partition))
        .collect();
    if offsets.is_empty() {
        return Ok(());
    }
    let mode = if sync {
        CommitMode::Sync
    } else {
        CommitMode::Async
    };
    consumer.commit(&offsets_list(topic, &offsets), mode)?;
    metrics::counter!(crate::metrics::COMMITS).increment(1);
    Ok(())
}

/// How long the start-up check waits for the broker's metadata.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// The librdkafka configuration shared by the consumer and the dead-letter producer:
/// bootstrap servers and the operator's pass-through properties.
pub(crate) fn client_config(config: &IngesterConfig) -> ClientConfig {
    let mut kafka = ClientConfig::new();
    kafka.set("bootstrap.servers", &config.brokers);
    for (key, value) in &config.kafka_properties {
        kafka.set(key, value);
    }
    kafka
}

/// The consumer's settings: the operator's, then those that delivery depends on.
pub(crate) fn consumer_config(config: &IngesterConfig) -> ClientConfig {
    let mut kafka = client_config(config);
    kafka
        .set("group.id", &config.group)
        // Offsets are committed by hand, only once ClickHouse has the rows: auto-commit
        // would commit what was merely consumed and lose it on a crash.
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // Never read a producer transaction that may still abort.
        .set("isolation.level", "read_committed")
        .set("statistics.interval.ms", "5000")
        // Bounds librdkafka's prefetch queue (default 64 MiB), part of the memory budget.
        .set("queued.max.messages.kbytes", "16384");
    if let Some(instance_id) = &config.instance_id {
        // Static membership (KIP-345): a member that comes back under the same id within
        // the session timeout gets its partitions back at once, with no rebalance.
        kafka.set("group.instance.id", instance_id);
    }
    kafka
}

/// Fails with [`IngestError::MissingTopic`] naming the first of `topics` the broker does
/// not have. The broker would otherwise just leave the subscription empty, and the ingester
/// would wait forever for messages that cannot come.
pub(crate) fn check_topics_exist(kafka: &ClientConfig, topics: &[&str]) -> Result<(), IngestError> {
    let client: BaseConsumer = kafka.create()?;
    for topic in topics {
        let metadata = client.fetch_metadata(Some(topic), METADATA_TIMEOUT)?;
        let missing = metadata.topics().iter().any(|entry| {
            entry.name() == *topic
                && (entry.partitions().is_empty()
                    || entry.error().is_some_and(|code| {
                        RDKafkaErrorCode::from(code) == RDKafkaErrorCode::UnknownTopicOrPartition
                    }))
        });
        if missing || metadata.topics().is_empty() {
            return Err(IngestError::MissingTopic {
                topic: (*topic).to_owned(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(partition: i32, offset: i64, payload: &[u8]) -> MessageRef<'_> {
        MessageRef {
            partition,
            offset,
            key: (offset % 2 == 0).then_some(b"key".as_slice()),
            payload: Some(payload),
            timestamp_millis: Some(offset),
            replay: None,
        }
    }

    #[test]
    fn chunks_give_back_what_was_pushed_in_order_and_drop_revoked_partitions() {
        let mut chunk = MessageChunk::default();
        chunk.push(message(0, 10, b"a"));
        chunk.push(message(1, 11, b"bc"));
        chunk.push(message(0, 12, b""));
        chunk.push(MessageRef {
            payload: None,
            ..message(2, 13, b"")
        });
        let seen: Vec<_> = chunk
            .iter()
            .map(|m| (m.partition, m.offset, m.key, m.payload, m.timestamp_millis))
            .collect();
        assert_eq!(
            seen,
            [
                (0, 10, Some(&b"key"[..]), Some(&b"a"[..]), Some(10)),
                (1, 11, None, Some(&b"bc"[..]), Some(11)),
                (0, 12, Some(&b"key"[..]), Some(&b""[..]), Some(12)),
                (2, 13, None, None, Some(13)),
            ]
        );
        chunk.drop_partitions(&[0, 2]);
        let offsets: Vec<i64> = chunk.iter().map(|m| m.offset).collect();
        assert_eq!(offsets, [11]);
        assert_eq!(chunk.iter().next().unwrap().payload, Some(&b"bc"[..]));
    }

    #[test]
    fn emptied_chunks_come_back_for_reuse() {
        let (context, _events, recycler) =
            context("t", 1024, Duration::from_secs(1), Arc::default());
        let mut chunk = MessageChunk::default();
        chunk.push(message(0, 1, &[7; 1000]));
        let capacity = chunk.data.capacity();
        recycler.recycle(chunk);
        context.push_message(message(0, 2, b"x"));
        let backlog = context.backlog();
        let Some(SourceEvent::Messages(reused)) = backlog.front() else {
            panic!("a chunk in the backlog");
        };
        assert_eq!(reused.data.capacity(), capacity);
        assert_eq!(reused.len(), 1);
    }

    #[test]
    fn messages_fill_the_last_chunk_then_start_a_new_one_after_other_events() {
        let (context, _events, _recycler) =
            context("t", 1024, Duration::from_secs(1), Arc::default());
        for offset in 0..(CHUNK_MESSAGES as i64 + 1) {
            context.push_message(message(0, offset, b"x"));
        }
        context.backlog().push_back(SourceEvent::Assigned(vec![0]));
        context.push_message(message(0, 1000, b"x"));
        let sizes: Vec<Option<usize>> = context
            .backlog()
            .iter()
            .map(|event| match event {
                SourceEvent::Messages(chunk) => Some(chunk.len()),
                _ => None,
            })
            .collect();
        assert_eq!(sizes, [Some(CHUNK_MESSAGES), Some(1), None, Some(1)]);
    }
}
