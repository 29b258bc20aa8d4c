//! The engine's own time for the queries one request ran, for `Server-Timing`.
//!
//! ```text
//!  API request ──measure(…)──► runner queries ──X-ClickHouse-Summary elapsed_ns──► record
//!       ◄── EngineTime { queries, slowest, total } ◄─────────────────────────────────┘
//! ```
//!
//! ClickHouse reports each query's elapsed time in its `X-ClickHouse-Summary` header. The
//! runner records it into a task-local account when the caller opened one, so the API can
//! tell the time spent in the engine from the time spent on the wire and in itself, without
//! the runner's methods returning it. Queries run outside a [`measure`] scope record nothing.

use std::cell::RefCell;
use std::time::Duration;

/// The engine time of one request's queries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineTime {
    /// Queries that reported a time.
    pub queries: u32,
    /// The slowest of them.
    pub slowest: Duration,
    /// All of them together (they may have overlapped).
    pub total: Duration,
}

impl EngineTime {
    fn record(&mut self, elapsed: Duration) {
        self.queries += 1;
        self.slowest = self.slowest.max(elapsed);
        self.total += elapsed;
    }

    /// The `Server-Timing` header's value: the slowest query and the sum, in milliseconds.
    pub fn server_timing(&self) -> String {
        format!(
            "clickhouse;dur={:.3};desc=\"slowest of {} queries\", clickhouse-total;dur={:.3}",
            self.slowest.as_secs_f64() * 1_000.0,
            self.queries,
            self.total.as_secs_f64() * 1_000.0
        )
    }
}

tokio::task_local! {
    static ACCOUNT: RefCell<EngineTime>;
}

/// Runs `work`, returning its output and the engine time of the queries it ran (in this
/// task: queries run by tasks it spawns are not counted).
pub async fn measure<F: Future>(work: F) -> (F::Output, EngineTime) {
    ACCOUNT
        .scope(RefCell::new(EngineTime::default()), async {
            let output = work.await;
            let account = ACCOUNT.with(|account| *account.borrow());
            (output, account)
        })
        .await
}

/// Adds one query's reported time to the open account, if any.
pub(crate) fn record(summary: Option<&clickhouse::QuerySummary>) {
    let Some(elapsed_ns) = summary.and_then(|summary| summary.elapsed_ns()) else {
        return;
    };
    let _ = ACCOUNT.try_with(|account| {
        account
            .borrow_mut()
            .record(Duration::from_nanos(elapsed_ns));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_account_keeps_the_slowest_and_the_sum() {
        let ((), time) = measure(async {
            let _ = ACCOUNT.try_with(|account| {
                account.borrow_mut().record(Duration::from_millis(3));
                account.borrow_mut().record(Duration::from_millis(5));
            });
        })
        .await;
        assert_eq!(time.queries, 2);
        assert_eq!(time.slowest, Duration::from_millis(5));
        assert_eq!(time.total, Duration::from_millis(8));
        assert_eq!(
            time.server_timing(),
            "clickhouse;dur=5.000;desc=\"slowest of 2 queries\", clickhouse-total;dur=8.000"
        );
        // Outside a scope nothing is recorded and nothing fails.
        record(None);
    }
}
