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

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};

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
    pub(crate) payload: Vec<u8>,
    pub(crate) timestamp_millis: Option<i64>,
}

/// What the source tells the coordinator, in consumption order.
#[derive(Debug)]
pub(crate) enum SourceEvent {
    Message(RawMessage),
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

    fn revoke(&self, consumer: &BaseConsumer<Self>, revoked: &TopicPartitionList) {
        let partitions: Vec<i32> = revoked
            .elements_for_topic(&self.topic)
            .iter()
            .map(|element| element.partition())
            .collect();
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

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(assigned) => {
                let partitions: Vec<i32> = assigned
                    .elements_for_topic(&self.topic)
                    .iter()
                    .map(|element| element.partition())
                    .collect();
                tracing::info!(?partitions, "partitions assigned");
                {
                    let mut next_offsets = self.next_offsets();
                    for partition in &partitions {
                        next_offsets.remove(partition);
                    }
                }
                self.backlog().push_back(SourceEvent::Assigned(partitions));
                self.drain_backlog();
            }
            Rebalance::Revoke(_) => {}
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
            revoke_timeout,
        },
        events_rx,
    )
}

/// The poll loop. Runs on its own thread until `stop` is set, then closes the consumer.
pub(crate) fn poll_loop(
    consumer: BaseConsumer<SourceContext>,
    commands_rx: Receiver<SourceCommand>,
    stop: Arc<AtomicBool>,
) {
    let context = Arc::clone(consumer.context());
    let topic = context.topic.clone();
    let mut paused = false;
    let mut open = true;
    let mut blocked_since: Option<Instant> = None;
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
                Ok(()) => paused = !paused,
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

        match consumer.poll(Duration::from_millis(if blocked { 20 } else { 100 })) {
            Some(Ok(message)) => {
                metrics::counter!(crate::metrics::CONSUMED).increment(1);
                context
                    .next_offsets()
                    .insert(message.partition(), message.offset() + 1);
                let raw = RawMessage {
                    partition: message.partition(),
                    offset: message.offset(),
                    key: message.key().map(<[u8]>::to_vec),
                    payload: message.payload().unwrap_or_default().to_vec(),
                    timestamp_millis: message.timestamp().to_millis(),
                };
                context.backlog().push_back(SourceEvent::Message(raw));
            }
            Some(Err(error)) => tracing::warn!(%error, "kafka consumer error"),
            None => {}
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
