//! Produces, encodes and publishes audit events to Kafka.
//!
//! [`generator`] makes realistic, deterministic Coder-like traffic for load tests and demos.

pub mod generator;
