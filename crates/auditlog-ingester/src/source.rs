//! The Kafka side: a consumer polled on its own thread, feeding a bounded channel.
//!
//! ```text
//!   librdkafka ──poll──▶ backlog ──try_send──▶ events channel (bounded) ──▶ coordinator
//!        ▲                  │ full: pause every assigned partition, keep polling
//!        └── commits ◀──────┴── commands channel ◀── coordinator
//! ```
//!
//! A full channel first just waits (librdkafka's prefetch queue is bounded by
//! `queued.max.messages.kbytes`). If the pipeline stays stalled (ClickHouse down), the
//! partitions are paused and polling goes on, so the member stays in its group and memory
//! stays bounded; on resume each partition is sought to the offset after the last message
//! handed out, so nothing is skipped.
//!
//! Revocation is a handshake inside librdkafka's rebalance callback: the coordinator flushes
//! the revoked partitions' batches, answers with the offsets that are now safe, and the
//! callback commits them synchronously before the partitions leave.
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
use crate::{IngestError, IngesterConfig};

/// How long the pipeline may refuse messages before the partitions are paused. Shorter
/// stalls are waited out without polling; a pause is for outages (ClickHouse down), since
/// it discards librdkafka's prefetched messages, which must then be fetched again.
const PAUSE_AFTER: Duration = Duration::from_secs(1);

/// A consumed message, copied out of librdkafka's buffer.
#[derive(Debug)]
pub(crate) struct RawMessage {
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) key: Option<Vec<u8>>,
    /// `None` for a null value (a tombstone).
    pub(crate) payload: Option<Vec<u8>>,
    pub(crate) timestamp_millis: Option<i64>,
    pub(crate) replay: Option<ReplayOrigin>,
}

/// What the source tells the coordinator, in consumption order.
#[derive(Debug)]
pub(crate) enum SourceEvent {
    Message(RawMessage),
    /// The partitions this member owns now, after a rebalance (all of them, not the change).
    Assigned(Vec<i32>),
    /// Flush these partitions and answer with the offsets to commit before they leave.
    Revoked {
        partitions: Vec<i32>,
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
        let (reply_tx, reply_rx) = sync_channel(1);
        {
            let mut backlog = self.backlog();
            // Their new owner consumes these again from the committed offset.
            backlog.retain(|event| match event {
                SourceEvent::Message(message) => !partitions.contains(&message.partition),
                _ => true,
            });
            backlog.push_back(SourceEvent::Revoked {
                partitions: partitions.clone(),
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
            Err(_) => tracing::warn!(
                ?partitions,
                "revoked partitions were not flushed in time; the next owner resumes from the last commit"
            ),
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
                if self.paused.load(Ordering::Acquire)
                    && let Err(error) = consumer.pause(assigned)
                {
                    tracing::warn!(%error, "pausing newly assigned partitions failed");
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

/// Builds the context and its channel.
pub(crate) fn context(
    topic: &str,
    capacity: usize,
    revoke_timeout: Duration,
) -> (SourceContext, mpsc::Receiver<SourceEvent>) {
    let (events_tx, events_rx) = mpsc::channel(capacity);
    (
        SourceContext {
            topic: topic.to_owned(),
            events_tx,
            backlog: Mutex::new(VecDeque::new()),
            next_offsets: Mutex::new(HashMap::new()),
            paused: AtomicBool::new(false),
            revoke_timeout,
        },
        events_rx,
    )
}

/// A poll while messages flow; one returns as soon as a message is there, so this bounds
/// only how soon commit commands and `stop` are seen.
const BUSY_POLL: Duration = Duration::from_millis(100);

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
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }

        let timeout = if blocked {
            Duration::from_millis(20)
        } else if quiet_since.is_some_and(|since| since.elapsed() >= IDLE_AFTER) {
            IDLE_POLL
        } else {
            BUSY_POLL
        };
        match consumer.poll(timeout) {
            Some(Ok(message)) => {
                quiet_since = None;
                consumed.increment(1);
                context
                    .next_offsets()
                    .insert(message.partition(), message.offset() + 1);
                let raw = RawMessage {
                    partition: message.partition(),
                    offset: message.offset(),
                    key: message.key().map(<[u8]>::to_vec),
                    payload: message.payload().map(<[u8]>::to_vec),
                    timestamp_millis: message.timestamp().to_millis(),
                    replay: ReplayOrigin::from_headers(message.headers()),
                };
                context.backlog().push_back(SourceEvent::Message(raw));
            }
            Some(Err(error)) => tracing::warn!(%error, "kafka consumer error"),
            None => {
                quiet_since.get_or_insert_with(Instant::now);
            }
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
