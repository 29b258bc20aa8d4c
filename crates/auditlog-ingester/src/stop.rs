//! The one shutdown signal that every task of the ingester watches.
//!
//! The first SIGTERM turns into a deadline, `shutdown_timeout` from then. The coordinator
//! stops reading and flushes; every retry loop gives up once the deadline passes. So a stop
//! during a ClickHouse outage is bounded, whichever stage happens to be waiting.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// A cheap-to-clone view of the shutdown: not requested, or requested with a deadline.
#[derive(Debug, Clone)]
pub(crate) struct Stop {
    deadline: watch::Receiver<Option<Instant>>,
}

impl Stop {
    /// Follows `shutdown`: when it turns true, the deadline is `timeout` from then.
    pub(crate) fn follow(mut shutdown: watch::Receiver<bool>, timeout: Duration) -> Self {
        let (deadline_tx, deadline) = watch::channel(None);
        tokio::spawn(async move {
            // A dropped sender counts as a request: nobody is left to ask for a clean run.
            let _ = shutdown.wait_for(|requested| *requested).await;
            let _ = deadline_tx.send(Some(Instant::now() + timeout));
            // Keeps the channel open, so receivers never see a closed channel.
            deadline_tx.closed().await;
        });
        Self { deadline }
    }

    /// A stop that is already requested, with this deadline (for tests).
    #[cfg(test)]
    pub(crate) fn at(deadline: Instant) -> (watch::Sender<Option<Instant>>, Self) {
        let (deadline_tx, deadline) = watch::channel(Some(deadline));
        (deadline_tx, Self { deadline })
    }

    /// A stop that a test triggers by sending a deadline.
    #[cfg(test)]
    pub(crate) fn manual() -> (watch::Sender<Option<Instant>>, Self) {
        let (deadline_tx, deadline) = watch::channel(None);
        (deadline_tx, Self { deadline })
    }

    /// The deadline, once shutdown was requested.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        *self.deadline.borrow()
    }

    /// Resolves once shutdown is requested.
    pub(crate) async fn requested(&self) {
        let mut deadline = self.deadline.clone();
        let _ = deadline.wait_for(Option::is_some).await;
    }

    /// Resolves once the shutdown deadline has passed.
    pub(crate) async fn expired(&self) {
        self.requested().await;
        if let Some(deadline) = self.deadline() {
            tokio::time::sleep_until(deadline).await;
        }
    }
}
