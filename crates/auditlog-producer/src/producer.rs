//! The producer: validate, encode, enqueue, and report every delivery.
//!
//! ```text
//! caller ── send / record / try_record(&event)
//!   │  validate strictly ─────────────────────────────▶ Err(Invalid { event_id })
//!   │  take a queue permit ── none left: try_record ──▶ Err(QueueFull { event_id })
//!   │                                    send, record ─▶ wait (≤ delivery timeout)
//!   │  encode (EventCodec), key = resource id
//!   ▼
//! librdkafka queue ── batches ──▶ broker (idempotent, acks=all)
//!   │
//! poller thread (awake while events are in flight): delivery report ── permit back, metrics
//!   └──▶ send's future, or the delivery callback (record, try_record)
//! ```
//!
//! Invariants: a permit is held from enqueue to delivery report, so at most
//! `queue_capacity` events are in flight and memory stays bounded; every enqueued event
//! gets exactly one report (librdkafka reports even purged and timed-out messages), which
//! reaches its waiter or the callback, or is logged when neither can take it.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use auditlog_event::{AuditEvent, EventCodec, Framing};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult as KafkaDeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _, ProducerContext};
use rdkafka::{ClientContext, config::FromClientConfigAndContext};
use tokio::sync::{Semaphore, TryAcquireError, oneshot};
use uuid::Uuid;

use crate::ProducerError;
use crate::config::{Compression, ProducerConfig};
use crate::metrics::{ProducerMetrics, Rejection};
use crate::poller::Poller;

/// How long `send` waits for an acknowledgement beyond the delivery timeout: librdkafka
/// scans for timed-out messages about once a second, so its report can come a bit late.
const CONFIRM_SLACK: Duration = Duration::from_secs(5);

/// Pause before enqueueing again when librdkafka's own queue (a backstop behind the
/// permits) is momentarily full.
const QUEUE_FULL_BACKOFF: Duration = Duration::from_millis(1);

/// How often `flush` looks at the number of events in flight.
const FLUSH_POLL_INTERVAL: Duration = Duration::from_millis(2);

/// Encode buffers larger than this are not kept for the next event, so one huge event
/// does not pin its memory in every thread that produced it.
const MAX_RETAINED_BUFFER_BYTES: usize = 64 * 1024;

thread_local! {
    /// librdkafka copies the payload, so one buffer per thread serves every event.
    static ENCODE_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The outcome of one event: delivered where, or why not.
pub type DeliveryResult = Result<Delivered, ProducerError>;

/// What the delivery callback is called with, on the producer's polling thread.
pub type DeliveryCallback = Arc<dyn Fn(DeliveryResult) + Send + Sync>;

/// An event Kafka acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// The event's id.
    pub event_id: Uuid,
    /// The partition it landed in.
    pub partition: i32,
    /// Its offset in that partition.
    pub offset: i64,
    /// Time from enqueue to acknowledgement.
    pub latency: Duration,
}

/// Builds a [`Producer`]; every setting has a default except the brokers and the topic.
#[derive(Clone)]
pub struct ProducerBuilder {
    config: ProducerConfig,
    on_delivery: Option<DeliveryCallback>,
}

impl fmt::Debug for ProducerBuilder {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ProducerBuilder")
            .field("config", &self.config)
            .field("on_delivery", &self.on_delivery.is_some())
            .finish()
    }
}

impl ProducerBuilder {
    /// A builder starting from `config`.
    pub fn from_config(config: ProducerConfig) -> Self {
        ProducerBuilder {
            config,
            on_delivery: None,
        }
    }

    /// Passes a librdkafka property through (`security.protocol`, `sasl.username`, ...).
    ///
    /// Properties the SDK fixes (`acks`, `enable.idempotence`, ...) make [`Self::build`]
    /// fail; see [`crate::config`].
    pub fn with_property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.properties.insert(key.into(), value.into());
        self
    }

    /// Passes several librdkafka properties through, as [`Self::with_property`].
    pub fn with_properties<K, V>(mut self, properties: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        for (key, value) in properties {
            self.config.properties.insert(key.into(), value.into());
        }
        self
    }

    /// Sets the compression of Kafka batches [default: lz4].
    pub fn with_compression(mut self, compression: Compression) -> Self {
        self.config.compression = compression;
        self
    }

    /// Sets how long to wait to fill a batch [default: 5 ms].
    pub fn with_linger(mut self, linger: Duration) -> Self {
        self.config.linger = linger;
        self
    }

    /// Sets the largest batch in bytes [default: 1 MiB].
    pub fn with_batch_bytes(mut self, batch_bytes: usize) -> Self {
        self.config.batch_bytes = batch_bytes;
        self
    }

    /// Sets how many events may be in flight before `send` waits [default: 100,000].
    pub fn with_queue_capacity(mut self, queue_capacity: usize) -> Self {
        self.config.queue_capacity = queue_capacity;
        self
    }

    /// Sets how long an event may take to be acknowledged before it fails [default: 30 s].
    pub fn with_delivery_timeout(mut self, delivery_timeout: Duration) -> Self {
        self.config.delivery_timeout = delivery_timeout;
        self
    }

    /// Sets the framing of messages [default: single-object].
    pub fn with_framing(mut self, framing: Framing) -> Self {
        self.config.framing = framing;
        self
    }

    /// Sets the callback that receives the outcome of every event given to
    /// [`Producer::record`] or [`Producer::try_record`].
    ///
    /// It runs on the producer's polling thread: keep it short (count, log, or forward to
    /// a channel). Without one, failed deliveries are logged at error level.
    pub fn with_delivery_callback(
        mut self,
        on_delivery: impl Fn(DeliveryResult) + Send + Sync + 'static,
    ) -> Self {
        self.on_delivery = Some(Arc::new(on_delivery));
        self
    }

    /// The settings so far.
    pub fn config(&self) -> &ProducerConfig {
        &self.config
    }

    /// Checks the settings and creates the producer (and its polling thread).
    ///
    /// Does not contact the brokers: an unreachable cluster shows up as delivery failures,
    /// and a missing topic as [`ProducerError::MissingTopic`] within seconds. A service that
    /// wants to know at start-up calls [`Producer::check_topic`].
    pub fn build(self) -> Result<Producer, ProducerError> {
        let client_config = self.config.client_config()?;
        let shared = Arc::new(Shared {
            topic: self.config.topic.clone(),
            permits: Semaphore::new(self.config.queue_capacity),
            in_flight: AtomicUsize::new(0),
            metrics: ProducerMetrics::new(&self.config.topic),
            on_delivery: self.on_delivery,
        });
        let context = DeliveryContext {
            shared: Arc::clone(&shared),
        };
        let kafka = Arc::new(
            BaseProducer::from_config_and_context(&client_config, context)
                .map_err(|source| ProducerError::Client { source })?,
        );
        let poller = {
            let shared = Arc::clone(&shared);
            Poller::spawn(Arc::clone(&kafka), move || {
                shared.in_flight.load(Ordering::Acquire) > 0
            })
            .map_err(|source| ProducerError::Thread { source })?
        };
        Ok(Producer {
            inner: Arc::new(Inner {
                poller,
                kafka,
                shared,
                codec: EventCodec::new(self.config.framing),
                config: self.config,
            }),
        })
    }
}

/// Publishes audit events to one Kafka topic. Cheap to clone; clones share one client.
///
/// The async methods need a tokio runtime with timers. Call [`Producer::shutdown`] before
/// exiting: dropping the last clone purges what is still queued, and those events are
/// reported as failed.
#[derive(Clone)]
pub struct Producer {
    inner: Arc<Inner>,
}

struct Inner {
    /// Declared first, so it stops before the client goes: the client's own drop then
    /// purges what is queued and reports it on the dropping thread.
    poller: Poller,
    kafka: Arc<BaseProducer<DeliveryContext>>,
    shared: Arc<Shared>,
    codec: EventCodec,
    config: ProducerConfig,
}

impl fmt::Debug for Producer {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Producer")
            .field("config", &self.inner.config)
            .field("in_flight", &self.in_flight())
            .finish_non_exhaustive()
    }
}

/// Why one enqueue attempt did not take.
enum EnqueueFailure {
    /// librdkafka's queue is full; the reply channel comes back for another attempt.
    QueueFull(Option<oneshot::Sender<DeliveryResult>>),
    Other(ProducerError),
}

impl Producer {
    /// A builder with the defaults, for `brokers` (`host:port,...`) and `topic`.
    pub fn builder(brokers: impl Into<String>, topic: impl Into<String>) -> ProducerBuilder {
        ProducerBuilder::from_config(ProducerConfig::new(brokers, topic))
    }

    /// Asks the cluster for the topic and returns its partition count, or
    /// [`ProducerError::MissingTopic`]; waits at most `timeout` for an answer.
    pub async fn check_topic(&self, timeout: Duration) -> Result<usize, ProducerError> {
        let inner = Arc::clone(&self.inner);
        let metadata = tokio::task::spawn_blocking(move || {
            inner
                .kafka
                .client()
                .fetch_metadata(Some(&inner.config.topic), timeout)
        })
        .await
        .map_err(|_| ProducerError::Client {
            source: KafkaError::Canceled,
        })?
        .map_err(|source| ProducerError::Client { source })?;
        let topic = &self.inner.config.topic;
        let missing = || ProducerError::MissingTopic {
            topic: topic.clone(),
            event_id: None,
        };
        let entry = metadata
            .topics()
            .iter()
            .find(|entry| entry.name() == topic)
            .ok_or_else(missing)?;
        if entry.error().is_some() || entry.partitions().is_empty() {
            return Err(missing());
        }
        Ok(entry.partitions().len())
    }

    /// Publishes `event` and returns once Kafka has acknowledged it.
    ///
    /// Waits for room when the queue is full (backpressure), at most the delivery timeout;
    /// then waits for the acknowledgement, which librdkafka gives or fails within the
    /// delivery timeout. The delivery callback is not called for events sent this way.
    pub async fn send(&self, event: &AuditEvent) -> Result<Delivered, ProducerError> {
        let (reply_tx, reply_rx) = oneshot::channel();
        self.enqueue_waiting(event, Some(reply_tx)).await?;
        let wait = self.inner.config.delivery_timeout + CONFIRM_SLACK;
        match tokio::time::timeout(wait, reply_rx).await {
            Ok(Ok(result)) => result,
            // The report was dropped unsent: only when librdkafka was torn down under us.
            Ok(Err(_)) => Err(ProducerError::Delivery {
                event_id: event.id,
                source: KafkaError::Canceled,
            }),
            Err(_) => Err(ProducerError::Timeout {
                event_id: event.id,
                stage: "confirmed",
                timeout: wait,
            }),
        }
    }

    /// Enqueues `event` and returns; its outcome goes to the delivery callback.
    ///
    /// Waits for room when the queue is full (backpressure), at most the delivery timeout.
    pub async fn record(&self, event: &AuditEvent) -> Result<(), ProducerError> {
        self.enqueue_waiting(event, None).await
    }

    /// Enqueues `event` if there is room right now, without waiting; its outcome goes to
    /// the delivery callback. A full queue gives [`ProducerError::QueueFull`], and the
    /// event is still the caller's to retry or to spill.
    pub fn try_record(&self, event: &AuditEvent) -> Result<(), ProducerError> {
        self.validate(event)?;
        match self.inner.shared.permits.try_acquire() {
            Ok(permit) => permit.forget(),
            Err(TryAcquireError::NoPermits) => return Err(self.queue_full(event.id)),
            Err(TryAcquireError::Closed) => return Err(self.closed(event.id)),
        }
        match self.enqueue(event, None) {
            Ok(()) => Ok(()),
            Err(failure) => {
                self.inner.shared.permits.add_permits(1);
                match failure {
                    EnqueueFailure::QueueFull(_) => Err(self.queue_full(event.id)),
                    EnqueueFailure::Other(error) => Err(error),
                }
            }
        }
    }

    /// Sends what is queued now and waits until every event in flight is acknowledged or
    /// failed, at most `timeout`; [`ProducerError::FlushTimeout`] says how many remain.
    pub async fn flush(&self, timeout: Duration) -> Result<(), ProducerError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let inner = Arc::clone(&self.inner);
        // librdkafka's flush sends lingering batches at once, but it blocks its thread.
        let kafka_flush = tokio::task::spawn_blocking(move || inner.kafka.flush(timeout));
        // Its verdict is not needed: the count of reports still due below is the truth.
        let _ = kafka_flush.await;
        loop {
            let undelivered = self.in_flight();
            if undelivered == 0 {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ProducerError::FlushTimeout {
                    undelivered,
                    timeout,
                });
            }
            tokio::time::sleep(FLUSH_POLL_INTERVAL).await;
        }
    }

    /// Refuses new events (they fail with [`ProducerError::Closed`], as do calls waiting
    /// for room), then flushes what is in flight, at most `timeout`.
    pub async fn shutdown(&self, timeout: Duration) -> Result<(), ProducerError> {
        self.inner.shared.permits.close();
        self.flush(timeout).await
    }

    /// Events enqueued and not yet acknowledged or failed.
    pub fn in_flight(&self) -> usize {
        self.inner.shared.in_flight.load(Ordering::Acquire)
    }

    /// The settings the producer runs with.
    pub fn config(&self) -> &ProducerConfig {
        &self.inner.config
    }

    fn validate(&self, event: &AuditEvent) -> Result<(), ProducerError> {
        event.validate().map_err(|source| {
            self.inner.shared.metrics.rejected(Rejection::Invalid);
            ProducerError::Invalid {
                event_id: event.id,
                source,
            }
        })
    }

    fn queue_full(&self, event_id: Uuid) -> ProducerError {
        self.inner.shared.metrics.rejected(Rejection::QueueFull);
        ProducerError::QueueFull {
            event_id,
            capacity: self.inner.config.queue_capacity,
        }
    }

    fn closed(&self, event_id: Uuid) -> ProducerError {
        self.inner.shared.metrics.rejected(Rejection::Closed);
        ProducerError::Closed { event_id }
    }

    fn enqueue_timeout(&self, event_id: Uuid) -> ProducerError {
        self.inner.shared.metrics.rejected(Rejection::QueueFull);
        ProducerError::Timeout {
            event_id,
            stage: "enqueued",
            timeout: self.inner.config.delivery_timeout,
        }
    }

    async fn enqueue_waiting(
        &self,
        event: &AuditEvent,
        reply: Option<oneshot::Sender<DeliveryResult>>,
    ) -> Result<(), ProducerError> {
        self.validate(event)?;
        let deadline = tokio::time::Instant::now() + self.inner.config.delivery_timeout;
        let permits = &self.inner.shared.permits;
        match permits.try_acquire() {
            Ok(permit) => permit.forget(),
            Err(TryAcquireError::Closed) => return Err(self.closed(event.id)),
            Err(TryAcquireError::NoPermits) => {
                match tokio::time::timeout_at(deadline, permits.acquire()).await {
                    Ok(Ok(permit)) => permit.forget(),
                    Ok(Err(_)) => return Err(self.closed(event.id)),
                    Err(_) => return Err(self.enqueue_timeout(event.id)),
                }
            }
        }
        let mut reply = reply;
        loop {
            match self.enqueue(event, reply) {
                Ok(()) => return Ok(()),
                Err(EnqueueFailure::QueueFull(returned_reply)) => {
                    if tokio::time::Instant::now() >= deadline {
                        permits.add_permits(1);
                        return Err(self.enqueue_timeout(event.id));
                    }
                    reply = returned_reply;
                    tokio::time::sleep(QUEUE_FULL_BACKOFF).await;
                }
                Err(EnqueueFailure::Other(error)) => {
                    permits.add_permits(1);
                    return Err(error);
                }
            }
        }
    }

    /// Encodes and hands one event to librdkafka; the caller holds a permit for it.
    fn enqueue(
        &self,
        event: &AuditEvent,
        reply: Option<oneshot::Sender<DeliveryResult>>,
    ) -> Result<(), EnqueueFailure> {
        let shared = &self.inner.shared;
        let mut key_buffer = Uuid::encode_buffer();
        let key: &str = event.resource_id.hyphenated().encode_lower(&mut key_buffer);
        ENCODE_BUFFER.with_borrow_mut(|payload| {
            payload.clear();
            if let Err(source) = self.inner.codec.encode(event, payload) {
                shared.metrics.rejected(Rejection::Invalid);
                return Err(EnqueueFailure::Other(ProducerError::Invalid {
                    event_id: event.id,
                    source,
                }));
            }
            let pending = Box::new(Pending {
                event_id: event.id,
                enqueued_at: Instant::now(),
                reply,
            });
            // Counted before the hand-over: the report may arrive on the polling thread
            // before `send` even returns here.
            if shared.in_flight.fetch_add(1, Ordering::AcqRel) == 0 {
                // The poller sleeps while nothing is in flight.
                self.inner.poller.wake();
            }
            shared.metrics.queued.increment(1.0);
            let record = BaseRecord::with_opaque_to(&self.inner.config.topic, pending)
                .key(key)
                .payload(payload.as_slice());
            let outcome = match self.inner.kafka.send(record) {
                Ok(()) => Ok(()),
                Err((error, record)) => {
                    shared.in_flight.fetch_sub(1, Ordering::AcqRel);
                    shared.metrics.queued.decrement(1.0);
                    if error == KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull) {
                        Err(EnqueueFailure::QueueFull(record.delivery_opaque.reply))
                    } else {
                        shared.metrics.rejected(Rejection::Enqueue);
                        Err(EnqueueFailure::Other(ProducerError::from_kafka(
                            event.id,
                            &self.inner.config.topic,
                            error,
                            true,
                        )))
                    }
                }
            };
            if payload.capacity() > MAX_RETAINED_BUFFER_BYTES {
                *payload = Vec::new();
            }
            outcome
        })
    }
}

/// What travels with a message through librdkafka and comes back in its report.
struct Pending {
    event_id: Uuid,
    enqueued_at: Instant,
    /// `send`'s waiter; `None` for `record` and `try_record`, whose outcome goes to the
    /// delivery callback.
    reply: Option<oneshot::Sender<DeliveryResult>>,
}

/// State shared by the callers and the polling thread.
struct Shared {
    topic: String,
    /// One permit per event that may be in flight; returned by the delivery report.
    permits: Semaphore,
    in_flight: AtomicUsize,
    metrics: ProducerMetrics,
    on_delivery: Option<DeliveryCallback>,
}

impl Shared {
    fn report(&self, result: &KafkaDeliveryResult<'_>, pending: Pending) {
        let Pending {
            event_id,
            enqueued_at,
            reply,
        } = pending;
        let latency = enqueued_at.elapsed();
        let outcome = match result {
            Ok(message) => {
                self.metrics.sent.increment(1);
                self.metrics.latency.record(latency);
                Ok(Delivered {
                    event_id,
                    partition: message.partition(),
                    offset: message.offset(),
                    latency,
                })
            }
            Err((error, _message)) => {
                self.metrics.failed.increment(1);
                Err(ProducerError::from_kafka(
                    event_id,
                    &self.topic,
                    error.clone(),
                    false,
                ))
            }
        };
        match (reply, &self.on_delivery) {
            (Some(reply), _) => {
                // The caller stopped waiting (its future was dropped): say what it missed.
                if let Err(Err(error)) = reply.send(outcome) {
                    tracing::error!(%event_id, %error, "audit event not delivered");
                }
            }
            (None, Some(on_delivery)) => {
                // A panicking callback must not take the polling thread (and with it every
                // later report) down.
                let call = std::panic::catch_unwind(AssertUnwindSafe(|| on_delivery(outcome)));
                if call.is_err() {
                    tracing::error!(%event_id, "the audit delivery callback panicked");
                }
            }
            (None, None) => {
                if let Err(error) = outcome {
                    tracing::error!(%event_id, %error, "audit event not delivered");
                }
            }
        }
        // Last, so that a flush that sees zero in flight also sees every callback done;
        // the count drops before the permit returns, so it never exceeds the capacity.
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.metrics.queued.decrement(1.0);
        self.permits.add_permits(1);
    }
}

/// librdkafka's hooks: delivery reports and client logs.
struct DeliveryContext {
    shared: Arc<Shared>,
}

impl ClientContext for DeliveryContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log_to_tracing(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        error_to_tracing(error, reason);
    }
}

/// librdkafka's log lines, through `tracing` like the rest of the process's.
pub(crate) fn log_to_tracing(level: RDKafkaLogLevel, facility: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => tracing::error!(facility, "librdkafka: {message}"),
        RDKafkaLogLevel::Warning => tracing::warn!(facility, "librdkafka: {message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(facility, "librdkafka: {message}")
        }
        RDKafkaLogLevel::Debug => tracing::debug!(facility, "librdkafka: {message}"),
    }
}

/// Transient broker trouble (all brokers down, a reconnect) is reported here; the records
/// themselves fail through their delivery reports.
pub(crate) fn error_to_tracing(error: KafkaError, reason: &str) {
    tracing::warn!(%error, reason, "kafka client error");
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Box<Pending>;

    fn delivery(&self, result: &KafkaDeliveryResult<'_>, pending: Box<Pending>) {
        self.shared.report(result, *pending);
    }
}
