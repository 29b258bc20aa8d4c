//! Microseconds since the Unix epoch: the one time unit of the Avro `timestamp-micros`
//! field, of ClickHouse's `DateTime64(6)` columns and of the read side's cursors.
//!
//! The Avro encoders need the exact conversions (a time beyond `i64` is an error there);
//! validation and the other crates need a total one that saturates instead.

use time::OffsetDateTime;

use crate::EventError;

const MICROS_PER_SECOND: i64 = 1_000_000;
const NANOS_PER_MICRO: i64 = 1_000;

/// Microseconds since the Unix epoch, floored, saturating at the ends of `i64`.
pub fn unix_micros_saturating(time: OffsetDateTime) -> i64 {
    let micros = time.unix_timestamp_nanos().div_euclid(1000);
    i64::try_from(micros).unwrap_or(if micros < 0 { i64::MIN } else { i64::MAX })
}

/// Microseconds since the Unix epoch, floored, as `timestamp-micros` stores them.
pub(crate) fn unix_micros(time: OffsetDateTime) -> Result<i64, EventError> {
    // Seconds (floored) and the sub-second part avoid the slow 128-bit nanosecond path.
    time.unix_timestamp()
        .checked_mul(MICROS_PER_SECOND)
        .and_then(|micros| micros.checked_add(i64::from(time.nanosecond()) / NANOS_PER_MICRO))
        .ok_or(EventError::TimeOutOfRange {
            micros: unix_micros_saturating(time),
        })
}

/// The UTC time `micros` after the Unix epoch.
pub(crate) fn from_unix_micros(micros: i64) -> Result<OffsetDateTime, EventError> {
    let seconds = micros.div_euclid(MICROS_PER_SECOND);
    let sub_second_nanos = micros.rem_euclid(MICROS_PER_SECOND) * NANOS_PER_MICRO;
    OffsetDateTime::from_unix_timestamp(seconds)
        .and_then(|time| time.replace_nanosecond(sub_second_nanos as u32))
        .map_err(|_| EventError::TimeOutOfRange { micros })
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn times_round_trip_through_micros_including_before_1970() {
        for micros in [
            0,
            1,
            -1,
            -1_000_001,
            1_748_781_296_789_012,
            253_402_300_799_999_999,
        ] {
            let time = from_unix_micros(micros).unwrap();
            assert_eq!(unix_micros(time).unwrap(), micros);
        }
        assert!(matches!(
            from_unix_micros(i64::MAX),
            Err(EventError::TimeOutOfRange { micros: i64::MAX })
        ));
    }

    #[test]
    fn saturating_micros_floor_and_clamp() {
        assert_eq!(
            unix_micros_saturating(datetime!(1969-12-31 23:59:59.999_999_5 UTC)),
            -1
        );
        assert_eq!(
            unix_micros_saturating(datetime!(2025-06-01 12:34:56.789_012 UTC)),
            1_748_781_296_789_012
        );
        for time in [OffsetDateTime::UNIX_EPOCH, datetime!(-9999-01-01 0:00 UTC)] {
            assert_eq!(unix_micros_saturating(time), unix_micros(time).unwrap());
        }
    }
}
