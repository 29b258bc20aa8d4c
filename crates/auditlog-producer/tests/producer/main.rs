//! Integration tests against the real Apache Kafka broker (`make up`: 127.0.0.1:9092, or
//! `AUDITLOG_KAFKA_BROKERS`). Each test creates its own topic; the broker-stopped test runs a
//! private broker it may kill.

mod support;

mod backpressure;
mod broker_stopped;
mod invalid;
mod metrics;
mod missing_topic;
mod ordering;
mod round_trip;
