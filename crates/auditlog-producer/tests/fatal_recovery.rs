//! A fatal error of the idempotent producer costs no event and reports none twice.
//!
//! The error is librdkafka's own: a broker answers a produce request with
//! OUT_OF_ORDER_SEQUENCE_NUMBER for the head of the partition's queue, librdkafka can no
//! longer vouch for ordering or once-ness, and it marks the client dead (`rd_kafka_fatal_error`
//! says so), failing what it holds and refusing what comes after. No real broker gives that
//! answer on demand, and librdkafka's direct hook for it is reachable only through unsafe
//! code, so the answer comes from librdkafka's mock cluster, which speaks the Kafka protocol
//! over real sockets and returns the error from its produce handler. The SDK's client is an
//! ordinary one pointed at it; nothing in the SDK's code path is faked.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auditlog_producer::event::testing::sample_events;
use auditlog_producer::event::{AuditEvent, EventCodec, Framing};
use auditlog_producer::metrics::{CLIENT_RECOVERIES_TOTAL, EVENTS_RESENT_TOTAL};
use auditlog_producer::{DeliveryResult, Producer};
use metrics::atomics::AtomicU64;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use time::macros::datetime;
use uuid::Uuid;

const TOPIC: &str = "audit-events-fatal";
const PARTITIONS: i32 = 3;
/// Events per phase: before the error, while it strikes, after it.
const PER_PHASE: u64 = 3_000;
/// Every this many events of the middle phase go through `send`, the rest through `record`.
const SEND_EVERY: u64 = 50;

/// Keeps the producer's counters, by name.
#[derive(Debug, Default)]
struct Counters(Mutex<HashMap<String, Arc<AtomicU64>>>);

impl Counters {
    fn value(&self, name: &str) -> u64 {
        self.0
            .lock()
            .unwrap()
            .get(name)
            .map_or(0, |value| value.load(Ordering::Relaxed))
    }
}

impl Recorder for Counters {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let mut values = self.0.lock().unwrap();
        Counter::from_arc(Arc::clone(values.entry(key.name().to_owned()).or_default()))
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

/// `count` valid events with distinct ids and times, the sample variety cycled.
fn events(count: u64) -> Vec<AuditEvent> {
    let samples = sample_events();
    let start = datetime!(2025-06-01 0:00 UTC);
    (0..count)
        .map(|index| {
            let mut event = samples[index as usize % samples.len()].clone();
            event.id = Uuid::from_u64_pair(0xfa7a1, index);
            event.request_id = Uuid::from_u64_pair(0xfa7a2, index);
            event.time = start + Duration::from_millis(index * 1_000);
            event
        })
        .collect()
}

/// Every outcome the producer reported, by event id.
type Outcomes = Arc<Mutex<HashMap<Uuid, Vec<Result<(), String>>>>>;

fn note(outcomes: &Outcomes, result: DeliveryResult) {
    let (event_id, outcome) = match result {
        Ok(delivered) => (delivered.event_id, Ok(())),
        Err(error) => (error.event_id().unwrap_or_default(), Err(error.to_string())),
    };
    outcomes
        .lock()
        .unwrap()
        .entry(event_id)
        .or_default()
        .push(outcome);
}

/// Makes the cluster answer the next produce request with a sequence desynchronization for
/// the oldest batch in flight, which librdkafka holds fatal for an idempotent producer.
fn inject_fatal_error<C: rdkafka::ClientContext>(cluster: &MockCluster<'_, C>) {
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fatal_producer_error_loses_no_event_and_reports_none_twice() {
    let cluster = MockCluster::new(3).expect("mock cluster");
    cluster
        .create_topic(TOPIC, PARTITIONS, 1)
        .expect("mock topic");
    let brokers = cluster.bootstrap_servers();
    let counters = Counters::default();
    let outcomes: Outcomes = Arc::default();
    let producer = {
        let outcomes = Arc::clone(&outcomes);
        let builder = Producer::builder(&brokers, TOPIC)
            .with_linger(Duration::from_millis(5))
            .with_delivery_timeout(Duration::from_secs(30))
            .with_delivery_callback(move |result| note(&outcomes, result));
        metrics::with_local_recorder(&counters, || builder.build()).unwrap()
    };
    let events = events(3 * PER_PHASE);
    let (before, rest) = events.split_at(PER_PHASE as usize);
    let (during, after) = rest.split_at(PER_PHASE as usize);

    // Before: the client has its producer id and has written to every partition; as below,
    // nothing is in flight when the error is armed.
    for event in before {
        producer.record(event).await.unwrap();
    }
    producer.flush(Duration::from_secs(60)).await.unwrap();
    assert_eq!(counters.value(CLIENT_RECOVERIES_TOTAL), 0);

    // During: the next produce request is refused, fatally, while the events below are
    // being queued and sent.
    inject_fatal_error(&cluster);
    let mut sends = Vec::new();
    for (index, event) in during.iter().enumerate() {
        if (index as u64).is_multiple_of(SEND_EVERY) {
            let producer = producer.clone();
            let event = event.clone();
            sends.push(tokio::spawn(async move {
                (event.id, producer.send(&event).await)
            }));
        } else {
            producer.record(event).await.unwrap();
        }
    }
    // After: the replacement client dies the same way while the producer keeps taking
    // events, and is replaced in turn. Nothing is in flight when the error is armed, so the
    // request it hits heads its partition's queue: librdkafka bumps the epoch instead of
    // giving up when an earlier request of the same partition is still unanswered.
    producer.flush(Duration::from_secs(60)).await.unwrap();
    inject_fatal_error(&cluster);
    for event in after {
        producer.record(event).await.unwrap();
    }
    for send in sends {
        let (event_id, result) = send.await.unwrap();
        if let Ok(delivered) = &result {
            assert_eq!(delivered.event_id, event_id);
        }
        note(
            &outcomes,
            result.inspect_err(|error| {
                assert_eq!(error.event_id(), Some(event_id));
            }),
        );
    }
    producer.shutdown(Duration::from_secs(60)).await.unwrap();
    assert_eq!(producer.in_flight(), 0);

    // The error struck twice, and the producer recovered each time.
    let recoveries = counters.value(CLIENT_RECOVERIES_TOTAL);
    assert_eq!(recoveries, 2, "fatal errors recovered from");
    let resent = counters.value(EVENTS_RESENT_TOTAL);
    assert!(resent >= 1, "the fatal error failed no event");

    // Every event reported once, delivered.
    {
        let outcomes = outcomes.lock().unwrap();
        for event in &events {
            let reported = outcomes.get(&event.id).map(Vec::as_slice).unwrap_or(&[]);
            assert_eq!(reported, [Ok(())], "outcomes of event {}", event.id);
        }
        assert_eq!(outcomes.len(), events.len(), "outcomes of unknown events");
    }

    // Every event is in the topic; a repeat is the same event (same id and time), which
    // collapses downstream.
    let records = auditlog_testkit::read_topic(
        &brokers,
        TOPIC,
        PARTITIONS,
        events.len(),
        Duration::from_secs(60),
    )
    .await;
    let codec = EventCodec::new(Framing::SingleObject);
    let sent: HashMap<Uuid, &AuditEvent> = events.iter().map(|event| (event.id, event)).collect();
    let mut copies: HashMap<Uuid, usize> = HashMap::new();
    for record in &records {
        let event = codec.decode(record.value()).unwrap();
        let original = sent
            .get(&event.id)
            .unwrap_or_else(|| panic!("unexpected event {}", event.id));
        assert_eq!(&event, *original, "a copy differs from the event sent");
        *copies.entry(event.id).or_default() += 1;
    }
    let missing = events
        .iter()
        .filter(|event| !copies.contains_key(&event.id))
        .count();
    assert_eq!(missing, 0, "events missing from the topic");
    let repeats = records.len() - copies.len();
    println!("{recoveries} recoveries, {resent} events sent again, {repeats} repeats in the topic");
}
