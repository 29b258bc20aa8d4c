//! Backoff between delivery attempts, under the ingester's retry policy (same settings, same
//! defaults): jittered exponential, so sinks that failed together do not return together.

use std::time::Duration;

use auditlog_ingester::RetryPolicy;
use rand::Rng;

/// The wait after failed attempt `attempt` (1-based): uniform in [d/2, d] with
/// d = initial · 2^(attempt-1), capped at `max`.
pub(crate) fn delay(policy: &RetryPolicy, attempt: u32) -> Duration {
    let exponent = attempt.saturating_sub(1).min(20);
    let nominal = policy
        .initial
        .saturating_mul(1_u32 << exponent)
        .min(policy.max);
    let half = nominal / 2;
    half + rand::rng().random_range(Duration::ZERO..=half)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_with_jitter_below_them() {
        let policy = RetryPolicy::default();
        for attempt in 1_u32..40 {
            let nominal = policy
                .initial
                .saturating_mul(1 << attempt.saturating_sub(1).min(20))
                .min(policy.max);
            let delay = delay(&policy, attempt);
            assert!(
                delay >= nominal / 2 && delay <= nominal,
                "{attempt}: {delay:?}"
            );
        }
    }
}
