//! The audit event model that every auditlog crate shares.
//!
//! An audit event records who did what to which resource, when, from where, and what
//! changed. It is self-contained (event-sourced): the actor and organization are copied into
//! it as they were at the time, so nothing needs a join to be understood later.
//!
//! This crate holds the event ([`AuditEvent`], built with [`AuditEvent::builder`] and checked
//! with [`AuditEvent::validate`]), Coder's vocabularies ([`ResourceType`], [`Action`],
//! [`BuildReason`]), the field-by-field [`Diff`] with the [`auditable!`] macro, and the Avro
//! binding: the committed schemas under `schemas/` and [`EventCodec`], which frames events
//! for Kafka. The event's modules are `event` (the model), `builder` and `validate`; the
//! binding's are `avro` (the hand-rolled fast path), `avro_value` (apache-avro's generic
//! path) and `codec`; `view` reads a valid event in place for the ingester ([`EventView`]),
//! keeping JSON text that `json_text` finds already in its stored form. Both sides share
//! `encoded_len` (the lengths of encoded JSON and Avro varints, computed without encoding) and `micros` (times as microseconds since the epoch,
//! the one unit of Avro, ClickHouse and cursors), which import neither. Coder's UI wording
//! for an event (its `description`) belongs to the read side, in `auditlog-query`.
//!
//! ```text
//! service ── AuditEvent::builder() ── build() ── EventCodec::encode ──▶ Kafka
//! Kafka ──▶ EventCodec::decode ── AuditEvent ── ingester ──▶ ClickHouse
//!       └─▶ EventCodec::decode_view ── EventView (borrowed) ─┘   (its fast path)
//! ```
//!
//! ```
//! use auditlog_event::{
//!     Action, Actor, AuditEvent, EventCodec, Framing, ResourceType, auditable, Auditable,
//! };
//! use uuid::Uuid;
//!
//! auditable! {
//!     #[derive(Debug)]
//!     pub struct Template {
//!         pub track name: String,
//!         pub ignore updated_at: i64,
//!     }
//! }
//! let old = Template { name: "docker".into(), updated_at: 1 };
//! let new = Template { name: "docker-v2".into(), updated_at: 2 };
//!
//! let event = AuditEvent::builder(ResourceType::Template, Action::Write)
//!     .with_request_id(Uuid::new_v4())
//!     .with_resource_id(Uuid::new_v4())
//!     .with_resource_target("docker-v2")
//!     .with_user(Actor {
//!         id: Uuid::new_v4(),
//!         username: "alice".into(),
//!         email: "alice@example.com".into(),
//!         name: "Alice".into(),
//!     })
//!     .with_diff(Template::diff(&old, &new))
//!     .with_status_code(200)
//!     .build()?;
//! assert_eq!(event.diff.get("name").unwrap().new, "docker-v2");
//!
//! let codec = EventCodec::new(Framing::SingleObject);
//! let mut message = Vec::new();
//! codec.encode(&event, &mut message)?;
//! assert_eq!(codec.decode(&message)?, event);
//! # Ok::<(), auditlog_event::EventError>(())
//! ```

mod avro;
mod avro_value;
mod builder;
mod codec;
mod diff;
mod encoded_len;
mod enums;
mod error;
mod event;
#[doc(hidden)]
pub mod fuzz_checks;
mod ip_text;
mod json_text;
pub mod limits;
mod micros;
mod schema;
pub mod testing;
mod validate;
mod view;

pub use builder::AuditEventBuilder;
pub use codec::{EventCodec, Framing};
#[doc(hidden)]
pub use diff::__private;
pub use diff::{Auditable, Diff, DiffEntry, FieldClass, diff_json_objects};
pub use enums::{Action, BuildReason, ResourceType};
pub use error::EventError;
pub use event::{Actor, AuditEvent, Organization};
pub use ip_text::put_ipv4;
pub use micros::unix_micros_saturating;
pub use schema::{AUDIT_EVENT_SCHEMA, SchemaVersion, newest_schema, schema_versions};
pub use view::{ActorView, EventView, OrganizationView};
