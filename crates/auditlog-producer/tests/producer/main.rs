//! Integration tests against a real Kafka-API broker (`make up`: tansu on 127.0.0.1:9092,
//! or `AUDITLOG_KAFKA_BROKERS`). Each test creates its own topic; the broker-stopped test
//! runs a private tansu it may kill.

mod support;

mod backpressure;
mod broker_stopped;
mod invalid;
mod metrics;
mod ordering;
mod round_trip;
