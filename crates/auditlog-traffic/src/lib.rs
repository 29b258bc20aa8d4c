//! Realistic, deterministic Coder-like audit traffic for load tests, demos and test oracles.
//!
//! It lives apart from the SDK (`auditlog-producer`) so that services embedding the SDK do
//! not ship it: `auditlog generate`, the benches and the tests use it directly.
//!
//! ```text
//!  seed ──▶ World::build ──▶ organizations, users, templates, workspaces, tokens,
//!                             pre-built diffs, kind weights            (world, diffs, kinds)
//!                                   │
//!  sequence n ──▶ TrafficGenerator ─┴─▶ Drafter: pick a kind by weight ─▶ Draft   (events)
//!                  id (seed, n), time (span, n),                            │
//!                  request id ◀──────────────────────────────────────────────┘
//!                       │
//!                       ▼
//!                  AuditEvent (valid) ──▶ caller: Producer::send, a file, an oracle
//! ```
//!
//! The world is built once from the seed. Each event then draws from one random stream, so
//! the same seed and the same settings give the same events, in the same order, with the
//! same ids. Event ids are UUID v7 whose timestamp and random bits come from the seed and
//! the sequence number only (not from the clock), so they stay identical across runs even
//! when the default time span (which ends at "now") moves.
//!
//! Proportions follow what a busy Coder deployment records: workspace builds (start/stop)
//! dominate, logins are frequent, deletes are rarer, and every resource type and action
//! Coder knows shows up at least occasionally. About 5% of requests fail (status >= 400,
//! empty diff), a few are redirects (303), background jobs act with no user, and site-wide
//! resources (users, licenses, tokens, ...) have no organization.
//!
//! ```
//! use auditlog_traffic::TrafficGenerator;
//! use time::macros::datetime;
//!
//! let traffic = TrafficGenerator::new(7).with_time_span(
//!     datetime!(2025-01-01 0:00 UTC),
//!     datetime!(2025-01-02 0:00 UTC),
//!     100,
//! );
//! let organizations = traffic.organizations().len();
//! let events: Vec<_> = traffic.collect();
//! assert_eq!(events.len(), 100);
//! assert!(events.iter().all(|event| event.validate().is_ok()));
//! assert!(organizations > 0);
//! ```
//!
//! Modules import only downward: `generator` ▶ `events` ▶ `world` ▶ `kinds` ▶ `diffs` ▶
//! `names`, `rng`.

mod diffs;
mod events;
mod generator;
mod kinds;
mod names;
mod rng;
mod world;

pub use generator::{DEFAULT_EVENT_COUNT, DEFAULT_SPAN, TrafficGenerator};
pub use world::NUM_USERS;
