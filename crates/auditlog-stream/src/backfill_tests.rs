use std::time::Duration;

use time::macros::datetime;
use uuid::Uuid;

use super::*;
use crate::config::BatchLimits;
use crate::format::Format;

#[test]
fn ranges_are_half_open_and_refuse_empty_or_negative_ones() {
    let from = datetime!(2026-12-01 00:00 UTC);
    let to = datetime!(2026-12-02 00:00 UTC);
    assert!(BackfillRange::time(from, to).is_ok());
    let error = BackfillRange::time(to, from).unwrap_err().to_string();
    assert!(error.contains("is not before --to"), "{error}");
    assert!(BackfillRange::time(from, from).is_err());
    assert!(BackfillRange::offsets(0, 0, 1).is_ok());
    assert!(BackfillRange::offsets(0, 5, 5).is_err());
    assert!(BackfillRange::offsets(0, -1, 5).is_err());
    assert!(
        BackfillRange::offsets(-1, 0, 5)
            .unwrap_err()
            .to_string()
            .contains("--partition -1")
    );
}

#[test]
fn times_are_rfc3339_or_days_at_midnight_utc() {
    assert_eq!(
        BackfillRange::parse_time("--from", "2026-12-01").unwrap(),
        datetime!(2026-12-01 00:00 UTC)
    );
    assert_eq!(
        BackfillRange::parse_time("--from", "2026-12-01T09:30:00+02:00").unwrap(),
        datetime!(2026-12-01 07:30 UTC)
    );
    let error = BackfillRange::parse_time("--to", "yesterday")
        .unwrap_err()
        .to_string();
    assert!(error.contains("--to \"yesterday\""), "{error}");
}

#[test]
fn a_range_names_its_archive_run_and_its_batches() {
    let range = BackfillRange::time(
        datetime!(2026-12-01 00:00 UTC),
        datetime!(2026-12-01 12:00:00.000001 UTC),
    )
    .unwrap();
    assert_eq!(
        range.run_name("audit-events"),
        "time-20261201T000000Z-20261201T120000.000001Z"
    );
    assert_eq!(
        range.batch_topic(),
        "backfill-20261201T000000Z-20261201T120000.000001Z"
    );
    assert_eq!(
        range.to_string(),
        "--from 2026-12-01T00:00:00Z --to 2026-12-01T12:00:00.000001Z"
    );
    let offsets = BackfillRange::offsets(3, 10, 20).unwrap();
    assert_eq!(
        offsets.run_name("audit-events"),
        "offsets-audit-events-3-10-20"
    );
}

#[test]
fn offsets_past_retention_point_at_the_time_form() {
    let error = range::check_offsets_held("audit-events", 2, (0, 50), (40, 100))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("offsets 0..39 are past the topic's retention"),
        "{error}"
    );
    assert!(error.contains("--from TIME --to TIME"), "{error}");
    let error = range::check_offsets_held("audit-events", 2, (40, 101), (40, 100))
        .unwrap_err()
        .to_string();
    assert!(error.contains("ends at offset 99"), "{error}");
    assert!(range::check_offsets_held("audit-events", 2, (40, 100), (40, 100)).is_ok());
}

fn record(place: i64, bytes: usize) -> Record {
    Record {
        offset: place,
        id: Uuid::from_u128(place as u128),
        time: datetime!(2026-12-01 00:00 UTC),
        json: vec![b'x'; bytes],
    }
}

#[test]
fn batches_from_the_store_cover_every_place_read_and_respect_the_limits() {
    let limits = BatchLimits {
        max_events: 2,
        max_bytes: 1000,
        max_age: Duration::from_secs(1),
    };
    let mut pending = Pending::new("backfill-a-b".to_owned(), Format::Coder);
    assert!(!pending.has_any());
    pending.skip(0);
    assert!(!pending.push(record(1, 10), &limits));
    assert!(pending.push(record(2, 10), &limits), "two events fill it");
    let first = pending.take();
    assert_eq!((first.first_offset, first.last_offset), (0, 2));
    assert_eq!((first.records.len(), first.filtered), (2, 1));
    assert_eq!(first.range_key(), "backfill-a-b/0/0-2");
    assert!(!pending.has_any());
    pending.skip(3);
    pending.skip(4);
    assert!(
        pending.push(record(5, 2000), &limits),
        "over the byte limit alone"
    );
    let second = pending.take();
    assert_eq!((second.first_offset, second.last_offset), (3, 5));
    assert_eq!((second.records.len(), second.filtered), (1, 2));
}

/// Takes every record but the one at `refuse`, which it names as refused for good; or,
/// with `refuse` `None`, fails every attempt.
#[derive(Debug)]
struct Picky {
    refuse: Option<i64>,
    attempts: std::sync::atomic::AtomicU32,
}

#[async_trait::async_trait]
impl Sink for Picky {
    async fn deliver(&self, batch: &Batch) -> Result<(), DeliveryError> {
        self.attempts
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        match self.refuse {
            None => Err(DeliveryError::transient("down")),
            Some(offset) if batch.records.iter().any(|record| record.offset == offset) => {
                Err(DeliveryError::permanent(
                    "one item refused",
                    vec![crate::sink::Rejection {
                        offset,
                        kind: "mapper_parsing_exception".into(),
                        reason: "failed to parse".into(),
                    }],
                ))
            }
            Some(_) => Ok(()),
        }
    }
}

fn run_with(sink: Picky) -> (BackfillConfig, Target) {
    let file: crate::StreamFile = toml::from_str(
        r#"
        [[sinks]]
        name = "siem"
        kind = "webhook"
        url = "http://127.0.0.1:9/audit"
        secret = "a secret of sixteen bytes or more"
        "#,
    )
    .unwrap();
    let config = BackfillConfig {
        brokers: String::new(),
        topic: "t".into(),
        kafka_properties: Default::default(),
        sink: crate::sinks_from_file(&file, &[]).unwrap().remove(0),
        retry: auditlog_ingester::RetryPolicy {
            initial: Duration::from_millis(1),
            max: Duration::from_millis(2),
        },
    };
    (config, Target::Sink(Box::new(sink)))
}

fn batch_of(places: std::ops::Range<i64>) -> Batch {
    let mut pending = Pending::new("backfill-a-b".to_owned(), Format::Coder);
    for place in places {
        pending.push(record(place, 10), &BatchLimits::default());
    }
    pending.take()
}

#[tokio::test]
async fn an_event_refused_for_good_is_counted_and_the_rest_delivered() {
    let (config, target) = run_with(Picky {
        refuse: Some(2),
        attempts: Default::default(),
    });
    let (_stop, shutdown) = watch::channel(false);
    let mut run = Run {
        config: &config,
        target,
        shutdown,
        report: BackfillReport::default(),
    };
    run.deliver(batch_of(0..4)).await.unwrap();
    run.deliver(batch_of(4..6)).await.unwrap();
    assert_eq!(
        (run.report.delivered, run.report.refused, run.report.batches),
        (5, 1, 2)
    );
}

#[tokio::test]
async fn a_destination_that_keeps_failing_fails_the_run_after_the_attempts() {
    let (config, target) = run_with(Picky {
        refuse: None,
        attempts: Default::default(),
    });
    let (_stop, shutdown) = watch::channel(false);
    let mut run = Run {
        config: &config,
        target,
        shutdown,
        report: BackfillReport::default(),
    };
    let error = run.deliver(batch_of(0..3)).await.unwrap_err().to_string();
    assert!(
        error.contains(&format!("failed {ATTEMPTS} times")),
        "{error}"
    );
    assert!(error.contains("backfill-a-b/0/0-2"), "{error}");
    assert_eq!(run.report.failures, u64::from(ATTEMPTS));
    assert_eq!(run.report.delivered, 0);
}
