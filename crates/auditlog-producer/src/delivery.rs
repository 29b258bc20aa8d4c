//! What travels with each event through librdkafka, how its report comes back, and the
//! client generations that let the producer outlive a fatal error.
//!
//! ```text
//!  enqueue ── Pending { id, reply, key, payload } ──▶ client g ──▶ report ──▶ reply / callback
//!                                                        │ fatal error (idempotence state lost)
//!                                                        ▼
//!        recover: client g+1 becomes current; g is retired, polled until its last report
//!        a failed report from g, delivery timeout not passed ──▶ sent again on g+1
//! ```
//!
//! An idempotent librdkafka client that raises a fatal error is dead: it fails what it
//! holds and refuses every new message. The producer replaces it with a new client and
//! sends again every event that the dead one failed, so the caller sees one outcome per
//! event, the final one. A repeat is safe: it carries the same id and time, and copies
//! collapse downstream. An event whose delivery timeout has passed is not sent again.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use rdkafka::config::{FromClientConfigAndContext, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult as KafkaDeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _, ProducerContext, PurgeConfig};
use rdkafka::{ClientConfig, ClientContext};
use tokio::sync::{Semaphore, oneshot};
use uuid::Uuid;

use crate::ProducerError;
use crate::metrics::ProducerMetrics;

/// How many times one event is handed to a fresh client in a row when the fresh one is
/// dead already; past that its failure is reported.
const RESEND_ATTEMPTS: usize = 3;

/// Non-blocking polls of each retired client per poll of the current one: each serves one
/// event, and what is left waits for the next round.
const RETIRED_POLLS: usize = 256;

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

/// What travels with a message through librdkafka and comes back in its report.
pub(crate) struct Pending {
    pub(crate) event_id: Uuid,
    /// The message key, the resource id.
    pub(crate) resource_id: Uuid,
    /// The encoded event, kept while it is in flight so that it can be sent again on a new
    /// client after a fatal error; at most `queue_capacity` of them exist.
    pub(crate) payload: Arc<[u8]>,
    pub(crate) enqueued_at: Instant,
    /// `send`'s waiter; `None` for `record` and `try_record`, whose outcome goes to the
    /// delivery callback.
    pub(crate) reply: Option<oneshot::Sender<DeliveryResult>>,
}

/// The message key of an event: its resource id, hyphenated, lowercase.
pub(crate) fn encode_key(resource_id: Uuid, buffer: &mut [u8; 45]) -> &str {
    resource_id.hyphenated().encode_lower(buffer)
}

/// State shared by the callers, the polling thread and every client generation.
pub(crate) struct Shared {
    pub(crate) topic: String,
    pub(crate) delivery_timeout: Duration,
    /// One permit per event that may be in flight; returned by the delivery report.
    pub(crate) permits: Semaphore,
    pub(crate) in_flight: AtomicUsize,
    pub(crate) metrics: ProducerMetrics,
    pub(crate) on_delivery: Option<DeliveryCallback>,
    /// Set once the clients exist; weak, since every client's context holds this.
    clients: OnceLock<Weak<Clients>>,
}

impl Shared {
    pub(crate) fn new(
        topic: String,
        delivery_timeout: Duration,
        queue_capacity: usize,
        on_delivery: Option<DeliveryCallback>,
    ) -> Self {
        Shared {
            metrics: ProducerMetrics::new(&topic),
            topic,
            delivery_timeout,
            permits: Semaphore::new(queue_capacity),
            in_flight: AtomicUsize::new(0),
            on_delivery,
            clients: OnceLock::new(),
        }
    }

    /// The clients, unless the producer is being torn down.
    fn clients(&self) -> Option<Arc<Clients>> {
        self.clients.get().and_then(Weak::upgrade)
    }

    /// One report of client `generation`, which `fatal` says is dead: a failure there is
    /// sent again on a live client while the event's delivery timeout has not passed.
    fn report(
        &self,
        result: &KafkaDeliveryResult<'_>,
        pending: Box<Pending>,
        generation: u64,
        fatal: bool,
    ) {
        let error = match result {
            Ok(message) => {
                let latency = pending.enqueued_at.elapsed();
                self.metrics.sent.increment(1);
                self.metrics.latency.record(latency);
                let delivered = Delivered {
                    event_id: pending.event_id,
                    partition: message.partition(),
                    offset: message.offset(),
                    latency,
                };
                self.finish(*pending, Ok(delivered));
                return;
            }
            Err((error, _message)) => error.clone(),
        };
        let in_time = pending.enqueued_at.elapsed() < self.delivery_timeout;
        let (pending, error) = match self.clients() {
            Some(clients) if in_time && (fatal || clients.is_dead(generation, &error)) => {
                match clients.resend(generation, pending) {
                    Ok(()) => return,
                    Err((error, pending)) => (pending, error),
                }
            }
            _ => (pending, error),
        };
        self.metrics.failed.increment(1);
        let failure = ProducerError::from_kafka(pending.event_id, &self.topic, error, false);
        self.finish(*pending, Err(failure));
    }

    /// Hands the one outcome of an event to its waiter or the callback, and frees its slot.
    fn finish(&self, pending: Pending, outcome: DeliveryResult) {
        let event_id = pending.event_id;
        match (pending.reply, &self.on_delivery) {
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

/// One librdkafka client of the producer.
pub(crate) type Client = BaseProducer<DeliveryContext>;

/// The producer's clients: the current one, and the dead ones still owing reports.
pub(crate) struct Clients {
    config: ClientConfig,
    shared: Arc<Shared>,
    current: RwLock<Arc<Client>>,
    /// Clients replaced after a fatal error, polled until their last report is in.
    retired: Mutex<Vec<Arc<Client>>>,
    generations: AtomicU64,
}

impl Clients {
    /// Creates the first client for `config`.
    pub(crate) fn new(config: ClientConfig, shared: Arc<Shared>) -> Result<Arc<Self>, KafkaError> {
        let first = Arc::new(create_client(&config, &shared, 0)?);
        let clients = Arc::new(Clients {
            config,
            shared: Arc::clone(&shared),
            current: RwLock::new(first),
            retired: Mutex::new(Vec::new()),
            generations: AtomicU64::new(1),
        });
        // Set once per producer; `Shared` is never shared between two.
        let _ = shared.clients.set(Arc::downgrade(&clients));
        Ok(clients)
    }

    /// The client new events go to.
    pub(crate) fn current(&self) -> Arc<Client> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Polls the current client for up to `timeout`, then serves what the retired ones
    /// have ready, and lets go of those that owe nothing more.
    pub(crate) fn poll(&self, timeout: Duration) {
        self.current().poll(timeout);
        let retired = self
            .retired
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if retired.is_empty() {
            return;
        }
        // Polled without the lock held: a report may recover, which retires a client.
        for client in &retired {
            for _ in 0..RETIRED_POLLS {
                client.poll(Duration::ZERO);
            }
        }
        let done: Vec<Arc<Client>> = {
            let mut retired = self.retired.lock().unwrap_or_else(PoisonError::into_inner);
            let (done, owing) = retired
                .drain(..)
                .partition(|client| client.in_flight_count() == 0);
            *retired = owing;
            done
        };
        // Dropped here, outside the lock: a client's drop waits for its threads.
        drop(done);
    }

    /// Whether client `generation`, which failed a message with `error`, is dead. Asked of
    /// librdkafka itself: it marks the client dead before it fails a single message for it,
    /// while the error event that says so may be served after those failures.
    fn is_dead(&self, generation: u64, error: &KafkaError) -> bool {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal) {
            return true;
        }
        let current = self.current();
        if current.context().generation == generation {
            return current.client().fatal_error().is_some();
        }
        self.retired
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|client| client.context().generation == generation)
            .is_some_and(|client| client.client().fatal_error().is_some())
    }

    /// Replaces client `generation` after its fatal error, unless that was done already;
    /// returns the client to use now.
    pub(crate) fn recover(&self, generation: u64) -> Result<Arc<Client>, KafkaError> {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        if current.context().generation != generation {
            return Ok(Arc::clone(&current));
        }
        let next = self.generations.fetch_add(1, Ordering::AcqRel);
        let fresh = Arc::new(create_client(&self.config, &self.shared, next)?);
        let dead = std::mem::replace(&mut *current, Arc::clone(&fresh));
        let cause = dead.client().fatal_error();
        // A dead client fails most of what it holds at once, but a message it neither sent nor
        // failed would wait out its whole delivery timeout there and then be too late to send
        // again (seen once in the fatal-error test). Purged now, every such message comes back
        // within its timeout and goes to the fresh client; one already in flight may arrive
        // twice, which collapses downstream (same id and time).
        dead.purge(PurgeConfig::default().queue().inflight());
        self.retired
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(dead);
        self.shared.metrics.recoveries.increment(1);
        match cause {
            Some((code, reason)) => tracing::warn!(
                %code, reason, generation = next,
                "kafka producer hit a fatal error: replaced by a new client; unconfirmed events are sent again"
            ),
            None => tracing::warn!(
                generation = next,
                "kafka producer hit a fatal error: replaced by a new client; unconfirmed events are sent again"
            ),
        }
        Ok(fresh)
    }

    /// Sends an event that client `failed` reported failed after its fatal error again, on
    /// a live client; on failure gives the error and the event back.
    fn resend(&self, failed: u64, pending: Box<Pending>) -> Result<(), (KafkaError, Box<Pending>)> {
        let mut pending = pending;
        let mut dead = failed;
        let mut last_error = KafkaError::MessageProduction(RDKafkaErrorCode::Fatal);
        for _ in 0..RESEND_ATTEMPTS {
            let client = match self.recover(dead) {
                Ok(client) => client,
                Err(error) => return Err((error, pending)),
            };
            let payload = Arc::clone(&pending.payload);
            let mut key_buffer = Uuid::encode_buffer();
            let key = encode_key(pending.resource_id, &mut key_buffer);
            let record = BaseRecord::with_opaque_to(&self.shared.topic, pending)
                .key(key)
                .payload(&*payload);
            match client.send(record) {
                Ok(()) => {
                    self.shared.metrics.resent.increment(1);
                    return Ok(());
                }
                Err((error, record)) => {
                    pending = record.delivery_opaque;
                    if error.rdkafka_error_code() != Some(RDKafkaErrorCode::Fatal) {
                        return Err((error, pending));
                    }
                    dead = client.context().generation;
                    last_error = error;
                }
            }
        }
        Err((last_error, pending))
    }
}

fn create_client(
    config: &ClientConfig,
    shared: &Arc<Shared>,
    generation: u64,
) -> Result<Client, KafkaError> {
    let context = DeliveryContext {
        shared: Arc::clone(shared),
        generation,
        fatal: AtomicBool::new(false),
    };
    BaseProducer::from_config_and_context(config, context)
}

/// librdkafka's hooks for one client generation: delivery reports, errors and logs.
pub(crate) struct DeliveryContext {
    shared: Arc<Shared>,
    generation: u64,
    /// Set by the fatal error event; failures served before it are checked with librdkafka.
    fatal: AtomicBool,
}

impl DeliveryContext {
    /// Which client this is: 0 for the first, one more for each replacement.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }
}

impl ClientContext for DeliveryContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log_to_tracing(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() != Some(RDKafkaErrorCode::Fatal) {
            error_to_tracing(error, reason);
            return;
        }
        self.fatal.store(true, Ordering::Release);
        tracing::error!(%error, reason, generation = self.generation, "kafka producer fatal error");
        // Replaced now, so that new events go to the new client at once instead of failing
        // on this one first.
        if let Some(clients) = self.shared.clients()
            && let Err(error) = clients.recover(self.generation)
        {
            tracing::error!(%error, "cannot create a new kafka producer after a fatal error");
        }
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Box<Pending>;

    fn delivery(&self, result: &KafkaDeliveryResult<'_>, pending: Box<Pending>) {
        let fatal = self.fatal.load(Ordering::Acquire);
        self.shared.report(result, pending, self.generation, fatal);
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
