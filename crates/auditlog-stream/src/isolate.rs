//! Finding the events a destination refuses in a batch it refused whole
//! ([`FailureClass::Invalid`]: an HTTP 400 that does not say which event).
//!
//! ```text
//!  batch [a b c d e f] refused ─▶ [a b c] ok   [d e f] refused
//!                                              ─▶ [d] ok   [e f] refused
//!                                                          ─▶ [e] refused alone   [f] ok
//!  ─▶ e is refused for good (others were taken): dead-letter e, commit past the batch
//! ```
//!
//! Halves carry narrower offset ranges of their own, so a receiver that keys on the range
//! never mistakes one for another. An event refused alone counts as refused for good only
//! when the destination has shown it takes this sink's events: it took another part of the
//! batch, or, for a batch of that one event, (`proven`) it took events at the sink's last
//! delivery. A destination that
//! refuses every event is more likely wrongly set up: the batch is retried and reported
//! instead, and the search gives up after one way down the halves (about 2·log2(n)
//! requests) has found nothing taken, so such a destination is not sent a request per
//! event at every retry. Anything but a confirmation or a refusal of content (a transient
//! failure, a 401) stops the search, and the batch is retried whole after the backoff.

use crate::dead_letter::names_records_of;
use crate::sink::{Batch, DeliveryError, FailureClass, Rejection, Sink};

/// The records to dead-letter when `error` shows that the destination refuses them, and
/// only them, for good: named by the destination ([`FailureClass::Permanent`]), or found
/// by sending parts of a batch refused whole ([`FailureClass::Invalid`]). `None`: the batch
/// is retried.
pub(crate) async fn refused_for_good(
    sink: &dyn Sink,
    batch: &Batch,
    error: &DeliveryError,
    proven: bool,
) -> Option<Vec<Rejection>> {
    match error.class {
        FailureClass::Permanent if names_records_of(batch, &error.rejected) => {
            Some(error.rejected.clone())
        }
        FailureClass::Invalid => isolate(sink, batch, error.rejected.clone(), proven).await,
        _ => None,
    }
}

/// The events of `batch` the destination refuses on their own, each with the reason it gave
/// when sent alone, after delivering every other event of the batch; `None` when nothing
/// can be settled (see the module's notes). `refused` is the batch's own refusal
/// ([`crate::DeliveryError::rejected`] of the [`FailureClass::Invalid`] answer).
pub(crate) async fn isolate(
    sink: &dyn Sink,
    batch: &Batch,
    refused: Vec<Rejection>,
    proven: bool,
) -> Option<Vec<Rejection>> {
    let mut taken = false;
    // Requests while nothing is taken: enough to reach single events once.
    let mut budget = 2 * (usize::BITS - batch.records.len().leading_zeros()) as usize + 2;
    let mut alone = Vec::new();
    let mut pending = vec![(batch.clone(), refused)];
    while let Some((group, rejections)) = pending.pop() {
        if group.records.len() <= 1 {
            alone.extend(rejections);
            continue;
        }
        for half in halves(&group) {
            if !taken {
                if budget == 0 {
                    return None;
                }
                budget -= 1;
            }
            match sink.deliver(&half).await {
                Ok(()) => taken = true,
                Err(error)
                    if error.class == FailureClass::Invalid
                        && error.rejected.len() == half.records.len() =>
                {
                    pending.push((half, error.rejected));
                }
                Err(error)
                    if error.class == FailureClass::Permanent
                        && names_records_of(&half, &error.rejected) =>
                {
                    taken = true;
                    alone.extend(error.rejected);
                }
                Err(error) => {
                    tracing::info!(%error, "narrowing down a refused batch stopped; it is sent again whole");
                    return None;
                }
            }
        }
    }
    // The last delivery vouches for one lone event only: a destination newly refusing
    // everything costs one event in the dead-letter topic, not a batch.
    let lone = batch.records.len() == 1;
    if alone.is_empty() || !(taken || (proven && lone)) {
        return None;
    }
    alone.sort_by_key(|rejection| rejection.offset);
    Some(alone)
}

/// The two halves of a batch of two records or more, each with the part of the offset
/// range its records are in.
fn halves(batch: &Batch) -> [Batch; 2] {
    let middle = batch.records.len() / 2;
    let split = batch.records[middle].offset;
    let part = |first_offset: i64, last_offset: i64, records: &[crate::sink::Record]| Batch {
        topic: batch.topic.clone(),
        partition: batch.partition,
        first_offset,
        last_offset,
        records: records.to_vec(),
        // Only the archive counts these, and it never refuses content.
        filtered: 0,
        malformed: 0,
        format: batch.format,
    };
    [
        part(batch.first_offset, split - 1, &batch.records[..middle]),
        part(split, batch.last_offset, &batch.records[middle..]),
    ]
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Mutex;

    use async_trait::async_trait;
    use uuid::Uuid;

    use super::*;
    use crate::format::Format;
    use crate::sink::Record;

    /// A destination that takes any request without the offsets it refuses, and refuses
    /// whole any request with one of them, as a receiver validating a batch does.
    #[derive(Debug, Default)]
    struct Refusing {
        refuses: BTreeSet<i64>,
        transient_after: Option<usize>,
        requests: Mutex<Vec<(i64, i64, usize)>>,
        taken: Mutex<Vec<i64>>,
    }

    #[async_trait]
    impl Sink for Refusing {
        async fn deliver(&self, batch: &Batch) -> Result<(), DeliveryError> {
            let mut requests = self.requests.lock().unwrap();
            requests.push((batch.first_offset, batch.last_offset, batch.records.len()));
            if self
                .transient_after
                .is_some_and(|after| requests.len() > after)
            {
                return Err(DeliveryError::transient("busy"));
            }
            if batch
                .records
                .iter()
                .any(|record| self.refuses.contains(&record.offset))
            {
                return Err(DeliveryError::invalid(batch, "http_422", "HTTP 422"));
            }
            let mut taken = self.taken.lock().unwrap();
            taken.extend(batch.records.iter().map(|record| record.offset));
            Ok(())
        }
    }

    fn batch(offsets: std::ops::Range<i64>) -> Batch {
        Batch {
            topic: "t".into(),
            partition: 2,
            first_offset: offsets.start,
            last_offset: offsets.end - 1,
            records: offsets
                .map(|offset| Record {
                    offset,
                    id: Uuid::from_u128(offset as u128),
                    time: time::OffsetDateTime::UNIX_EPOCH,
                    json: b"{}".to_vec(),
                })
                .collect(),
            filtered: 0,
            malformed: 0,
            format: Format::Coder,
        }
    }

    async fn run(sink: &Refusing, batch: &Batch, proven: bool) -> Option<Vec<i64>> {
        let refused = sink.deliver(batch).await.unwrap_err().rejected;
        isolate(sink, batch, refused, proven)
            .await
            .map(|found| found.iter().map(|rejection| rejection.offset).collect())
    }

    #[tokio::test]
    async fn the_refused_events_are_found_and_every_other_one_is_taken_once() {
        let sink = Refusing {
            refuses: BTreeSet::from([13, 21, 22]),
            ..Refusing::default()
        };
        let batch = batch(10..30);
        assert_eq!(run(&sink, &batch, false).await, Some(vec![13, 21, 22]));
        let mut taken = sink.taken.lock().unwrap().clone();
        taken.sort_unstable();
        let expected: Vec<i64> = (10..30).filter(|o| ![13, 21, 22].contains(o)).collect();
        assert_eq!(taken, expected);
        // Each half named its own range, inside the batch's, and never the whole batch's.
        for (first, last, records) in sink.requests.lock().unwrap().iter().skip(1) {
            assert!(*first >= 10 && *last <= 29 && (*first, *last) != (10, 29));
            assert!(*records >= 1 && (last - first + 1) as usize == *records);
        }
    }

    #[tokio::test]
    async fn nothing_is_dead_lettered_by_a_destination_that_took_nothing() {
        let everything = Refusing {
            refuses: (10..14).collect(),
            ..Refusing::default()
        };
        assert_eq!(run(&everything, &batch(10..14), false).await, None);
        // A lone event, refused: for good only once the destination took others in the run.
        let lone = Refusing {
            refuses: BTreeSet::from([5]),
            ..Refusing::default()
        };
        assert_eq!(run(&lone, &batch(5..6), false).await, None);
        assert_eq!(run(&lone, &batch(5..6), true).await, Some(vec![5]));
        // The last delivery vouches for a lone event, not for a batch refused throughout.
        assert_eq!(run(&everything, &batch(10..14), true).await, None);
    }

    #[tokio::test]
    async fn a_destination_refusing_everything_gets_one_way_down_not_a_request_per_event() {
        let sink = Refusing {
            refuses: (0..512).collect(),
            ..Refusing::default()
        };
        assert_eq!(run(&sink, &batch(0..512), true).await, None);
        let requests = sink.requests.lock().unwrap().len();
        assert!(requests <= 1 + 2 * 10 + 2, "{requests} requests");
        // Dense refusals with some events taken are still all found.
        let dense = Refusing {
            refuses: (0..64).filter(|offset| offset % 3 != 0).collect(),
            ..Refusing::default()
        };
        let expected: Vec<i64> = (0..64).filter(|offset| offset % 3 != 0).collect();
        assert_eq!(run(&dense, &batch(0..64), false).await, Some(expected));
    }

    #[tokio::test]
    async fn a_transient_failure_stops_the_search() {
        let sink = Refusing {
            refuses: BTreeSet::from([3]),
            transient_after: Some(2),
            ..Refusing::default()
        };
        assert_eq!(run(&sink, &batch(0..8), false).await, None);
    }
}
