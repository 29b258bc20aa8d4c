//! The audit event model that every auditlog crate shares.
//!
//! An audit event records who did what to which resource, when, from where, and what
//! changed. It is self-contained (event-sourced): the actor and organization are copied into
//! it as they were at the time, so nothing needs a join to be understood later.

mod enums;
mod error;

pub use enums::{Action, BuildReason, ResourceType};
pub use error::EventError;
