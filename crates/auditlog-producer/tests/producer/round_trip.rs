//! 100,000 events sent, confirmed, and read back equal.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auditlog_producer::event::{EventCodec, Framing};
use auditlog_producer::{Delivered, Producer};
use uuid::Uuid;

use crate::support::{brokers, events, fresh_topic, read_all};

const NUM_EVENTS: u64 = 100_000;
const PARTITIONS: i32 = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_thousand_events_are_confirmed_and_read_back_equal() {
    let topic = fresh_topic("round_trip", PARTITIONS).await;
    let delivered: Arc<Mutex<Vec<Delivered>>> = Arc::default();
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let producer = {
        let delivered = Arc::clone(&delivered);
        let failures = Arc::clone(&failures);
        Producer::builder(brokers(), &topic)
            .with_delivery_callback(move |result| match result {
                Ok(delivery) => delivered.lock().unwrap().push(delivery),
                Err(error) => failures.lock().unwrap().push(error.to_string()),
            })
            .build()
            .unwrap()
    };
    let events = events(11, NUM_EVENTS);

    // Most go fire-and-forget; every hundredth waits for its acknowledgement.
    for (index, event) in events.iter().enumerate() {
        if index % 100 == 0 {
            let delivery = producer.send(event).await.unwrap();
            assert_eq!(delivery.event_id, event.id);
        } else {
            producer.record(event).await.unwrap();
        }
    }
    producer.shutdown(Duration::from_secs(60)).await.unwrap();
    assert_eq!(producer.in_flight(), 0);
    assert_eq!(*failures.lock().unwrap(), Vec::<String>::new());
    let delivered = delivered.lock().unwrap().clone();
    assert_eq!(delivered.len() as u64, NUM_EVENTS - NUM_EVENTS / 100);

    let records = read_all(
        &topic,
        PARTITIONS,
        NUM_EVENTS as usize,
        Duration::from_secs(120),
    )
    .await;
    assert_eq!(records.len() as u64, NUM_EVENTS, "messages in the topic");
    let codec = EventCodec::new(Framing::SingleObject);
    let mut sent: HashMap<Uuid, _> = events.into_iter().map(|event| (event.id, event)).collect();
    for record in &records {
        let event = codec.decode(record.value()).unwrap();
        assert_eq!(record.key, event.resource_id.to_string().into_bytes());
        let original = sent
            .remove(&event.id)
            .unwrap_or_else(|| panic!("unexpected or repeated {}", event.id));
        assert_eq!(event, original);
    }
    assert!(sent.is_empty(), "{} events missing", sent.len());

    // The reported positions are where the events really are.
    let positions: HashMap<(i32, i64), Uuid> = records
        .iter()
        .map(|record| {
            (
                (record.partition, record.offset),
                codec.decode(record.value()).unwrap().id,
            )
        })
        .collect();
    for delivery in delivered.iter().take(1_000) {
        assert_eq!(
            positions[&(delivery.partition, delivery.offset)],
            delivery.event_id
        );
    }
}

#[tokio::test]
async fn confluent_framing_is_written_when_asked() {
    let topic = fresh_topic("confluent", 1).await;
    let producer = Producer::builder(brokers(), &topic)
        .with_framing(Framing::Confluent { schema_id: 42 })
        .build()
        .unwrap();
    let event = crate::support::events(3, 1).remove(0);
    producer.send(&event).await.unwrap();
    producer.shutdown(Duration::from_secs(10)).await.unwrap();
    let records = read_all(&topic, 1, 1, Duration::from_secs(30)).await;
    assert_eq!(records.len(), 1);
    assert_eq!(&records[0].value()[..5], &[0, 0, 0, 0, 42]);
    let codec = EventCodec::new(Framing::Confluent { schema_id: 42 });
    assert_eq!(codec.decode(records[0].value()).unwrap(), event);
}
