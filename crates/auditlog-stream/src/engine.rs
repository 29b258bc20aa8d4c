//! The engine: one task per sink, each a member of the sink's own consumer group.
//!
//! ```text
//!  topic ──recv──▶ Batcher (per partition: decode, filter, format) ──sealed──▶ deliver
//!    ▲                                                                           │ retry with
//!    │  paused while the destination fails; polled meanwhile (group membership)  │ backoff until
//!    └──────────────────── commit last + 1, only after Ok ◀──────────────────────┘ it confirms
//! ```
//!
//! A partition's batches are delivered one at a time, in order, while the next ones are
//! read and formatted; up to `in_flight::MAX_IN_FLIGHT` partitions' batches are on their
//! way at once (see `in_flight`). A failing destination blocks its own group and nothing
//! else: the other sinks are other tasks with other groups.

mod in_flight;
mod offsets;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio::sync::watch;

use crate::batcher::{Batcher, Outcome};
use crate::config::SinkConfig;
use crate::dead_letter::DeadLetters;
use crate::health::Health;
use crate::isolate::refused_for_good;
use crate::sink::{Batch, DeliveryError, Rejection, Sink};
use crate::{StreamError, metrics as names, retry};

/// What a run is given.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// The audit event topic.
    pub topic: String,
    /// librdkafka properties passed through (security, timeouts).
    pub kafka_properties: BTreeMap<String, String>,
    /// The sinks to run.
    pub sinks: Vec<SinkConfig>,
    /// Backoff between delivery attempts (the ingester's policy and defaults).
    pub retry: auditlog_ingester::RetryPolicy,
    /// Stop once every sink has committed up to the end offsets seen at start.
    pub until_caught_up: bool,
    /// The ingester's signed checkpoint topic: the S3 archive's manifests carry the
    /// checkpoints that cover them. `None`: manifests carry none.
    pub checkpoint_topic: Option<String>,
}

/// What one sink did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkReport {
    /// The sink's name.
    pub name: String,
    /// Events the destination confirmed.
    pub delivered: u64,
    /// Batches the destination confirmed.
    pub batches: u64,
    /// Events the filter left out.
    pub filtered: u64,
    /// Messages that were not valid events.
    pub malformed: u64,
    /// Failed attempts.
    pub failures: u64,
    /// Events the destination refused for good, written to the sink's dead-letter topic.
    pub dead_lettered: u64,
    /// Whether it reached the end offsets seen at start (`until_caught_up`).
    pub caught_up: bool,
}

/// What a run did, per sink.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamReport {
    /// One report per sink, in configuration order.
    pub sinks: Vec<SinkReport>,
}

/// Each partition's low and high watermark.
type Watermarks = BTreeMap<i32, (i64, i64)>;

const KAFKA_TIMEOUT: Duration = Duration::from_secs(10);
const TICK: Duration = Duration::from_millis(100);
const LAG_EVERY: Duration = Duration::from_secs(5);

/// Runs every sink until `shutdown` turns true, or, with `until_caught_up`, until each has
/// delivered what the topic held at start. A sink failing to start stops them all.
pub async fn run(
    config: StreamConfig,
    health: Health,
    mut shutdown: watch::Receiver<bool>,
) -> Result<StreamReport, StreamError> {
    let targets = if config.until_caught_up {
        let read = || {
            let client = client_config(&config, None);
            let topic = config.topic.clone();
            async move {
                tokio::task::spawn_blocking(move || watermarks_of_topic(&client, &topic))
                    .await
                    .map_err(|error| StreamError::SinkStopped {
                        sink: "*".into(),
                        message: error.to_string(),
                    })?
            }
        };
        Some(with_start_retries("reading the topic's end offsets", &config.retry, read).await?)
    } else {
        None
    };
    let (stop_tx, stop) = watch::channel(false);
    let mut tasks = Vec::new();
    for sink in &config.sinks {
        health.register(&sink.name);
        let open = || {
            let kafka = client_config(&config, None);
            let topic = sink.dead_letter_topic(&config.topic);
            async move { DeadLetters::open(&kafka, topic, &sink.name).await }
        };
        let what = format!("making sink {}'s dead-letter topic", sink.name);
        let dead_letters = if sink.destination.refuses_events() {
            Some(with_start_retries(&what, &config.retry, open).await?)
        } else {
            None
        };
        let runner = SinkRunner::start(
            &config,
            sink,
            health.clone(),
            stop.clone(),
            targets.clone(),
            dead_letters,
        )?;
        tasks.push((sink.name.clone(), tokio::spawn(runner.run())));
    }
    // External shutdown reaches the sinks through the internal stop, which a failing sink
    // also pulls.
    let forward = {
        let stop_tx = stop_tx.clone();
        tokio::spawn(async move {
            while !*shutdown.borrow_and_update() {
                if shutdown.changed().await.is_err() {
                    return;
                }
            }
            let _ = stop_tx.send(true);
        })
    };
    let mut report = StreamReport::default();
    let mut first_error = None;
    for (name, task) in tasks {
        match task.await {
            Ok(Ok(sink_report)) => report.sinks.push(sink_report),
            Ok(Err(error)) => {
                let _ = stop_tx.send(true);
                first_error.get_or_insert(error);
            }
            Err(error) => {
                let _ = stop_tx.send(true);
                first_error.get_or_insert(StreamError::SinkStopped {
                    sink: name,
                    message: error.to_string(),
                });
            }
        }
    }
    forward.abort();
    match first_error {
        Some(error) => Err(error),
        None => Ok(report),
    }
}

fn client_config(config: &StreamConfig, group: Option<&str>) -> ClientConfig {
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &config.brokers);
    for (key, value) in &config.kafka_properties {
        client.set(key, value);
    }
    if let Some(group) = group {
        client
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            // A new sink starts with what the topic still holds: a SIEM wants the history.
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false");
    }
    client
}

/// Reads from Kafka at start are tried this many times: a busy broker or a moving group
/// coordinator answers late, which is no reason to give up at once.
const START_ATTEMPTS: u32 = 10;

/// Runs a read from Kafka that a start needs, trying again after Kafka errors (with the
/// retry policy's backoff) up to [`START_ATTEMPTS`] times; other errors return at once.
async fn with_start_retries<T, F, Fut>(
    what: &str,
    policy: &auditlog_ingester::RetryPolicy,
    mut read: F,
) -> Result<T, StreamError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StreamError>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match read().await {
            Err(StreamError::Kafka(error)) if attempt < START_ATTEMPTS => {
                let delay = retry::delay(policy, attempt);
                tracing::warn!(
                    %error,
                    attempt,
                    retry_in_ms = delay.as_millis() as u64,
                    "{what} failed; trying again"
                );
                tokio::time::sleep(delay).await;
            }
            outcome => return outcome,
        }
    }
}

fn watermarks_of_topic(client: &ClientConfig, topic: &str) -> Result<Watermarks, StreamError> {
    let consumer: BaseConsumer = client.create()?;
    let metadata = consumer.fetch_metadata(Some(topic), KAFKA_TIMEOUT)?;
    let Some(topic_metadata) = metadata.topics().iter().find(|found| found.name() == topic) else {
        return Err(StreamError::NoSinks(format!(
            "topic {topic:?} does not exist"
        )));
    };
    if let Some(error) = topic_metadata.error() {
        return Err(StreamError::NoSinks(format!(
            "topic {topic:?}: {:?}",
            rdkafka::types::RDKafkaErrorCode::from(error)
        )));
    }
    let mut watermarks = Watermarks::new();
    for partition in topic_metadata.partitions() {
        let marks = consumer.fetch_watermarks(topic, partition.id(), KAFKA_TIMEOUT)?;
        watermarks.insert(partition.id(), marks);
    }
    Ok(watermarks)
}

/// A message held back while the partitions were paused.
#[derive(Debug)]
struct Held {
    partition: i32,
    offset: i64,
    payload: Option<Vec<u8>>,
}

/// The run was asked to stop.
struct Stopped;

struct SinkRunner {
    name: String,
    topic: String,
    consumer: Arc<StreamConsumer>,
    sink: Arc<dyn Sink>,
    /// Batches handed to the destination and not yet settled, oldest first.
    in_flight: VecDeque<in_flight::InFlight>,
    /// Sealed batches waiting for their partition's batch in flight, oldest first.
    waiting: VecDeque<Batch>,
    /// Batches confirmed so far (a batch settled in flight judges its failure by it).
    confirmations: u64,
    /// The `sink` metric label, made once.
    label: [(&'static str, String); 1],
    batcher: Batcher,
    health: Health,
    retry: auditlog_ingester::RetryPolicy,
    stop: watch::Receiver<bool>,
    /// Low and high watermarks at start, with `until_caught_up`.
    targets: Option<Watermarks>,
    /// The next offset to consume per partition, as committed (at start or by this run).
    committed: BTreeMap<i32, i64>,
    /// The offset after the last message taken per partition: where a resume continues.
    next_offsets: HashMap<i32, i64>,
    held: VecDeque<Held>,
    paused: Option<TopicPartitionList>,
    report: SinkReport,
    last_success: Instant,
    last_lag: Instant,
    /// Where events the destination refuses for good go.
    dead_letters: Option<DeadLetters>,
    /// Whether the destination took events at this sink's last delivery of any: what makes
    /// a lone event it refuses count as refused for good (see `isolate`).
    took_last: bool,
}

impl SinkRunner {
    fn start(
        config: &StreamConfig,
        sink: &SinkConfig,
        health: Health,
        stop: watch::Receiver<bool>,
        targets: Option<Watermarks>,
        dead_letters: Option<DeadLetters>,
    ) -> Result<Self, StreamError> {
        let group = sink.group();
        let consumer: StreamConsumer = client_config(config, Some(&group)).create()?;
        consumer.subscribe(&[&config.topic])?;
        tracing::info!(
            sink = %sink.name,
            kind = %sink.destination.kind(),
            format = %sink.format,
            filter = %sink.filter_text,
            group = %group,
            "sink starting"
        );
        Ok(Self {
            name: sink.name.clone(),
            topic: config.topic.clone(),
            consumer: Arc::new(consumer),
            sink: Arc::from(crate::sink::build(
                &sink.destination,
                &crate::sink::SinkContext {
                    kafka: client_config(config, None),
                    checkpoint_topic: config.checkpoint_topic.clone(),
                },
            )),
            in_flight: VecDeque::new(),
            waiting: VecDeque::new(),
            confirmations: 0,
            label: [("sink", sink.name.clone())],
            batcher: Batcher::new(&config.topic, sink.format, sink.filter.clone(), sink.batch),
            health,
            retry: config.retry,
            stop,
            targets,
            committed: BTreeMap::new(),
            next_offsets: HashMap::new(),
            held: VecDeque::new(),
            paused: None,
            report: SinkReport {
                name: sink.name.clone(),
                ..SinkReport::default()
            },
            last_success: Instant::now(),
            last_lag: Instant::now() - LAG_EVERY,
            dead_letters,
            took_last: false,
        })
    }

    async fn run(mut self) -> Result<SinkReport, StreamError> {
        if let Some(targets) = &self.targets {
            let what = format!("reading sink {}'s committed offsets", self.name);
            let committed =
                with_start_retries(&what, &self.retry, || self.committed_at_start(targets)).await?;
            self.committed = committed;
        }
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let outcome = self.consume(&mut tick).await;
        self.stop_in_flight().await;
        if let Some(assignment) = self.paused.take() {
            let _ = self.consumer.resume(&assignment);
        }
        match outcome {
            Ok(()) | Err(Stopped) => {}
        }
        // What was delivered stays delivered if this fails: the S3 archive's next run finds
        // the objects its manifests do not list yet.
        if let Err(error) = self.sink.finish().await {
            tracing::warn!(sink = %self.name, %error, "finishing the sink failed");
        }
        tracing::info!(
            sink = %self.name,
            delivered = self.report.delivered,
            filtered = self.report.filtered,
            malformed = self.report.malformed,
            dead_lettered = self.report.dead_lettered,
            caught_up = self.report.caught_up,
            "sink stopped"
        );
        Ok(self.report)
    }

    async fn consume(&mut self, tick: &mut tokio::time::Interval) -> Result<(), Stopped> {
        loop {
            if *self.stop.borrow() {
                return Err(Stopped);
            }
            if self.is_caught_up() {
                self.report.caught_up = true;
                tracing::info!(sink = %self.name, "caught up with the end offsets seen at start");
                return Ok(());
            }
            if let Some(held) = self.held.pop_front() {
                self.take(held.partition, held.offset, held.payload.as_deref())
                    .await?;
                continue;
            }
            let mut stop = self.stop.clone();
            tokio::select! {
                _ = stop.changed() => return Err(Stopped),
                result = in_flight::oldest(&mut self.in_flight) => {
                    self.settle_front(result).await?;
                }
                _ = tick.tick() => self.on_tick().await?,
                received = self.consumer.recv() => match received {
                    Ok(message) => {
                        let (partition, offset) = (message.partition(), message.offset());
                        let payload = message.payload().map(<[u8]>::to_vec);
                        drop(message);
                        self.take(partition, offset, payload.as_deref()).await?;
                    }
                    Err(error) => {
                        tracing::warn!(sink = %self.name, %error, "kafka consumer error");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                },
            }
        }
    }

    /// One message: into its partition's batch, and the batch out if that sealed it.
    async fn take(
        &mut self,
        partition: i32,
        offset: i64,
        payload: Option<&[u8]>,
    ) -> Result<(), Stopped> {
        if self
            .next_offsets
            .get(&partition)
            .is_some_and(|next| offset < *next)
        {
            // Fetched again after a resume or a rebalance: it is in a batch already.
            return Ok(());
        }
        self.next_offsets.insert(partition, offset + 1);
        let at_target = self
            .targets
            .as_ref()
            .and_then(|targets| targets.get(&partition))
            .is_some_and(|(_, high)| offset + 1 == *high);
        let (outcome, sealed) = self.batcher.push(partition, offset, payload, at_target);
        match outcome {
            Outcome::Kept => {}
            Outcome::Filtered => {
                self.report.filtered += 1;
                metrics::counter!(names::EVENTS_FILTERED, &self.label).increment(1);
            }
            Outcome::Malformed(reason) => {
                self.report.malformed += 1;
                tracing::warn!(
                    sink = %self.name,
                    partition,
                    offset,
                    %reason,
                    "skipping a message that is not a valid event (the ingester dead-letters it)"
                );
                metrics::counter!(
                    names::MESSAGES_MALFORMED,
                    "sink" => self.name.clone(),
                    "reason" => reason
                )
                .increment(1);
            }
        }
        if let Some(batch) = sealed {
            self.submit(batch).await?;
        }
        Ok(())
    }

    async fn on_tick(&mut self) -> Result<(), Stopped> {
        for batch in self.batcher.take_aged(Instant::now()) {
            self.submit(batch).await?;
        }
        if self.batcher.is_empty()
            && self.held.is_empty()
            && self.in_flight.is_empty()
            && self.waiting.is_empty()
        {
            self.last_success = Instant::now();
        }
        metrics::gauge!(names::SECONDS_SINCE_LAST_SUCCESS, &self.label)
            .set(self.last_success.elapsed().as_secs_f64());
        if self.last_lag.elapsed() >= LAG_EVERY {
            self.last_lag = Instant::now();
            self.publish_lag().await;
        }
        Ok(())
    }

    /// Delivers `batch` until the destination confirms it, then commits after it. `first`:
    /// the outcome of a first attempt already made, if any.
    async fn deliver(
        &mut self,
        batch: Arc<Batch>,
        mut first: Option<Result<(), DeliveryError>>,
    ) -> Result<(), Stopped> {
        let label = self.label.clone();
        let mut attempt: u32 = 0;
        let mut dead_lettered = 0;
        loop {
            attempt += 1;
            if attempt > 1 {
                metrics::counter!(names::DELIVERY_RETRIES, &label).increment(1);
            }
            let mut stop = self.stop.clone();
            let result = match first.take() {
                Some(result) => result,
                None => tokio::select! {
                    _ = stop.changed() => return Err(Stopped),
                    result = self.sink.deliver(&batch) => result,
                },
            };
            match result {
                Ok(()) => break,
                Err(error) => {
                    // Refused for good (named, or found by halving), the rest confirmed: once
                    // those are in the dead-letter topic, the batch's offsets may be committed.
                    let found = if self.dead_letters.is_some() {
                        let took_last = self.took_last;
                        tokio::select! {
                            _ = stop.changed() => return Err(Stopped),
                            found = refused_for_good(self.sink.as_ref(), &batch, &error, took_last) => found,
                        }
                    } else {
                        None
                    };
                    if let Some(refused) = found {
                        self.dead_letter(&batch, &refused).await?;
                        dead_lettered = refused.len();
                        break;
                    }
                    self.report.failures += 1;
                    metrics::counter!(
                        names::DELIVERY_FAILURES,
                        "sink" => self.name.clone(),
                        "class" => error.class.as_str()
                    )
                    .increment(1);
                    metrics::gauge!(names::SINK_FAILING, &label).set(1.0);
                    // The tick does not run while a batch is retried, and this is when
                    // these two gauges matter most.
                    metrics::gauge!(names::SECONDS_SINCE_LAST_SUCCESS, &label)
                        .set(self.last_success.elapsed().as_secs_f64());
                    if attempt == 1 || self.last_lag.elapsed() >= LAG_EVERY {
                        self.last_lag = Instant::now();
                        self.publish_lag().await;
                    }
                    // Readiness last: whoever sees the sink unready finds the gauges set.
                    self.health.failed(&self.name, &error.to_string());
                    let delay = retry::delay(&self.retry, attempt);
                    tracing::warn!(
                        sink = %self.name,
                        batch = %batch.range_key(),
                        events = batch.records.len(),
                        attempt,
                        retry_in_ms = delay.as_millis() as u64,
                        %error,
                        "delivery failed; the partition waits, nothing is skipped"
                    );
                    self.pause().await;
                    self.poll_while_waiting(delay).await?;
                }
            }
        }
        if attempt > 1 {
            tracing::info!(sink = %self.name, batch = %batch.range_key(), attempt, "delivered after retries");
        }
        self.confirmed(&batch, dead_lettered).await;
        Ok(())
    }

    /// The destination confirmed `batch` (but `dead_lettered` of its events, now in the
    /// dead-letter topic): counted, and committed after.
    async fn confirmed(&mut self, batch: &Batch, dead_lettered: usize) {
        let label = self.label.clone();
        self.confirmations += 1;
        self.resume().await;
        self.health.delivered(&self.name);
        metrics::gauge!(names::SINK_FAILING, &label).set(0.0);
        self.last_success = Instant::now();
        let delivered = (batch.records.len() - dead_lettered) as u64;
        if !batch.records.is_empty() {
            self.took_last = delivered > 0;
        }
        if delivered > 0 {
            self.report.batches += 1;
            self.report.delivered += delivered;
            metrics::counter!(names::BATCHES_DELIVERED, &label).increment(1);
            metrics::counter!(names::EVENTS_DELIVERED, &label).increment(delivered);
        }
        self.commit(batch.partition, batch.last_offset + 1).await;
    }

    /// Writes each refused record to the dead-letter topic, each tried until Kafka
    /// acknowledges it; the partition waits meanwhile, as for a failing destination.
    async fn dead_letter(&mut self, batch: &Batch, rejected: &[Rejection]) -> Result<(), Stopped> {
        // A handle on the same producer, so that retries below may borrow `self`.
        let Some(letters) = self.dead_letters.clone() else {
            return Ok(());
        };
        for rejection in rejected {
            let Some(record) = batch.records.iter().find(|r| r.offset == rejection.offset) else {
                continue;
            };
            let mut attempt: u32 = 0;
            loop {
                attempt += 1;
                let mut stop = self.stop.clone();
                let sent = tokio::select! {
                    _ = stop.changed() => return Err(Stopped),
                    sent = letters.send(batch, record, rejection) => sent,
                };
                let Err(error) = sent else { break };
                let message = format!("dead-letter topic {}: {error}", letters.topic());
                self.health.failed(&self.name, &message);
                let delay = retry::delay(&self.retry, attempt);
                tracing::warn!(sink = %self.name, event_id = %record.id, attempt, retry_in_ms = delay.as_millis() as u64, %message, "writing a dead letter failed; the partition waits");
                self.pause().await;
                self.poll_while_waiting(delay).await?;
            }
            self.report.dead_lettered += 1;
        }
        Ok(())
    }

    /// Keeps the consumer polled (so the member stays in its group) while a backoff runs;
    /// what still arrives is held for later, in order.
    async fn poll_while_waiting(&mut self, delay: Duration) -> Result<(), Stopped> {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        let mut stop = self.stop.clone();
        loop {
            tokio::select! {
                _ = stop.changed() => return Err(Stopped),
                () = &mut sleep => return Ok(()),
                received = self.consumer.recv() => {
                    if let Ok(message) = received {
                        self.held.push_back(Held {
                            partition: message.partition(),
                            offset: message.offset(),
                            payload: message.payload().map(<[u8]>::to_vec),
                        });
                    }
                    if self.held.len() % 1000 == 999 {
                        // Newly assigned partitions are not paused yet.
                        self.paused = None;
                        self.pause().await;
                    }
                }
            }
        }
    }

    async fn pause(&mut self) {
        if self.paused.is_some() {
            return;
        }
        match self.consumer.assignment() {
            Ok(assignment) => match self.consumer.pause(&assignment) {
                Ok(()) => self.paused = Some(assignment),
                Err(error) => tracing::warn!(sink = %self.name, %error, "pausing failed"),
            },
            Err(error) => {
                tracing::warn!(sink = %self.name, %error, "reading the assignment failed")
            }
        }
    }

    /// Resumes the partitions this member owns now, each at the offset after the last
    /// message taken (an explicit seek: librdkafka's own resume position has been seen to
    /// skip ahead). The assignment may have changed while paused: a partition that moved
    /// cannot be sought (it is logged), and whoever owns it starts from its last commit,
    /// which is never past what was delivered. Resuming happens whatever the seeks did, so
    /// a sink is never left paused.
    async fn resume(&mut self) {
        if self.paused.take().is_none() {
            return;
        }
        let consumer = Arc::clone(&self.consumer);
        let topic = self.topic.clone();
        let next_offsets = self.next_offsets.clone();
        let result = tokio::task::spawn_blocking(move || {
            let assignment = consumer.assignment()?;
            let mut failed_seeks = Vec::new();
            for element in assignment.elements_for_topic(&topic) {
                let partition = element.partition();
                if let Some(next) = next_offsets.get(&partition)
                    && let Err(error) =
                        consumer.seek(&topic, partition, Offset::Offset(*next), KAFKA_TIMEOUT)
                {
                    failed_seeks.push((partition, error));
                }
            }
            consumer.resume(&assignment).map(|()| failed_seeks)
        })
        .await;
        match result {
            Ok(Ok(failed_seeks)) => {
                for (partition, error) in failed_seeks {
                    tracing::warn!(sink = %self.name, partition, %error, "seek before resuming failed");
                }
            }
            Ok(Err(error)) => tracing::warn!(sink = %self.name, %error, "resuming failed"),
            Err(error) => tracing::warn!(sink = %self.name, %error, "resuming failed"),
        }
    }
}
