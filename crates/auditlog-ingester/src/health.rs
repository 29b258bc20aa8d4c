//! What `/healthz` and `/readyz` report about a running ingester.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;

/// Shared, cheap-to-clone view of the ingester's state.
#[derive(Debug, Clone, Default)]
pub struct Health {
    inner: Arc<HealthInner>,
}

#[derive(Debug, Default)]
struct HealthInner {
    running: AtomicBool,
    assigned: AtomicUsize,
    stopping: AtomicBool,
    clickhouse_error: Mutex<Option<String>>,
    dead_letter_error: Mutex<Option<String>>,
    committed: Mutex<BTreeMap<i32, i64>>,
}

/// A point-in-time copy of [`Health`], as JSON for the endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthSnapshot {
    /// The pipeline is running.
    pub running: bool,
    /// Partitions assigned to this member.
    pub assigned_partitions: usize,
    /// A shutdown was requested: the ingester is flushing and will exit.
    pub stopping: bool,
    /// The last ClickHouse write error while writes are failing, `None` when healthy.
    pub clickhouse_error: Option<String>,
    /// The last dead-letter produce error while those are failing, `None` when healthy.
    pub dead_letter_error: Option<String>,
    /// The last committed next-offset per partition.
    pub committed_offsets: BTreeMap<i32, i64>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Health {
    pub(crate) fn set_running(&self, running: bool) {
        self.inner.running.store(running, Ordering::Release);
    }

    pub(crate) fn set_assigned(&self, num_partitions: usize) {
        self.inner.assigned.store(num_partitions, Ordering::Release);
    }

    pub(crate) fn set_stopping(&self) {
        self.inner.stopping.store(true, Ordering::Release);
    }

    pub(crate) fn set_dead_letter_error(&self, error: Option<String>) {
        *lock(&self.inner.dead_letter_error) = error;
    }

    pub(crate) fn set_clickhouse_error(&self, error: Option<String>) {
        *lock(&self.inner.clickhouse_error) = error;
    }

    pub(crate) fn set_committed(&self, partition: i32, offset: i64) {
        lock(&self.inner.committed).insert(partition, offset);
    }

    /// The current state.
    pub fn snapshot(&self) -> HealthSnapshot {
        HealthSnapshot {
            running: self.inner.running.load(Ordering::Acquire),
            assigned_partitions: self.inner.assigned.load(Ordering::Acquire),
            stopping: self.inner.stopping.load(Ordering::Acquire),
            clickhouse_error: lock(&self.inner.clickhouse_error).clone(),
            dead_letter_error: lock(&self.inner.dead_letter_error).clone(),
            committed_offsets: lock(&self.inner.committed).clone(),
        }
    }

    /// Ready means: running, not stopping, and ClickHouse and the dead-letter topic take writes. Not ready while ClickHouse is
    /// failing, so an orchestrator's readiness view shows the outage (the process itself is
    /// healthy and recovers by itself; liveness stays green).
    pub fn readiness(&self) -> Result<(), String> {
        let snapshot = self.snapshot();
        if !snapshot.running {
            return Err("ingester is not running".into());
        }
        if snapshot.stopping {
            return Err("ingester is shutting down".into());
        }
        if let Some(error) = snapshot.clickhouse_error {
            return Err(format!("clickhouse writes failing, retrying: {error}"));
        }
        if let Some(error) = snapshot.dead_letter_error {
            return Err(format!(
                "dead-letter topic writes failing, retrying: {error}"
            ));
        }
        Ok(())
    }
}
