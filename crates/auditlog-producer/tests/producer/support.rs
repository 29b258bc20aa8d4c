//! The producer tests' fixtures: generated events, on top of the shared test kit.

use std::time::Duration;

use auditlog_producer::event::AuditEvent;
pub use auditlog_testkit::{PrivateBroker, Record, create_topic, kafka_brokers as brokers};
use auditlog_traffic::TrafficGenerator;
use time::macros::datetime;

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

/// `count` generated events (valid, distinct ids) over one day in 2025.
pub fn events(seed: u64, count: u64) -> Vec<AuditEvent> {
    TrafficGenerator::new(seed)
        .with_time_span(
            datetime!(2025-06-01 0:00 UTC),
            datetime!(2025-06-02 0:00 UTC),
            count,
        )
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
