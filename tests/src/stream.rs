//! What the streaming tests (`stream*` modules) share: events published the way a service
//! publishes them, and the "each id once" check every destination is held to.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use auditlog_event::{Actor, AuditEvent};
use auditlog_producer::Producer;
use uuid::Uuid;

use crate::kafka_brokers;

/// Publishes `events` to `topic` on the shared broker through the SDK, each acknowledged
/// before the next is sent, so the topic holds them in this order.
pub async fn publish(topic: &str, events: &[AuditEvent]) {
    let producer = Producer::builder(kafka_brokers(), topic)
        .build()
        .expect("producer");
    for event in events {
        producer.send(event).await.expect("delivered to kafka");
    }
    producer
        .shutdown(Duration::from_secs(30))
        .await
        .expect("producer shutdown");
}

/// The distinct ids, or a panic naming those that came more than once (`what` says where).
pub fn ids_once(ids: impl IntoIterator<Item = Uuid>, what: &str) -> BTreeSet<Uuid> {
    let mut counts: BTreeMap<Uuid, usize> = BTreeMap::new();
    for id in ids {
        *counts.entry(id).or_default() += 1;
    }
    let repeated: Vec<_> = counts.iter().filter(|(_, count)| **count > 1).collect();
    assert!(
        repeated.is_empty(),
        "{what}: ids delivered more than once: {repeated:?}"
    );
    counts.into_keys().collect()
}

/// Makes every third event's actor "Carol" and takes the name from every other actor that
/// had it: afterwards exactly the returned positions are those a `username:carol` filter
/// selects, by construction.
pub fn every_third_by_carol(events: &mut [AuditEvent]) -> BTreeSet<usize> {
    let mut carol = BTreeSet::new();
    for (index, event) in events.iter_mut().enumerate() {
        if index % 3 == 0 {
            event.user = Some(Actor {
                id: Uuid::from_u128(0xCA501),
                username: "Carol".into(),
                email: "carol@example.com".into(),
                name: "Carol".into(),
            });
            carol.insert(index);
        } else if event
            .user
            .as_ref()
            .is_some_and(|user| user.username.eq_ignore_ascii_case("carol"))
        {
            event.user = None;
        }
    }
    carol
}

/// Waits for `process` (an `auditlog stream --until-caught-up`) to exit and returns how; panics
/// with its log when it is still running after `timeout`.
pub async fn wait_for_exit(
    process: &mut crate::pipeline::AuditlogProcess,
    timeout: Duration,
) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(status) = process.exit_status() {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "stream did not catch up within {timeout:?}; log:\n{}",
            process.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
