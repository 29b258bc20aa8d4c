//! A topic the cluster does not have is an error that names it, within seconds, not a
//! `MessageTimedOut` for every event after the whole delivery timeout.

use std::time::{Duration, Instant};

use auditlog_producer::{Producer, ProducerError};

use crate::support::{brokers, events, unique_topic};

/// Far beyond what the SDK needs (about 3 s), far below the delivery timeout: an error
/// inside this bound cannot be the timeout's.
const BOUND: Duration = Duration::from_secs(20);
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(120);

#[tokio::test]
async fn send_to_a_missing_topic_names_the_topic_long_before_the_delivery_timeout() {
    let topic = unique_topic("never_created");
    let producer = Producer::builder(brokers(), &topic)
        .with_delivery_timeout(DELIVERY_TIMEOUT)
        .build()
        .unwrap();
    let event = events(11, 1).remove(0);
    let started = Instant::now();
    let error = tokio::time::timeout(BOUND, producer.send(&event))
        .await
        .expect("the send fails within the bound, not at the delivery timeout")
        .unwrap_err();
    eprintln!("missing topic reported after {:?}", started.elapsed());
    assert!(
        matches!(&error, ProducerError::MissingTopic { topic: named, event_id: Some(id) } if *named == topic && *id == event.id),
        "{error:?}"
    );
    assert!(error.to_string().contains(&topic), "{error}");
    assert!(!error.is_retriable());

    // Later events fail the same way, and nothing is left in flight.
    let later = events(12, 1).remove(0);
    let error = tokio::time::timeout(BOUND, producer.send(&later))
        .await
        .expect("a second send fails within the bound too")
        .unwrap_err();
    assert!(
        matches!(&error, ProducerError::MissingTopic { .. }),
        "{error:?}"
    );
    // The reply reaches `send` just before the polling thread finishes the report's
    // bookkeeping, so let it finish: a flush returns once nothing is in flight.
    producer
        .flush(Duration::from_secs(5))
        .await
        .expect("nothing left in flight");
    assert_eq!(producer.in_flight(), 0);
}

#[tokio::test]
async fn check_topic_reports_a_missing_topic_and_counts_an_existing_ones_partitions() {
    let missing = unique_topic("not_there");
    let producer = Producer::builder(brokers(), &missing).build().unwrap();
    let error = producer
        .check_topic(Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ProducerError::MissingTopic { topic, event_id: None } if *topic == missing),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!("kafka topic {missing:?} does not exist")
    );

    let present = crate::support::fresh_topic("there", 3).await;
    let producer = Producer::builder(brokers(), &present).build().unwrap();
    assert_eq!(
        producer.check_topic(Duration::from_secs(10)).await.unwrap(),
        3
    );
}
