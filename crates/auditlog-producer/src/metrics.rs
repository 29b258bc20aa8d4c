//! The producer's metrics, through the `metrics` facade: the host service installs a
//! recorder (Prometheus, StatsD, ...) and exports them with its own.
//!
//! Every series carries a `topic` label. Without a recorder the calls cost next to nothing.

use std::sync::Once;

use metrics::{Counter, Gauge, Histogram, Unit};

/// Events Kafka acknowledged.
pub const EVENTS_SENT_TOTAL: &str = "auditlog_producer_events_sent_total";
/// Events enqueued that Kafka did not take (refused, or the delivery timeout passed).
pub const EVENTS_FAILED_TOTAL: &str = "auditlog_producer_events_failed_total";
/// Events refused at the call, by `reason`: `invalid`, `queue_full`, `closed`, `enqueue`.
pub const EVENTS_REJECTED_TOTAL: &str = "auditlog_producer_events_rejected_total";
/// Events enqueued and waiting for their acknowledgement (a gauge).
pub const EVENTS_QUEUED: &str = "auditlog_producer_events_queued";
/// Time from enqueue to acknowledgement, in seconds.
pub const DELIVERY_LATENCY_SECONDS: &str = "auditlog_producer_delivery_latency_seconds";
/// Times the Kafka client hit a fatal error and was replaced by a new one.
pub const CLIENT_RECOVERIES_TOTAL: &str = "auditlog_producer_client_recoveries_total";
/// Events sent again on a new client after the old one's fatal error failed them.
pub const EVENTS_RESENT_TOTAL: &str = "auditlog_producer_events_resent_total";

/// Registers the descriptions and units of the producer's metrics with the installed
/// recorder. Building a producer calls it; call it yourself if the recorder is installed
/// later.
pub fn describe_metrics() {
    static DESCRIBED: Once = Once::new();
    DESCRIBED.call_once(|| {
        metrics::describe_counter!(
            EVENTS_SENT_TOTAL,
            Unit::Count,
            "Audit events Kafka acknowledged"
        );
        metrics::describe_counter!(
            EVENTS_FAILED_TOTAL,
            Unit::Count,
            "Audit events enqueued that Kafka did not take"
        );
        metrics::describe_counter!(
            EVENTS_REJECTED_TOTAL,
            Unit::Count,
            "Audit events refused at the call (invalid, queue full, shut down)"
        );
        metrics::describe_gauge!(
            EVENTS_QUEUED,
            Unit::Count,
            "Audit events waiting for their acknowledgement"
        );
        metrics::describe_histogram!(
            DELIVERY_LATENCY_SECONDS,
            Unit::Seconds,
            "Time from enqueue to acknowledgement of an audit event"
        );
        metrics::describe_counter!(
            CLIENT_RECOVERIES_TOTAL,
            Unit::Count,
            "Kafka clients replaced after a fatal error"
        );
        metrics::describe_counter!(
            EVENTS_RESENT_TOTAL,
            Unit::Count,
            "Audit events sent again on a new Kafka client after a fatal error"
        );
    });
}

/// Why an event was refused at the call, as the `reason` label says it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Rejection {
    Invalid,
    QueueFull,
    Closed,
    Enqueue,
}

/// The handles of one producer's series, resolved once so the hot path only bumps them.
#[derive(Debug, Clone)]
pub(crate) struct ProducerMetrics {
    pub(crate) sent: Counter,
    pub(crate) failed: Counter,
    pub(crate) queued: Gauge,
    pub(crate) latency: Histogram,
    pub(crate) recoveries: Counter,
    pub(crate) resent: Counter,
    rejected_invalid: Counter,
    rejected_queue_full: Counter,
    rejected_closed: Counter,
    rejected_enqueue: Counter,
}

impl ProducerMetrics {
    pub(crate) fn new(topic: &str) -> Self {
        describe_metrics();
        let rejected = |reason: &'static str| metrics::counter!(EVENTS_REJECTED_TOTAL, "topic" => topic.to_owned(), "reason" => reason);
        ProducerMetrics {
            sent: metrics::counter!(EVENTS_SENT_TOTAL, "topic" => topic.to_owned()),
            failed: metrics::counter!(EVENTS_FAILED_TOTAL, "topic" => topic.to_owned()),
            queued: metrics::gauge!(EVENTS_QUEUED, "topic" => topic.to_owned()),
            latency: metrics::histogram!(DELIVERY_LATENCY_SECONDS, "topic" => topic.to_owned()),
            recoveries: metrics::counter!(CLIENT_RECOVERIES_TOTAL, "topic" => topic.to_owned()),
            resent: metrics::counter!(EVENTS_RESENT_TOTAL, "topic" => topic.to_owned()),
            rejected_invalid: rejected("invalid"),
            rejected_queue_full: rejected("queue_full"),
            rejected_closed: rejected("closed"),
            rejected_enqueue: rejected("enqueue"),
        }
    }

    pub(crate) fn rejected(&self, rejection: Rejection) {
        let counter = match rejection {
            Rejection::Invalid => &self.rejected_invalid,
            Rejection::QueueFull => &self.rejected_queue_full,
            Rejection::Closed => &self.rejected_closed,
            Rejection::Enqueue => &self.rejected_enqueue,
        };
        counter.increment(1);
    }
}
