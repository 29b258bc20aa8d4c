//! The producer tests' fixtures: generated events, on top of the shared test kit.

use std::time::Duration;

use auditlog_producer::event::AuditEvent;
use auditlog_producer::event::testing::sample_events;
pub use auditlog_testkit::{PrivateBroker, Record, create_topic, kafka_brokers as brokers};
use time::macros::datetime;
use uuid::Uuid;

/// A topic name no other test uses.
pub fn unique_topic(prefix: &str) -> String {
    auditlog_testkit::unique_name(&format!("producer_{prefix}"))
}

/// A fresh topic on the shared broker.
pub async fn fresh_topic(prefix: &str, partitions: i32) -> String {
    let topic = unique_topic(prefix);
    create_topic(&brokers(), &topic, partitions).await;
    topic
}

/// `count` valid events with distinct ids, spread over one day in 2025: the event crate's
/// sample variety (builds, logins, failures, automatic actions, diffs), cycled.
pub fn events(seed: u64, count: u64) -> Vec<AuditEvent> {
    let samples = sample_events();
    let start = datetime!(2025-06-01 0:00 UTC);
    let step_millis = 86_400_000 / count.max(1);
    (0..count)
        .map(|index| {
            let mut event = samples[index as usize % samples.len()].clone();
            // Seeds are non-zero, so no id is the nil UUID.
            event.id = Uuid::from_u64_pair(seed, index);
            event.request_id = Uuid::from_u64_pair(!seed, index);
            event.time = start + Duration::from_millis(index * step_millis);
            event
        })
        .collect()
}

/// Reads every partition of `topic` on the shared broker from the beginning.
pub async fn read_all(
    topic: &str,
    partitions: i32,
    expected: usize,
    timeout: Duration,
) -> Vec<Record> {
    auditlog_testkit::read_topic(&brokers(), topic, partitions, expected, timeout).await
}
