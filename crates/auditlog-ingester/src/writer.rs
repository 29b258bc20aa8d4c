//! The batch writer: where a sealed batch goes, in the one order that keeps replays exact.
//!
//! ```text
//!  sealed batch ─▶ intent (range + digest) ─▶ dead letters ─▶ rows (RowBinary insert)
//!                  ingest_digests             audit-events-dlq   audit_logs, dedup token
//! ```
//!
//! The intent comes first, so that a crash between it and the insert replays the same
//! range (and so the same deduplication token). Every step goes through the one
//! [`Retrier`], so a stop during an outage is bounded by the shutdown deadline.

use std::future::Future;
use std::time::Instant;

use bytes::Bytes;

use crate::batch::Batch;
use crate::dlq::producer::DeadLetterProducer;
use crate::intent::{IntentStore, ResumePoint};
use crate::retry::{Retrier, Stage};
use crate::sink::ClickHouseSink;
use crate::{IngestError, metrics as names};

/// Where sealed batches go: the coordinator's only view of ClickHouse and the dead-letter
/// topic, so that its bookkeeping can be tested with a fake.
pub(crate) trait BatchWriter: Clone + Send + Sync + 'static {
    /// The recorded batch ranges of a partition that end at or after `from_offset`, and the
    /// digest its chain continues from.
    fn load_plans(
        &self,
        topic: &str,
        partition: i32,
        from_offset: i64,
    ) -> impl Future<Output = Result<ResumePoint, IngestError>> + Send;

    /// Writes a batch; returns (rows, poison messages) once all are acknowledged.
    fn write(
        &self,
        batch: Batch,
    ) -> impl Future<Output = Result<(usize, usize), IngestError>> + Send;
}

/// The real writer: intents and rows in ClickHouse, poison in the dead-letter topic.
#[derive(Debug, Clone)]
pub(crate) struct ClickHouseWriter {
    pub(crate) sink: ClickHouseSink,
    pub(crate) intents: IntentStore,
    pub(crate) dead_letters: DeadLetterProducer,
    pub(crate) retrier: Retrier,
}

impl BatchWriter for ClickHouseWriter {
    async fn load_plans(
        &self,
        topic: &str,
        partition: i32,
        from_offset: i64,
    ) -> Result<ResumePoint, IngestError> {
        let resume = self
            .retrier
            .run(Stage::IntentLoad, || {
                self.intents.load(topic, partition, from_offset)
            })
            .await?;
        if !resume.plans.is_empty() {
            tracing::info!(
                partition,
                from_offset,
                num_plans = resume.plans.len(),
                "replaying recorded batch ranges"
            );
        }
        if resume.chain_head == auditlog_integrity::GENESIS && from_offset > 0 {
            tracing::info!(
                partition,
                from_offset,
                "no digest ends just before this offset: a new digest chain starts here"
            );
        }
        Ok(resume)
    }

    async fn write(&self, batch: Batch) -> Result<(usize, usize), IngestError> {
        let started = Instant::now();
        if !batch.planned {
            let token = batch.dedup_token();
            self.retrier
                .run(Stage::Intent, || self.intents.record(&batch.digest, &token))
                .await?;
        }
        if !batch.poison.is_empty() {
            self.dead_letters
                .send_all(&self.retrier, &batch.topic, batch.partition, &batch.poison)
                .await?;
        }
        if batch.num_rows > 0 {
            let token = batch.dedup_token();
            let rows: Bytes = batch.rows.into_bytes();
            let num_bytes = rows.len();
            let body = self.sink.body(rows);
            self.retrier
                .run(Stage::Insert, || self.sink.insert_once(&body, &token))
                .await?;
            metrics::histogram!(names::BATCH_ROWS).record(batch.num_rows as f64);
            metrics::histogram!(names::BATCH_BYTES).record(num_bytes as f64);
            metrics::counter!(names::INSERTED).increment(batch.num_rows as u64);
            let now_micros =
                i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000)
                    .unwrap_or(i64::MAX);
            let freshness = metrics::histogram!(names::FRESHNESS);
            // Per event, so in i64: the i128 form cost a software conversion per row.
            for event_micros in &batch.event_times_micros {
                let lag_micros = now_micros.saturating_sub(*event_micros);
                freshness.record(lag_micros.max(0) as f64 / 1e6);
            }
        }
        metrics::counter!(names::BATCHES).increment(1);
        metrics::histogram!(names::BATCH_LATENCY).record(started.elapsed().as_secs_f64());
        Ok((batch.num_rows, batch.poison.len()))
    }
}
