//! What a backfill re-sends: a time range of the store or an offset range of one partition,
//! both half-open (`[from, to)`), checked before anything is read.

use std::fmt;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::StreamError;

/// The range a backfill re-sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackfillRange {
    /// The events with `from <= time < to`, read from ClickHouse.
    Time {
        /// The first instant included.
        from: OffsetDateTime,
        /// The first instant excluded.
        to: OffsetDateTime,
    },
    /// The messages of `partition` with `from <= offset < to`, read from Kafka.
    Offsets {
        /// The partition.
        partition: i32,
        /// The first offset included.
        from: i64,
        /// The first offset excluded.
        to: i64,
    },
}

impl BackfillRange {
    /// `[from, to)` of the store; `from` must be before `to`.
    ///
    /// ```
    /// use auditlog_stream::BackfillRange;
    ///
    /// let from = BackfillRange::parse_time("--from", "2026-12-01")?;
    /// let to = BackfillRange::parse_time("--to", "2026-12-01T12:00:00Z")?;
    /// assert!(BackfillRange::time(from, to).is_ok());
    /// assert!(BackfillRange::time(to, from).is_err());
    /// # Ok::<(), auditlog_stream::StreamError>(())
    /// ```
    pub fn time(from: OffsetDateTime, to: OffsetDateTime) -> Result<Self, StreamError> {
        if from >= to {
            return Err(StreamError::Backfill(format!(
                "--from {} is not before --to {}: the range [from, to) is empty",
                rfc3339(from),
                rfc3339(to)
            )));
        }
        Ok(Self::Time { from, to })
    }

    /// `[from, to)` of `partition`; offsets are 0 or more and `from` before `to`.
    pub fn offsets(partition: i32, from: i64, to: i64) -> Result<Self, StreamError> {
        if partition < 0 {
            return Err(StreamError::Backfill(format!(
                "--partition {partition}: partitions are numbered from 0"
            )));
        }
        if from < 0 || from >= to {
            return Err(StreamError::Backfill(format!(
                "--from-offset {from} --to-offset {to}: expected 0 <= from-offset < to-offset \
                 (to-offset is the first offset not re-sent)"
            )));
        }
        Ok(Self::Offsets {
            partition,
            from,
            to,
        })
    }

    /// An instant as the command line gives it: RFC 3339 (`2026-12-01T08:00:00Z`) or a day
    /// (`2026-12-01`, its midnight UTC). `flag` names it in the error.
    pub fn parse_time(flag: &str, text: &str) -> Result<OffsetDateTime, StreamError> {
        if let Ok(time) = OffsetDateTime::parse(text, &Rfc3339) {
            return Ok(time.to_offset(time::UtcOffset::UTC));
        }
        let day = time::macros::format_description!("[year]-[month]-[day]");
        time::Date::parse(text, &day)
            .map(|date| date.midnight().assume_utc())
            .map_err(|_| {
                StreamError::Backfill(format!(
                    "{flag} {text:?}: expected RFC 3339 (2026-12-01T08:00:00Z) or a day (2026-12-01, midnight UTC)"
                ))
            })
    }

    /// The name of the run in an archive (`PREFIX/backfill/RUN/`): the same for the same
    /// range, so a retried backfill replaces its own objects.
    pub(crate) fn run_name(&self, topic: &str) -> String {
        match self {
            Self::Time { from, to } => format!("time-{}-{}", compact(*from), compact(*to)),
            Self::Offsets {
                partition,
                from,
                to,
            } => format!("offsets-{topic}-{partition}-{from}-{to}"),
        }
    }

    /// The `topic` of the batches made from the store's events (`backfill-FROM-TO`): no
    /// topic of the live stream, so no batch name (`Batch::range_key`) is one of its.
    pub(crate) fn batch_topic(&self) -> String {
        match self {
            Self::Time { from, to } => format!("backfill-{}-{}", compact(*from), compact(*to)),
            Self::Offsets { .. } => String::new(),
        }
    }
}

impl fmt::Display for BackfillRange {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Time { from, to } => {
                write!(formatter, "--from {} --to {}", rfc3339(*from), rfc3339(*to))
            }
            Self::Offsets {
                partition,
                from,
                to,
            } => write!(
                formatter,
                "--partition {partition} --from-offset {from} --to-offset {to}"
            ),
        }
    }
}

/// Whether the partition still holds `[from, to)`, given its `(low, high)` watermarks.
pub(crate) fn check_offsets_held(
    topic: &str,
    partition: i32,
    (from, to): (i64, i64),
    (low, high): (i64, i64),
) -> Result<(), StreamError> {
    if from < low {
        return Err(StreamError::Backfill(format!(
            "{topic}/{partition} holds offsets {low}..{high} now: offsets {from}..{} are past the \
             topic's retention. Re-send those events from ClickHouse with the time form: \
             auditlog stream backfill --sink NAME --from TIME --to TIME",
            low.min(to) - 1
        )));
    }
    if to > high {
        return Err(StreamError::Backfill(format!(
            "{topic}/{partition} ends at offset {} (its next offset is {high}): --to-offset {to} \
             lies beyond it",
            high - 1
        )));
    }
    Ok(())
}

fn rfc3339(time: OffsetDateTime) -> String {
    time.format(&Rfc3339).unwrap_or_else(|_| time.to_string())
}

/// `20261201T080000Z`, or with microseconds (`20261201T080000.000001Z`) when it has them.
fn compact(time: OffsetDateTime) -> String {
    let time = time.to_offset(time::UtcOffset::UTC);
    let micros = time.microsecond();
    let fraction = if micros == 0 {
        String::new()
    } else {
        format!(".{micros:06}")
    };
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}{fraction}Z",
        time.year(),
        u8::from(time.month()),
        time.day(),
        time.hour(),
        time.minute(),
        time.second()
    )
}
