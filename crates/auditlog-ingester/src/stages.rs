//! Time spent in each stage of the hot path, so that a slower ingester names its stage.
//!
//! ```text
//!  poll thread: copy out of librdkafka + hand over ─▶ handover
//!  coordinator: Avro → event or view               ─▶ decode
//!               event → RowBinary row              ─▶ encode
//!  write task:  body to the HTTP client (its LZ4,   ─▶ compress
//!               and any wait for the connection)
//! ```
//!
//! Each stage adds up nanoseconds locally and moves whole microseconds into its counter
//! (`auditlog_ingest_stage_microseconds_total{stage}`) once per batch or chunk. A clock
//! read costs about as much as decoding a tenth of an event, so per-event stages time one
//! event in [`SAMPLE_EVERY`] and count it for all of them: over the thousands of events of
//! a batch the estimate is close, and the timing itself stays out of the figures.

use std::time::{Duration, Instant};

use crate::metrics as names;

/// Nanoseconds per microsecond.
const NANOS_PER_MICRO: u64 = 1_000;

/// Per-event stages time one event in this many.
pub(crate) const SAMPLE_EVERY: u32 = 16;

/// One stage's time, gathered locally.
#[derive(Debug)]
pub(crate) struct StageTimer {
    nanos: u64,
    counter: metrics::Counter,
    /// Events since the last one timed.
    tick: u32,
}

impl StageTimer {
    /// A timer for `stage`: `handover`, `decode`, `encode` or `compress`.
    pub(crate) fn new(stage: &'static str) -> Self {
        Self {
            nanos: 0,
            counter: metrics::counter!(names::STAGE_MICROS, "stage" => stage),
            tick: 0,
        }
    }

    /// Starts timing one event if it is the one in [`SAMPLE_EVERY`] to time.
    pub(crate) fn sample_start(&mut self) -> Option<Instant> {
        self.tick += 1;
        if self.tick < SAMPLE_EVERY {
            return None;
        }
        self.tick = 0;
        Some(Instant::now())
    }

    /// Ends a [`Self::sample_start`], counting the time for every event it stands for.
    pub(crate) fn sample_end(&mut self, started: Option<Instant>) {
        if let Some(started) = started {
            self.add(started.elapsed() * SAMPLE_EVERY);
        }
    }

    /// Adds the time since `started`; returns now, for the next stage to start from.
    pub(crate) fn add_since(&mut self, started: Instant) -> Instant {
        let now = Instant::now();
        self.add(now.duration_since(started));
        now
    }

    pub(crate) fn add(&mut self, elapsed: Duration) {
        self.nanos = self
            .nanos
            .saturating_add(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Moves the whole microseconds gathered so far into the counter.
    pub(crate) fn flush(&mut self) {
        let micros = self.nanos / NANOS_PER_MICRO;
        if micros > 0 {
            self.counter.increment(micros);
            self.nanos -= micros * NANOS_PER_MICRO;
        }
    }
}

impl Drop for StageTimer {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_microseconds_move_and_the_rest_stays() {
        let mut timer = StageTimer::new("decode");
        timer.add(Duration::from_nanos(2_500));
        timer.flush();
        assert_eq!(timer.nanos, 500);
        timer.add(Duration::from_nanos(600));
        timer.flush();
        assert_eq!(timer.nanos, 100);
        let started = Instant::now();
        assert!(timer.add_since(started) >= started);
    }

    #[test]
    fn one_event_in_sample_every_is_timed() {
        let mut timer = StageTimer::new("encode");
        let timed = (0..SAMPLE_EVERY * 3)
            .filter(|_| {
                let started = timer.sample_start();
                let timed = started.is_some();
                timer.sample_end(started);
                timed
            })
            .count();
        assert_eq!(timed, 3);
    }
}
