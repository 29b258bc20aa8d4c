//! The thread that serves librdkafka's delivery reports, awake only while events are in
//! flight.
//!
//! ```text
//!  enqueue (in flight 0 → 1) ── wake ──▶ poller: poll in BUSY_WINDOW windows ──▶ reports
//!                                          │ nothing in flight
//!                                          ▼
//!                                        park ≤ IDLE_DRAIN ─▶ drain stray events (errors, logs)
//! ```
//!
//! rdkafka's own polling thread (`ThreadedProducer`) polls in 100 ms windows forever, and
//! every window ends in a busy wait: it hands librdkafka the time left in whole
//! milliseconds, so the last fraction of a millisecond is polled with a zero timeout until
//! the deadline passes. Measured on an idle service, that is about 0.9 ms of CPU per window:
//! 0.9% of a core spent by every service that embeds the SDK, doing nothing. This thread
//! polls only while something is in flight; idle, it sleeps until the next enqueue wakes it.
//! Client errors and logs that arrive meanwhile wait at most [`IDLE_DRAIN`] to be logged;
//! delivery reports never wait, since an event in flight keeps the thread polling.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// One poll while events are in flight; reports are handled as they arrive within it, so
/// this bounds only how soon the thread notices that the producer went idle or stopped.
const BUSY_WINDOW: Duration = Duration::from_millis(100);

/// How long an idle poller sleeps before it drains client events (errors, logs).
pub(crate) const IDLE_DRAIN: Duration = Duration::from_secs(5);

/// Non-blocking polls in the drain after an idle sleep; each takes at most one event, and
/// what is left waits for the next drain. A drain with a timeout, however short, would end
/// in the busy wait described above.
const DRAIN_POLLS: usize = 32;

/// Owns the polling thread; dropping it stops and joins the thread.
pub(crate) struct Poller {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Poller {
    /// Starts calling `poll` (which polls the client, or every client a producer holds,
    /// for up to the time given) whenever `busy` says events are in flight.
    pub(crate) fn spawn(
        poll: impl Fn(Duration) + Send + 'static,
        busy: impl Fn() -> bool + Send + 'static,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("auditlog-producer-poll".into())
                .spawn(move || {
                    while !stop.load(Ordering::Acquire) {
                        if busy() {
                            poll(BUSY_WINDOW);
                            continue;
                        }
                        // An enqueue that raced this check has already unparked the
                        // thread, so the park returns at once and nothing waits.
                        std::thread::park_timeout(IDLE_DRAIN);
                        if !busy() && !stop.load(Ordering::Acquire) {
                            for _ in 0..DRAIN_POLLS {
                                poll(Duration::ZERO);
                            }
                        }
                    }
                })?
        };
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }

    /// Wakes the thread: an event was just put in flight.
    pub(crate) fn wake(&self) {
        if let Some(thread) = &self.thread {
            thread.thread().unpark();
        }
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            if thread.join().is_err() {
                tracing::error!("the producer's polling thread panicked");
            }
        }
    }
}
