//! Raw Kafka records with confirmed delivery, for what a pipeline writes besides events:
//! the ingester's dead letters and signed checkpoints.
//!
//! ```text
//!  send(RawRecord) ── in flight 0 → 1: wake ──▶ librdkafka ──▶ broker (settings: the caller's)
//!        ▲                                          │
//!        └──── oneshot ◀── delivery report ◀── poller thread (asleep while nothing is in flight)
//! ```
//!
//! rdkafka's `FutureProducer` does the same over a polling thread that never sleeps (see
//! the poller module): an idle ingester spent most of its CPU there.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult as KafkaDeliveryResult, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _, ProducerContext};
use rdkafka::{ClientConfig, ClientContext, config::FromClientConfigAndContext};
use tokio::sync::oneshot;

use crate::poller::Poller;

/// Pause before enqueueing again when librdkafka's queue is momentarily full.
const QUEUE_FULL_BACKOFF: Duration = Duration::from_millis(5);

/// One record to send.
#[derive(Debug, Default)]
pub struct RawRecord<'a> {
    /// The topic it goes to.
    pub topic: &'a str,
    /// Its key, which picks the partition.
    pub key: Option<&'a [u8]>,
    /// Its value; `None` is a tombstone.
    pub payload: Option<&'a [u8]>,
    /// Its headers.
    pub headers: Option<OwnedHeaders>,
}

/// Where the broker stored a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordDelivery {
    /// The partition.
    pub partition: i32,
    /// The offset in it.
    pub offset: i64,
}

/// Sends [`RawRecord`]s and waits for each acknowledgement. Cheap to clone; clones share
/// one client. The client settings are the caller's (idempotence, acks, ...).
#[derive(Clone)]
pub struct RecordProducer {
    inner: Arc<Inner>,
}

struct Inner {
    /// Declared first, so it stops before the client goes (see `Producer`).
    poller: Poller,
    kafka: Arc<BaseProducer<ReplyContext>>,
    in_flight: Arc<AtomicUsize>,
}

impl std::fmt::Debug for RecordProducer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RecordProducer")
            .field("in_flight", &self.inner.in_flight.load(Ordering::Acquire))
            .finish_non_exhaustive()
    }
}

impl RecordProducer {
    /// Creates the client and its poller; does not contact the brokers.
    pub fn new(config: &ClientConfig) -> KafkaResult<Self> {
        let in_flight = Arc::new(AtomicUsize::new(0));
        let context = ReplyContext {
            in_flight: Arc::clone(&in_flight),
        };
        let kafka = Arc::new(BaseProducer::from_config_and_context(config, context)?);
        let poller = {
            let in_flight = Arc::clone(&in_flight);
            let kafka = Arc::clone(&kafka);
            Poller::spawn(
                move |timeout| kafka.poll(timeout),
                move || in_flight.load(Ordering::Acquire) > 0,
            )
            .map_err(|error| KafkaError::ClientCreation(format!("polling thread: {error}")))?
        };
        Ok(Self {
            inner: Arc::new(Inner {
                poller,
                kafka,
                in_flight,
            }),
        })
    }

    /// Sends `record` and waits for the broker's acknowledgement. Enqueueing waits at most
    /// `queue_timeout` for room; delivery itself is bounded by `message.timeout.ms`.
    pub async fn send(
        &self,
        record: RawRecord<'_>,
        queue_timeout: Duration,
    ) -> KafkaResult<RecordDelivery> {
        let (reply, delivered) = oneshot::channel();
        let mut base = BaseRecord::with_opaque_to(record.topic, Box::new(reply));
        if let Some(key) = record.key {
            base = base.key(key);
        }
        if let Some(payload) = record.payload {
            base = base.payload(payload);
        }
        if let Some(headers) = record.headers {
            base = base.headers(headers);
        }
        let deadline = Instant::now() + queue_timeout;
        loop {
            if self.inner.in_flight.fetch_add(1, Ordering::AcqRel) == 0 {
                self.inner.poller.wake();
            }
            match self.inner.kafka.send(base) {
                Ok(()) => break,
                Err((error, returned)) => {
                    self.inner.in_flight.fetch_sub(1, Ordering::AcqRel);
                    let full = error == KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull);
                    if !full || Instant::now() >= deadline {
                        return Err(error);
                    }
                    base = returned;
                    tokio::time::sleep(QUEUE_FULL_BACKOFF).await;
                }
            }
        }
        // librdkafka reports every enqueued message, purged ones too; a dropped sender means
        // the client went away without a report.
        delivered.await.unwrap_or(Err(KafkaError::Canceled))
    }

    /// The low and high watermark of `topic`'s `partition`; blocks up to `timeout`.
    pub fn fetch_watermarks(
        &self,
        topic: &str,
        partition: i32,
        timeout: Duration,
    ) -> KafkaResult<(i64, i64)> {
        self.inner
            .kafka
            .client()
            .fetch_watermarks(topic, partition, timeout)
    }
}

type Reply = oneshot::Sender<KafkaResult<RecordDelivery>>;

/// Delivery reports go back to their sender.
struct ReplyContext {
    in_flight: Arc<AtomicUsize>,
}

impl ClientContext for ReplyContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        crate::delivery::log_to_tracing(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        crate::delivery::error_to_tracing(error, reason);
    }
}

impl ProducerContext for ReplyContext {
    type DeliveryOpaque = Box<Reply>;

    fn delivery(&self, result: &KafkaDeliveryResult<'_>, reply: Box<Reply>) {
        let outcome = match result {
            Ok(message) => Ok(RecordDelivery {
                partition: message.partition(),
                offset: message.offset(),
            }),
            Err((error, _)) => Err(error.clone()),
        };
        // The sender may have stopped waiting; the outcome is then nobody's.
        let _ = reply.send(outcome);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}
