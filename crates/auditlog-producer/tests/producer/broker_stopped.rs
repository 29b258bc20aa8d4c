//! With the broker gone, `send` fails within the delivery timeout, naming the event, and
//! `flush` says how many events are still undelivered. Nothing panics.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auditlog_producer::{Producer, ProducerError};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::support::{PrivateBroker, create_topic, events, unique_topic};

const DELIVERY_TIMEOUT: Duration = Duration::from_secs(2);

/// librdkafka scans for timed-out messages about once a second; allow that and a margin.
const SLACK: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_fails_within_the_delivery_timeout_when_the_broker_is_gone() {
    let mut broker = PrivateBroker::start();
    let topic = unique_topic("broker_stopped");
    create_topic(&broker.brokers(), &topic, 1).await;
    let failures: Arc<Mutex<Vec<ProducerError>>> = Arc::default();
    let producer = {
        let failures = Arc::clone(&failures);
        Producer::builder(broker.brokers(), &topic)
            .with_delivery_timeout(DELIVERY_TIMEOUT)
            .with_delivery_callback(move |result| {
                if let Err(error) = result {
                    failures.lock().unwrap().push(error);
                }
            })
            .build()
            .unwrap()
    };
    let events = events(41, 5);

    // Retry the first send a few times: a just-started broker may still be electing.
    let mut first = producer.send(&events[0]).await;
    for _ in 0..5 {
        if first.is_ok() {
            break;
        }
        first = producer.send(&events[0]).await;
    }
    first.expect("the first event goes through while the broker runs");

    broker.kill();

    let started = Instant::now();
    let error = producer.send(&events[1]).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(elapsed < DELIVERY_TIMEOUT + SLACK, "send took {elapsed:?}");
    assert_eq!(error.event_id(), Some(events[1].id));
    assert!(
        matches!(
            &error,
            ProducerError::Delivery {
                source: KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut),
                ..
            }
        ),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(
        text.starts_with(&format!("event {} was not delivered: ", events[1].id)),
        "{text}"
    );
    assert!(text.contains("timed out"), "{text}");

    // Fire-and-forget events: flush reports them undelivered, then the callback hears
    // about each one.
    for event in &events[2..] {
        producer.record(event).await.unwrap();
    }
    let error = producer
        .flush(Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(
        matches!(error, ProducerError::FlushTimeout { undelivered: 3, .. }),
        "{error:?}"
    );
    producer
        .shutdown(DELIVERY_TIMEOUT + SLACK)
        .await
        .expect("every report arrives within the delivery timeout");
    let failures = failures.lock().unwrap();
    let mut failed_ids: Vec<_> = failures
        .iter()
        .filter_map(ProducerError::event_id)
        .collect();
    failed_ids.sort();
    let mut expected: Vec<_> = events[2..].iter().map(|event| event.id).collect();
    expected.sort();
    assert_eq!(failed_ids, expected);
    assert_eq!(producer.in_flight(), 0);
}
