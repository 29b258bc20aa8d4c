//! Batches on their way to the destination while the sink reads and formats the next.
//!
//! ```text
//!  sealed batch ──submit──▶ [p0 ▸ deliver] [p2 ▸ deliver] [p1 ▸ deliver]   (spawned, oldest first)
//!                                │ settled oldest first: Ok ─▶ commit that partition's offsets
//!                                └──────────────────── Err ─▶ the engine's delivery loop
//! ```
//!
//! A partition has at most one batch in flight, so its batches still reach the destination
//! one at a time and in order (the S3 archive's recovery and manifest chain rely on that,
//! and a manifest still lists only objects whose batches were committed), and its offsets are
//! committed only after the destination confirmed every batch up to them. Different
//! partitions' batches overlap, up to [`MAX_IN_FLIGHT`] at once.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::task::JoinHandle;

use super::{SinkRunner, Stopped};
use crate::sink::{Batch, DeliveryError};

/// Batches a sink has on their way at once (each of another partition): enough to keep a
/// destination busy while the next batches are formatted, few enough that a destination
/// that slows down holds little in memory.
pub(super) const MAX_IN_FLIGHT: usize = 4;

/// Sealed batches a sink holds back while their partitions have one in flight: as many
/// as may be in flight, so that a sink holds at most twice [`MAX_IN_FLIGHT`] batches.
pub(super) const MAX_WAITING: usize = MAX_IN_FLIGHT;

/// One batch handed to the destination.
#[derive(Debug)]
pub(super) struct InFlight {
    batch: Arc<Batch>,
    task: JoinHandle<Result<(), DeliveryError>>,
    /// The sink's confirmations when the batch was handed over.
    confirmations: u64,
}

/// What a delivery task ended with; a task that panicked or was cancelled counts as a
/// transient failure, so the engine delivers the batch again.
fn outcome(
    joined: Result<Result<(), DeliveryError>, tokio::task::JoinError>,
) -> Result<(), DeliveryError> {
    joined.unwrap_or_else(|error| {
        Err(DeliveryError::transient(format!(
            "delivery task ended: {error}"
        )))
    })
}

/// Resolves when the oldest batch in flight has its first outcome (never, with none).
pub(super) async fn oldest(in_flight: &mut VecDeque<InFlight>) -> Result<(), DeliveryError> {
    match in_flight.front_mut() {
        Some(flight) => outcome((&mut flight.task).await),
        None => std::future::pending().await,
    }
}

impl SinkRunner {
    /// Hands `batch` to the destination once its partition's previous batch is settled and
    /// fewer than [`MAX_IN_FLIGHT`] are on their way. Until then it waits beside the
    /// others, and the sink goes on reading other partitions: a fetch brings a partition's
    /// messages in runs, so the next batch sealed is often of a partition whose previous
    /// one is still on its way, and waiting for it there could leave the destination fewer
    /// requests to work on. Only when [`MAX_WAITING`] batches wait does the sink stop reading until
    /// the oldest in flight is settled.
    pub(super) async fn submit(&mut self, batch: Batch) -> Result<(), Stopped> {
        self.waiting.push_back(batch);
        self.launch_waiting();
        while self.waiting.len() > MAX_WAITING {
            self.settle_oldest().await?;
        }
        Ok(())
    }

    /// Hands over every waiting batch whose partition has none in flight (the oldest of a
    /// partition first), while there is room.
    pub(super) fn launch_waiting(&mut self) {
        let mut index = 0;
        while index < self.waiting.len() && self.in_flight.len() < MAX_IN_FLIGHT {
            let partition = self.waiting[index].partition;
            let busy = self
                .in_flight
                .iter()
                .any(|flight| flight.batch.partition == partition)
                || self
                    .waiting
                    .iter()
                    .take(index)
                    .any(|batch| batch.partition == partition);
            if busy {
                index += 1;
            } else if let Some(batch) = self.waiting.remove(index) {
                self.launch(batch);
            }
        }
    }

    fn launch(&mut self, batch: Batch) {
        let batch = Arc::new(batch);
        let task = tokio::spawn({
            let sink = Arc::clone(&self.sink);
            let batch = Arc::clone(&batch);
            async move { sink.deliver(&batch).await }
        });
        self.in_flight.push_back(InFlight {
            batch,
            task,
            confirmations: self.confirmations,
        });
    }

    /// Waits for the oldest batch in flight and settles it.
    async fn settle_oldest(&mut self) -> Result<(), Stopped> {
        let mut stop = self.stop.clone();
        let result = tokio::select! {
            _ = stop.changed() => return Err(Stopped),
            result = oldest(&mut self.in_flight) => result,
        };
        self.settle_front(result).await
    }

    /// The oldest batch's first attempt ended with `result`: confirmed, it is committed;
    /// failed, it goes through the engine's delivery loop with that failure as its first
    /// attempt, unless other batches were confirmed since it was handed over. Then the
    /// failure may be stale (a destination that came back meanwhile), and the loop's
    /// narrowing down of refused events, which trusts a refusal more once the destination
    /// took something, must judge by a fresh attempt, as it did when batches went one at a
    /// time. Settled, it makes room: waiting batches are handed over.
    pub(super) async fn settle_front(
        &mut self,
        result: Result<(), DeliveryError>,
    ) -> Result<(), Stopped> {
        let Some(flight) = self.in_flight.pop_front() else {
            return Ok(());
        };
        match result {
            Ok(()) => self.confirmed(&flight.batch, 0).await,
            Err(error) if flight.confirmations == self.confirmations => {
                self.deliver(flight.batch, Some(Err(error))).await?;
            }
            Err(error) => {
                tracing::debug!(sink = %self.name, batch = %flight.batch.range_key(), %error, "a delivery under way failed while others were confirmed; trying it afresh");
                self.deliver(flight.batch, None).await?;
            }
        }
        self.launch_waiting();
        Ok(())
    }

    /// The run stops: deliveries still under way are cancelled (their offsets stay
    /// uncommitted and are read again), those the destination already confirmed are
    /// committed, as a delivery confirmed before a stop always was.
    pub(super) async fn stop_in_flight(&mut self) {
        for flight in &self.in_flight {
            flight.task.abort();
        }
        while let Some(flight) = self.in_flight.pop_front() {
            if let Ok(Ok(())) = flight.task.await {
                self.confirmed(&flight.batch, 0).await;
            }
        }
    }
}
