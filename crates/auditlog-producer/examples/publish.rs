//! Publishes audit events the way a service would: one confirmed with `send`, one handed
//! over with `try_record`, then a bounded shutdown.
//!
//! Run against the local stack: `cargo run -p auditlog-producer --example publish`
//! (brokers from `AUDITLOG_KAFKA_BROKERS`, default `127.0.0.1:9092`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use auditlog_producer::event::{
    Action, Actor, AuditEvent, Auditable, Organization, ResourceType, auditable,
};
use auditlog_producer::{Compression, Producer, ProducerError};
use uuid::Uuid;

// Every field is classified: `track` is diffed with old and new values, `ignore` never
// appears, `secret` appears as changed without its values. An unclassified field does not
// compile.
auditable! {
    #[derive(Debug, Clone)]
    pub struct Template {
        pub track name: String,
        pub track max_ttl_hours: u32,
        pub ignore updated_at: i64,
        pub secret provisioner_token: String,
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let brokers =
        std::env::var("AUDITLOG_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into());

    // Outcomes of `record`/`try_record` arrive here, on the producer's polling thread:
    // keep the callback short (count, log, forward to a channel).
    let failed = Arc::new(AtomicU64::new(0));
    let producer = {
        let failed = Arc::clone(&failed);
        Producer::builder(brokers, "audit-events")
            .with_property("client.id", "templates-service")
            .with_compression(Compression::Lz4)
            .with_queue_capacity(100_000)
            .with_delivery_timeout(Duration::from_secs(30))
            .with_delivery_callback(move |result| {
                if let Err(error) = result {
                    failed.fetch_add(1, Ordering::Relaxed);
                    eprintln!("audit event lost: {error}");
                }
            })
            .build()?
    };

    // What the operation changed, as a diff.
    let old = Template {
        name: "docker".into(),
        max_ttl_hours: 8,
        updated_at: 1,
        provisioner_token: "old-token".into(),
    };
    let new = Template {
        name: "docker-v2".into(),
        updated_at: 2,
        provisioner_token: "new-token".into(),
        ..old.clone()
    };
    let alice = Actor {
        id: Uuid::new_v4(),
        username: "alice".into(),
        email: "alice@example.com".into(),
        name: "Alice".into(),
    };
    let organization = Organization {
        id: Uuid::new_v4(),
        name: "acme".into(),
        display_name: "Acme".into(),
        icon: String::new(),
    };
    let template_id = Uuid::new_v4();
    let event = AuditEvent::builder(ResourceType::Template, Action::Write)
        .with_request_id(Uuid::new_v4())
        .with_user(alice.clone())
        .with_organization(organization)
        .with_ip("203.0.113.7".parse()?)
        .with_user_agent("curl/8.5.0")
        .with_resource_id(template_id)
        .with_resource_target(new.name.as_str())
        .with_diff(Template::diff(&old, &new))
        .with_status_code(200)
        .build()?;

    // 1. Wait for Kafka's acknowledgement (acks=all): the event is durable when this returns.
    match producer.send(&event).await {
        Ok(delivered) => println!(
            "event {} at partition {} offset {} after {:?}",
            delivered.event_id, delivered.partition, delivered.offset, delivered.latency
        ),
        // Retriable: a broker outage or the delivery timeout; the caller may try again.
        Err(error) if error.is_retriable() => eprintln!("not delivered yet: {error}"),
        Err(error) => return Err(error.into()),
    }

    // 2. Hand an event over without waiting; its outcome goes to the delivery callback.
    let login = AuditEvent::builder(ResourceType::ApiKey, Action::Login)
        .with_request_id(Uuid::new_v4())
        .with_user(alice)
        .with_resource_id(Uuid::new_v4())
        .with_status_code(201)
        .build()?;
    match producer.try_record(&login) {
        Ok(()) => {}
        // The queue is full: shed load, spill the event, or `producer.record(&login).await`
        // to wait for room (at most the delivery timeout).
        Err(ProducerError::QueueFull { event_id, capacity }) => {
            eprintln!("queue full ({capacity} in flight), event {event_id} not enqueued");
        }
        Err(error) => return Err(error.into()),
    }

    // 3. Before exiting: refuse new events and wait, bounded, for those in flight.
    // Dropping the last clone instead would purge them, and they would be reported failed.
    producer.shutdown(Duration::from_secs(10)).await?;
    println!("failed deliveries: {}", failed.load(Ordering::Relaxed));
    Ok(())
}
