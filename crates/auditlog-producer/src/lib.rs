//! Produces, encodes and publishes audit events to Kafka.
