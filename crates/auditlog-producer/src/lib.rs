//! The SDK services embed to publish audit events to Kafka.
//!
//! It is built to sit in the request path of a busy service: enqueueing costs about a
//! microsecond, nothing waits without bound, and no event is lost silently. Every event is
//! validated strictly at the call ([`ProducerError::Invalid`] names what is wrong), encoded
//! as Avro with [`EventCodec`](auditlog_event::EventCodec) and keyed by its resource id, so
//! one resource's events stay in order on one partition. The producer is idempotent with
//! `acks=all`, fixed in code.
//!
//! ```text
//!  service                     auditlog-producer                          Kafka
//! ─────────  send(&event) ─▶ validate ─▶ permit ─▶ encode ─▶ librdkafka ─▶ topic
//!              │ (await)                  │ full:            queue  ─ batches ─▶ (acks=all)
//!              │                          │  send/record wait     │
//!              │                          │  try_record: QueueFull│
//!              ◀──────── Delivered / Delivery { event_id } ◀──── report (poller thread)
//!  record / try_record ─▶ same path; the report goes to the delivery callback
//! ```
//!
//! - [`Producer::send`] returns once Kafka has the event (a future).
//! - [`Producer::record`] enqueues and returns; the outcome goes to the delivery callback.
//! - [`Producer::try_record`] never waits: a full queue is [`ProducerError::QueueFull`].
//! - [`Producer::flush`] and [`Producer::shutdown`] wait for what is in flight, bounded.
//! - [`metrics`] lists the series published through the `metrics` facade.
//! - [`RecordProducer`] sends raw records (key, payload, headers) with confirmed delivery,
//!   for what a pipeline writes besides events: the ingester's dead letters and checkpoints.
//!
//! Every client polls librdkafka only while it has something in flight, so a service that
//! sends nothing costs next to no CPU.
//!
//! A fatal error of the idempotent client (librdkafka gives up on its sequence numbers) does
//! not end the producer: it builds a new client and sends again every event the dead one
//! failed, within the event's delivery timeout, so each event still gets one outcome. A
//! repeat in the topic carries the same id and time and collapses downstream.
//!
//! Fake traffic for load tests and demos lives in a crate of its own, `auditlog-traffic`, so
//! that it does not ship inside every service that embeds this one.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use auditlog_producer::event::{Action, AuditEvent, ResourceType};
//! use auditlog_producer::{Producer, ProducerError};
//! use uuid::Uuid;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let producer = Producer::builder("127.0.0.1:9092", "audit-events")
//!     .with_property("client.id", "my-service")
//!     .with_delivery_callback(|result| {
//!         if let Err(error) = result {
//!             eprintln!("audit event lost: {error}");
//!         }
//!     })
//!     .build()?;
//!
//! let event = AuditEvent::builder(ResourceType::Workspace, Action::Create)
//!     .with_request_id(Uuid::new_v4())
//!     .with_resource_id(Uuid::new_v4())
//!     .with_resource_target("dev")
//!     .with_status_code(201)
//!     .build()?;
//!
//! // Wait for Kafka's acknowledgement...
//! let delivered = producer.send(&event).await?;
//! println!("at partition {} offset {}", delivered.partition, delivered.offset);
//!
//! // ...or hand it over and let the callback hear about it.
//! match producer.try_record(&event) {
//!     Ok(()) => {}
//!     Err(ProducerError::QueueFull { .. }) => { /* shed load, or await producer.record */ }
//!     Err(error) => return Err(error.into()),
//! }
//!
//! producer.shutdown(Duration::from_secs(10)).await?;
//! # Ok(())
//! # }
//! ```

pub mod config;
mod delivery;
mod error;
pub mod metrics;
mod poller;
mod producer;
mod records;

/// The event model, so that services need only this crate.
pub use auditlog_event as event;
pub use config::{Compression, ProducerConfig};
pub use delivery::{Delivered, DeliveryCallback, DeliveryResult};
pub use error::ProducerError;
pub use producer::{Producer, ProducerBuilder};
pub use records::{RawRecord, RecordDelivery, RecordProducer};
