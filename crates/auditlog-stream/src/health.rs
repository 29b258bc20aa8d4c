//! What each sink reports about itself, for `/readyz` and the logs.
//!
//! A sink is unready while the batch it is delivering fails: it is blocked (its group does
//! not move) and someone should look. The other sinks are unaffected.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The sinks' states, shared between the engine and the readiness endpoint.
#[derive(Debug, Clone, Default)]
pub struct Health {
    sinks: Arc<Mutex<BTreeMap<String, SinkHealth>>>,
}

#[derive(Debug, Clone, Default)]
struct SinkHealth {
    failing_since: Option<Instant>,
    attempts: u64,
    last_error: String,
}

impl Health {
    pub(crate) fn register(&self, sink: &str) {
        self.lock().entry(sink.to_owned()).or_default();
    }

    pub(crate) fn failed(&self, sink: &str, error: &str) {
        let mut sinks = self.lock();
        let state = sinks.entry(sink.to_owned()).or_default();
        state.failing_since.get_or_insert_with(Instant::now);
        state.attempts += 1;
        error.clone_into(&mut state.last_error);
    }

    pub(crate) fn delivered(&self, sink: &str) {
        let mut sinks = self.lock();
        let state = sinks.entry(sink.to_owned()).or_default();
        state.failing_since = None;
        state.attempts = 0;
        state.last_error.clear();
    }

    /// `Ok` when no sink is failing; otherwise one line per failing sink.
    pub fn readiness(&self) -> Result<(), String> {
        let failing: Vec<String> = self
            .lock()
            .iter()
            .filter_map(|(name, state)| {
                state.failing_since.map(|since| {
                    format!(
                        "sink {name} failing for {}s ({} attempts): {}",
                        since.elapsed().as_secs(),
                        state.attempts,
                        state.last_error
                    )
                })
            })
            .collect();
        if failing.is_empty() {
            Ok(())
        } else {
            Err(failing.join("\n"))
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, SinkHealth>> {
        self.sinks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_sink_is_unready_until_it_delivers() {
        let health = Health::default();
        health.register("a");
        health.register("b");
        assert!(health.readiness().is_ok());
        health.failed("b", "HTTP 503");
        health.failed("b", "HTTP 503");
        let message = health.readiness().unwrap_err();
        assert!(
            message.contains("sink b failing") && message.contains("2 attempts"),
            "{message}"
        );
        assert!(!message.contains("sink a"));
        health.delivered("b");
        assert!(health.readiness().is_ok());
    }
}
