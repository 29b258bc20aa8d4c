//! Consumes audit events from Kafka and writes them into ClickHouse.
