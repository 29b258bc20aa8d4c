//! The queue is bounded: `try_record` says when it is full, `record` and `send` wait.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use auditlog_producer::{Producer, ProducerError};

use crate::support::{brokers, events, fresh_topic, read_all};

const CAPACITY: usize = 10;

#[tokio::test]
async fn try_record_on_a_full_queue_is_queue_full_and_flush_frees_it() {
    let topic = fresh_topic("queue_full", 1).await;
    let confirmed = Arc::new(AtomicUsize::new(0));
    let producer = {
        let confirmed = Arc::clone(&confirmed);
        Producer::builder(brokers(), &topic)
            .with_queue_capacity(CAPACITY)
            // Messages linger locally, so the queue fills before anything is sent.
            .with_linger(Duration::from_secs(20))
            .with_delivery_callback(move |result| {
                result.unwrap();
                confirmed.fetch_add(1, Ordering::Relaxed);
            })
            .build()
            .unwrap()
    };
    let events = events(31, CAPACITY as u64 + 1);
    for event in &events[..CAPACITY] {
        producer.try_record(event).unwrap();
    }
    let overflow = &events[CAPACITY];
    let error = producer.try_record(overflow).unwrap_err();
    assert!(
        matches!(error, ProducerError::QueueFull { event_id, capacity: CAPACITY } if event_id == overflow.id),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "the local queue is full (10 events in flight); event {} was not enqueued",
            overflow.id
        )
    );
    assert!(error.is_retriable());
    assert_eq!(producer.in_flight(), CAPACITY);

    // Flush sends the lingering batch at once; then there is room again.
    producer.flush(Duration::from_secs(20)).await.unwrap();
    assert_eq!(confirmed.load(Ordering::Relaxed), CAPACITY);
    producer.try_record(overflow).unwrap();
    producer.shutdown(Duration::from_secs(20)).await.unwrap();
    assert_eq!(confirmed.load(Ordering::Relaxed), CAPACITY + 1);
    assert_eq!(
        read_all(&topic, 1, CAPACITY + 1, Duration::from_secs(30))
            .await
            .len(),
        CAPACITY + 1
    );
}

#[tokio::test]
async fn record_and_send_wait_for_room_and_never_exceed_the_capacity() {
    let topic = fresh_topic("backpressure", 2).await;
    let most_in_flight = Arc::new(AtomicUsize::new(0));
    let producer = Producer::builder(brokers(), &topic)
        .with_queue_capacity(CAPACITY)
        .with_linger(Duration::from_millis(1))
        .build()
        .unwrap();
    let events = events(32, 600);
    let (first_half, second_half) = events.split_at(300);
    for event in first_half {
        producer.record(event).await.unwrap();
        most_in_flight.fetch_max(producer.in_flight(), Ordering::Relaxed);
    }
    // Many concurrent senders on a queue of ten: all wait their turn, all get through.
    let sends = second_half.iter().map(|event| producer.send(event));
    for result in futures::future::join_all(sends).await {
        result.unwrap();
        most_in_flight.fetch_max(producer.in_flight(), Ordering::Relaxed);
    }
    producer.shutdown(Duration::from_secs(20)).await.unwrap();
    assert!(most_in_flight.load(Ordering::Relaxed) <= CAPACITY);
    assert_eq!(
        read_all(&topic, 2, 600, Duration::from_secs(30))
            .await
            .len(),
        600
    );
}

#[tokio::test]
async fn shutdown_refuses_new_events() {
    let producer = Producer::builder(brokers(), "unused_after_shutdown")
        .build()
        .unwrap();
    producer.shutdown(Duration::from_secs(1)).await.unwrap();
    let event = events(33, 1).remove(0);
    let error = producer.try_record(&event).unwrap_err();
    assert!(
        matches!(error, ProducerError::Closed { event_id } if event_id == event.id),
        "{error:?}"
    );
    let error = producer.send(&event).await.unwrap_err();
    assert!(matches!(error, ProducerError::Closed { .. }), "{error:?}");
}
