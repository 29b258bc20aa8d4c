//! The series `auditlog stream` publishes through the `metrics` facade, each labelled with
//! `sink` (its name).
//!
//! | name | type | what |
//! |---|---|---|
//! | `auditlog_stream_events_delivered_total` | counter | events the destination confirmed |
//! | `auditlog_stream_batches_delivered_total` | counter | batches the destination confirmed |
//! | `auditlog_stream_events_filtered_total` | counter | events the sink's filter left out |
//! | `auditlog_stream_messages_malformed_total` | counter | messages that are not valid events, by `reason` (`decode`, `unknown_schema`, `invalid_event`, `null_value`) |
//! | `auditlog_stream_delivery_failures_total` | counter | failed attempts, by `class` (`transient`, `rejected`, `invalid`: refused for its content and not narrowed down) |
//! | `auditlog_stream_events_dead_lettered_total` | counter | events the destination refused for good, written to the sink's dead-letter topic, by `reason` (the destination's error type, e.g. `mapper_parsing_exception`) |
//! | `auditlog_stream_delivery_retries_total` | counter | attempts that re-sent a batch |
//! | `auditlog_stream_lag_messages` | gauge | messages of the assigned partitions not yet committed |
//! | `auditlog_stream_seconds_since_last_success` | gauge | since the sink last delivered or last had nothing waiting |
//! | `auditlog_stream_sink_failing` | gauge | 1 while the sink's current batch is failing |

/// Events confirmed by the destination.
pub const EVENTS_DELIVERED: &str = "auditlog_stream_events_delivered_total";
/// Batches confirmed by the destination.
pub const BATCHES_DELIVERED: &str = "auditlog_stream_batches_delivered_total";
/// Events the filter left out.
pub const EVENTS_FILTERED: &str = "auditlog_stream_events_filtered_total";
/// Messages that are not valid events, by reason.
pub const MESSAGES_MALFORMED: &str = "auditlog_stream_messages_malformed_total";
/// Events refused for good and written to the sink's dead-letter topic, by reason.
pub const EVENTS_DEAD_LETTERED: &str = "auditlog_stream_events_dead_lettered_total";
/// Failed delivery attempts, by class.
pub const DELIVERY_FAILURES: &str = "auditlog_stream_delivery_failures_total";
/// Attempts that re-sent a batch.
pub const DELIVERY_RETRIES: &str = "auditlog_stream_delivery_retries_total";
/// Messages not yet committed, over the assigned partitions.
pub const LAG_MESSAGES: &str = "auditlog_stream_lag_messages";
/// Seconds since the sink last delivered or last had nothing waiting.
pub const SECONDS_SINCE_LAST_SUCCESS: &str = "auditlog_stream_seconds_since_last_success";
/// 1 while the sink's current batch is failing.
pub const SINK_FAILING: &str = "auditlog_stream_sink_failing";
