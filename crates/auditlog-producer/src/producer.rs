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
//! Invariants: a permit is held from enqueue to the event's final outcome, so at most
//! `queue_capacity` events (and their encoded copies, kept to send again) are in flight and
//! memory stays bounded; every enqueued event gets exactly one outcome (librdkafka reports
//! even purged and timed-out messages, and a failure caused by a fatal client error is
//! sent again on a new client instead of being reported, see the delivery module), which
//! reaches its waiter or the callback, or is logged when neither can take it.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use auditlog_event::{AuditEvent, EventCodec, Framing};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, Producer as _};
use tokio::sync::{TryAcquireError, oneshot};
use uuid::Uuid;

use crate::ProducerError;
use crate::config::{Compression, ProducerConfig};
use crate::delivery::{
    Clients, Delivered, DeliveryCallback, DeliveryResult, Pending, Shared, encode_key,
};
use crate::metrics::Rejection;
use crate::poller::Poller;

/// How long `send` waits for an acknowledgement beyond twice the delivery timeout (an
/// event may be sent again, once in time, after a fatal error): librdkafka scans for
/// timed-out messages about once a second, so its report can come a bit late.
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
    /// Events are encoded here, then copied once into the payload kept while in flight,
    /// so the encoder's growing buffer is reused across events.
    static ENCODE_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
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
        let shared = Arc::new(Shared::new(
            self.config.topic.clone(),
            self.config.delivery_timeout,
            self.config.queue_capacity,
            self.on_delivery,
        ));
        let clients = Clients::new(client_config, Arc::clone(&shared))
            .map_err(|source| ProducerError::Client { source })?;
        let poller = {
            let shared = Arc::clone(&shared);
            let clients = Arc::clone(&clients);
            Poller::spawn(
                move |timeout| clients.poll(timeout),
                move || shared.in_flight.load(Ordering::Acquire) > 0,
            )
            .map_err(|source| ProducerError::Thread { source })?
        };
        Ok(Producer {
            inner: Arc::new(Inner {
                poller,
                clients,
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
    /// Declared first, so it stops before the clients go: a client's own drop then
    /// purges what is queued and reports it on the dropping thread.
    poller: Poller,
    clients: Arc<Clients>,
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
                .clients
                .current()
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
    /// delivery timeout (within twice that when a fatal client error made the producer send
    /// it again on a new client). The delivery callback is not called for events sent this
    /// way.
    pub async fn send(&self, event: &AuditEvent) -> Result<Delivered, ProducerError> {
        let (reply_tx, reply_rx) = oneshot::channel();
        self.enqueue_waiting(event, Some(reply_tx)).await?;
        let wait = 2 * self.inner.config.delivery_timeout + CONFIRM_SLACK;
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
        let kafka_flush =
            tokio::task::spawn_blocking(move || inner.clients.current().flush(timeout));
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
        let payload: Arc<[u8]> = ENCODE_BUFFER
            .with_borrow_mut(|buffer| {
                buffer.clear();
                let encoded = self
                    .inner
                    .codec
                    .encode(event, buffer)
                    .map(|()| Arc::from(&buffer[..]));
                if buffer.capacity() > MAX_RETAINED_BUFFER_BYTES {
                    *buffer = Vec::new();
                }
                encoded
            })
            .map_err(|source| {
                shared.metrics.rejected(Rejection::Invalid);
                EnqueueFailure::Other(ProducerError::Invalid {
                    event_id: event.id,
                    source,
                })
            })?;
        let mut key_buffer = Uuid::encode_buffer();
        let key = encode_key(event.resource_id, &mut key_buffer);
        let mut pending = Box::new(Pending {
            event_id: event.id,
            resource_id: event.resource_id,
            payload: Arc::clone(&payload),
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
        let mut client = self.inner.clients.current();
        let mut fatal_retry = true;
        let error = loop {
            let record = BaseRecord::with_opaque_to(&self.inner.config.topic, pending)
                .key(key)
                .payload(&*payload);
            match client.send(record) {
                Ok(()) => return Ok(()),
                Err((error, record)) => {
                    pending = record.delivery_opaque;
                    // A client that died since it was picked refuses everything: the
                    // event goes to its replacement.
                    let fatal = error.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal);
                    if !(fatal && fatal_retry) {
                        break error;
                    }
                    fatal_retry = false;
                    match self.inner.clients.recover(client.context().generation()) {
                        Ok(fresh) => client = fresh,
                        Err(_) => break error,
                    }
                }
            }
        };
        shared.in_flight.fetch_sub(1, Ordering::AcqRel);
        shared.metrics.queued.decrement(1.0);
        if error == KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull) {
            Err(EnqueueFailure::QueueFull(pending.reply))
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
}
