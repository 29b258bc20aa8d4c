//! The SDK as a service drives it under load: events sent at a steady pace through
//! `auditlog-producer`, and every outcome the SDK reports recorded by event id, so a test can
//! hold the store to exactly what was confirmed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auditlog_producer::Producer;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::pipeline::events;

/// The pace is kept in ticks of this length.
const TICK: Duration = Duration::from_millis(50);

/// What the SDK reported for each event, by id.
#[derive(Debug, Default)]
pub struct Outcomes {
    /// Every event handed to the SDK, in order.
    pub sent: Vec<Uuid>,
    /// Events Kafka acknowledged.
    pub confirmed: HashMap<Uuid, usize>,
    /// Events the SDK gave up on, with its error.
    pub failed: HashMap<Uuid, String>,
    /// Reports beyond the first for one id: the SDK promises exactly one.
    pub repeated: Vec<Uuid>,
}

impl Outcomes {
    fn report(&mut self, id: Uuid, outcome: Result<(), String>) {
        if self.confirmed.contains_key(&id) || self.failed.contains_key(&id) {
            self.repeated.push(id);
        }
        match outcome {
            Ok(()) => *self.confirmed.entry(id).or_default() += 1,
            Err(error) => {
                self.failed.insert(id, error);
            }
        }
    }

    /// Events with an outcome.
    pub fn reported(&self) -> usize {
        self.confirmed.len() + self.failed.len()
    }
}

/// The SDK, sending generated events at a steady pace and recording every outcome.
#[derive(Debug)]
pub struct Sender {
    /// The SDK's producer (shut it down at the end).
    pub producer: Producer,
    /// Every outcome so far.
    pub outcomes: Arc<Mutex<Outcomes>>,
    per_tick: usize,
}

impl Sender {
    /// A producer for `topic` on `brokers` with the SDK's defaults but `delivery_timeout`,
    /// sending about 1,000 events/s.
    pub fn new(brokers: &str, topic: &str, delivery_timeout: Duration) -> Self {
        let outcomes = Arc::new(Mutex::new(Outcomes::default()));
        let reports = Arc::clone(&outcomes);
        let producer = Producer::builder(brokers, topic)
            .with_delivery_timeout(delivery_timeout)
            .with_delivery_callback(move |result| {
                let (id, outcome) = match result {
                    Ok(delivered) => (delivered.event_id, Ok(())),
                    Err(error) => (
                        error.event_id().expect("a failed delivery names its event"),
                        Err(error.to_string()),
                    ),
                };
                reports.lock().unwrap().report(id, outcome);
            })
            .build()
            .expect("SDK producer");
        Self {
            producer,
            outcomes,
            per_tick: 50,
        }
    }

    /// Sends about `per_second` events a second instead.
    pub fn with_rate(mut self, per_second: usize) -> Self {
        self.per_tick = (per_second * TICK.as_millis() as usize / 1000).max(1);
        self
    }

    /// Sends `count` new events at the sender's pace; returns once all are handed over.
    pub async fn send(&self, count: usize) {
        let stop = Arc::new(AtomicBool::new(false));
        self.spawn(count, stop).await.expect("sender task");
    }

    /// Starts sending up to `max` new events at the sender's pace, until `stop` is set.
    pub fn spawn(&self, max: usize, stop: Arc<AtomicBool>) -> JoinHandle<()> {
        let producer = self.producer.clone();
        let outcomes = Arc::clone(&self.outcomes);
        let per_tick = self.per_tick;
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(TICK);
            let mut left = max;
            while left > 0 && !stop.load(Ordering::Relaxed) {
                ticks.tick().await;
                let count = per_tick.min(left);
                left -= count;
                for mut event in events(0, count) {
                    // Fresh ids (time-ordered, unique across runs and senders), and the time
                    // of sending, as a service's events have, so freshness means something.
                    event.id = Uuid::now_v7();
                    event.time = time::OffsetDateTime::now_utc();
                    outcomes.lock().unwrap().sent.push(event.id);
                    // A send refused before it reached the queue is a failure by id too.
                    if let Err(error) = producer.record(&event).await {
                        outcomes
                            .lock()
                            .unwrap()
                            .report(event.id, Err(error.to_string()));
                    }
                }
            }
        })
    }

    /// Events confirmed so far.
    pub fn confirmed(&self) -> usize {
        self.outcomes.lock().unwrap().confirmed.len()
    }

    /// Events handed to the SDK so far.
    pub fn sent(&self) -> usize {
        self.outcomes.lock().unwrap().sent.len()
    }

    /// Waits until every event sent so far has its outcome; panics past `timeout`.
    pub async fn wait_for_outcomes(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let (sent, reported) = {
                let outcomes = self.outcomes.lock().unwrap();
                (outcomes.sent.len(), outcomes.reported())
            };
            if reported >= sent {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{reported} of {sent} events have an outcome after {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
