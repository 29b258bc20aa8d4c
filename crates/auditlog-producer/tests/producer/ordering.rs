//! One resource's events stay on one partition, in the order they were recorded.

use std::collections::HashMap;
use std::time::Duration;

use auditlog_producer::Producer;
use auditlog_producer::event::{EventCodec, Framing};
use uuid::Uuid;

use crate::support::{brokers, events, fresh_topic, read_all};

const PARTITIONS: i32 = 6;
const NUM_RESOURCES: usize = 5;
const EVENTS_PER_RESOURCE: usize = 300;

#[tokio::test]
async fn same_key_same_partition_offsets_in_send_order() {
    let topic = fresh_topic("ordering", PARTITIONS).await;
    let producer = Producer::builder(brokers(), &topic)
        // Tiny batches and many in flight: the case where retries could reorder.
        .with_linger(Duration::ZERO)
        .build()
        .unwrap();
    let resources: Vec<Uuid> = (0..NUM_RESOURCES).map(|_| Uuid::new_v4()).collect();
    let mut events = events(21, (NUM_RESOURCES * EVENTS_PER_RESOURCE) as u64);
    for (index, event) in events.iter_mut().enumerate() {
        event.resource_id = resources[index % NUM_RESOURCES];
    }
    for event in &events {
        producer.record(event).await.unwrap();
    }
    producer.shutdown(Duration::from_secs(30)).await.unwrap();

    let records = read_all(&topic, PARTITIONS, events.len(), Duration::from_secs(60)).await;
    assert_eq!(records.len(), events.len());
    let codec = EventCodec::new(Framing::SingleObject);
    let send_order: HashMap<Uuid, usize> = events
        .iter()
        .enumerate()
        .map(|(index, event)| (event.id, index))
        .collect();
    let mut by_resource: HashMap<Uuid, Vec<(i32, i64, usize)>> = HashMap::new();
    for record in &records {
        let event = codec.decode(record.value()).unwrap();
        by_resource.entry(event.resource_id).or_default().push((
            record.partition,
            record.offset,
            send_order[&event.id],
        ));
    }
    assert_eq!(by_resource.len(), NUM_RESOURCES);
    for (resource, mut positions) in by_resource {
        let partition = positions[0].0;
        assert!(
            positions.iter().all(|(p, _, _)| *p == partition),
            "{resource} spans partitions"
        );
        positions.sort_by_key(|(_, offset, _)| *offset);
        let order: Vec<usize> = positions.iter().map(|(_, _, sent)| *sent).collect();
        assert!(
            order.windows(2).all(|pair| pair[0] < pair[1]),
            "{resource} out of order: {order:?}"
        );
    }
}
