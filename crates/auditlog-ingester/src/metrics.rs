//! The ingester's metric names, described once so every exporter shows their meaning.
//!
//! Recorded through the `metrics` facade; the binary installs the Prometheus exporter.

/// Messages consumed from Kafka.
pub const CONSUMED: &str = "auditlog_ingest_consumed_messages_total";
/// Rows acknowledged by ClickHouse.
pub const INSERTED: &str = "auditlog_ingest_inserted_rows_total";
/// Batches acknowledged by ClickHouse.
pub const BATCHES: &str = "auditlog_ingest_batches_total";
/// Poison messages acknowledged by the dead-letter topic, by `kind`.
pub const DEAD_LETTERED: &str = "auditlog_ingest_dead_lettered_total";
/// Replayed messages still poison for the reason their dead letter records, so no new letter
/// was written, by `kind`.
pub const REPLAYED_STILL_POISON: &str = "auditlog_ingest_replayed_still_poison_total";
/// Attempts after a transient failure, by `stage` (`intent_load`, `intent`, `dead_letter`,
/// `insert`).
pub const RETRIES: &str = "auditlog_ingest_retries_total";
/// Rows per batch.
pub const BATCH_ROWS: &str = "auditlog_ingest_batch_rows";
/// Encoded bytes per batch.
pub const BATCH_BYTES: &str = "auditlog_ingest_batch_bytes";
/// Seconds from sealing a batch to ClickHouse's acknowledgement, retries included.
pub const BATCH_LATENCY: &str = "auditlog_ingest_batch_latency_seconds";
/// Seconds from an event's own time to ClickHouse acknowledging its row.
pub const FRESHNESS: &str = "auditlog_ingest_freshness_seconds";
/// Messages behind the partition's high watermark, by `partition`.
pub const PARTITION_LAG: &str = "auditlog_ingest_partition_lag";
/// Offset commits sent to Kafka.
pub const COMMITS: &str = "auditlog_ingest_commits_total";
/// Messages delivered again by Kafka at an offset already taken, and skipped.
pub const REDELIVERED: &str = "auditlog_ingest_redelivered_messages_total";
/// Partitions currently assigned to this ingester.
pub const ASSIGNED_PARTITIONS: &str = "auditlog_ingest_assigned_partitions";
/// 1 while ClickHouse writes are failing and being retried.
pub const CLICKHOUSE_DOWN: &str = "auditlog_ingest_clickhouse_unavailable";
/// Replayed batches whose recomputed digest differs from the recorded one.
pub const DIGEST_MISMATCHES: &str = "auditlog_ingest_digest_mismatches_total";
/// Signed checkpoints stored in ClickHouse and produced to Kafka.
pub const CHECKPOINTS: &str = "auditlog_ingest_checkpoints_total";
/// Checkpoints that could not be written (logged; the next one covers their heads).
pub const CHECKPOINT_FAILURES: &str = "auditlog_ingest_checkpoint_failures_total";
/// Unix time of the newest checkpoint written.
pub const LAST_CHECKPOINT: &str = "auditlog_ingest_last_checkpoint_timestamp_seconds";

/// Microseconds spent in each stage of the hot path, by `stage` (`handover`, `decode`,
/// `encode`, `compress`): with the consumed count, the time per event of each.
pub const STAGE_MICROS: &str = "auditlog_ingest_stage_microseconds_total";
/// Registers descriptions and units for every ingester metric.
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(CONSUMED, Unit::Count, "messages consumed from kafka");
    describe_counter!(INSERTED, Unit::Count, "rows acknowledged by clickhouse");
    describe_counter!(BATCHES, Unit::Count, "batches acknowledged by clickhouse");
    describe_counter!(
        DEAD_LETTERED,
        Unit::Count,
        "poison messages sent to the dead-letter topic, by kind"
    );
    describe_counter!(
        REPLAYED_STILL_POISON,
        Unit::Count,
        "replayed messages still poison, already recorded by their dead letter, by kind"
    );
    describe_counter!(
        RETRIES,
        Unit::Count,
        "re-sends after a transient failure, by stage"
    );
    describe_histogram!(BATCH_ROWS, Unit::Count, "rows per batch");
    describe_histogram!(BATCH_BYTES, Unit::Bytes, "encoded bytes per batch");
    describe_histogram!(
        BATCH_LATENCY,
        Unit::Seconds,
        "seal to clickhouse acknowledgement, retries included"
    );
    describe_histogram!(
        FRESHNESS,
        Unit::Seconds,
        "event time to clickhouse acknowledgement"
    );
    describe_gauge!(
        PARTITION_LAG,
        Unit::Count,
        "messages behind the high watermark, by partition"
    );
    describe_counter!(COMMITS, Unit::Count, "offset commits sent to kafka");
    describe_counter!(
        REDELIVERED,
        Unit::Count,
        "messages delivered again at an offset already taken, skipped"
    );
    describe_gauge!(
        ASSIGNED_PARTITIONS,
        Unit::Count,
        "partitions assigned to this ingester"
    );
    describe_counter!(
        DIGEST_MISMATCHES,
        Unit::Count,
        "replayed batches that hashed differently from their recorded digest"
    );
    describe_counter!(
        STAGE_MICROS,
        Unit::Microseconds,
        "time spent in each stage of the hot path, by stage"
    );
    describe_counter!(CHECKPOINTS, Unit::Count, "signed checkpoints written");
    describe_counter!(
        CHECKPOINT_FAILURES,
        Unit::Count,
        "signed checkpoints that could not be written"
    );
    describe_gauge!(
        LAST_CHECKPOINT,
        Unit::Seconds,
        "unix time of the newest signed checkpoint written"
    );
    describe_gauge!(
        CLICKHOUSE_DOWN,
        Unit::Count,
        "1 while clickhouse writes are failing and retried"
    );
}

/// Histogram buckets for the Prometheus exporter, per metric (seconds, rows, bytes).
pub fn histogram_buckets() -> Vec<(&'static str, Vec<f64>)> {
    vec![
        (
            FRESHNESS,
            vec![
                0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
            ],
        ),
        (
            BATCH_LATENCY,
            vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ],
        ),
        (
            BATCH_ROWS,
            vec![
                1.0, 10.0, 100.0, 1_000.0, 5_000.0, 10_000.0, 25_000.0, 50_000.0, 100_000.0,
            ],
        ),
        (
            BATCH_BYTES,
            vec![1e3, 1e4, 1e5, 1e6, 4e6, 8e6, 16e6, 32e6, 64e6],
        ),
    ]
}
