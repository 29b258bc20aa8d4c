//! `auditlog stream backfill`: re-sending a time range or an offset range to one sink.
//!
//! ```text
//!  --partition P --from-offset A --to-offset B ──assign (no group, no commit)──▶ Kafka [A, B)
//!  --from T1 --to T2 ──keyset pages, oldest first──▶ ClickHouse [T1, T2)             │
//!                         │                                                          ▼
//!                         └──────▶ the sink's filter (matcher), format, batch limits ──▶ deliver
//!                                      s3: PREFIX/backfill/RUN/ (range_key never reused) │ retry
//!                                  summary: read, delivered, filtered, malformed ◀─────────┘
//! ```
//!
//! Offsets are read with `assign`, so no consumer group joins or commits: the live sink's
//! group is untouched. Messages go through the live path's batcher (decode, filter, format,
//! limits). Offsets below the partition's low watermark are past the topic's retention: the
//! run refuses them and points at the time form, which reads the store, where each event is
//! one row `(time, id)`, in pages of [`PAGE_ROWS`] after the last row read, so a range of any
//! size is never in memory at once.
//!
//! Events read from ClickHouse carry no offsets: their batches are named
//! `backfill-FROM-TO/0/I-J`, `I..=J` being the events' places in the range (0 for the first
//! event read), which no live batch name can be. An `s3` sink writes both forms under
//! `PREFIX/backfill/RUN/` ([`archive`]), never into the live chain.
//!
//! A batch is retried under the retry policy's backoff up to [`ATTEMPTS`] times; then the run
//! stops with an error (what was delivered stays delivered; a rerun of the range re-sends it,
//! which every destination absorbs: same `_id`, same object keys, same batch names). Events
//! the destination refuses for good while taking the rest (the live path's
//! `isolate::refused_for_good`) are logged and counted in [`BackfillReport::refused`], not
//! dead-lettered: the store or the topic still holds them for a rerun.

pub(crate) mod archive;
mod range;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use auditlog_query::{Cursor, QueryRunner, ResolvedFilter};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio::sync::watch;

use crate::batcher::{Batcher, Outcome};
use crate::config::{Destination, SinkConfig};
use crate::matcher::matches;
use crate::sink::{Batch, DeliveryError, Record, Sink, SinkContext};
use crate::{StreamError, retry};
use archive::BackfillArchive;
pub use range::BackfillRange;

/// Rows read from ClickHouse per page.
pub(crate) const PAGE_ROWS: u64 = 5_000;
/// Delivery attempts of one batch before a backfill gives up.
pub(crate) const ATTEMPTS: u32 = 10;
const KAFKA_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a partition may stay silent before the run checks whether it reached the end.
const IDLE: Duration = Duration::from_secs(1);

/// What a backfill is given.
#[derive(Debug, Clone)]
pub struct BackfillConfig {
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// The audit event topic.
    pub topic: String,
    /// librdkafka properties passed through.
    pub kafka_properties: BTreeMap<String, String>,
    /// The sink, as `[[stream.sinks]]` configures it.
    pub sink: SinkConfig,
    /// Backoff between delivery attempts.
    pub retry: auditlog_ingester::RetryPolicy,
}

/// What a backfill did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackfillReport {
    /// The sink's name.
    pub sink: String,
    /// Events (time form) or messages (offset form) read.
    pub read: u64,
    /// Events the destination confirmed.
    pub delivered: u64,
    /// Batches the destination confirmed.
    pub batches: u64,
    /// Events the sink's filter left out.
    pub filtered: u64,
    /// Messages that were not valid events (offset form).
    pub malformed: u64,
    /// Failed delivery attempts (each retried).
    pub failures: u64,
    /// Events the destination refused for good while taking the rest of their batch (each
    /// logged with the destination's reason; not re-sent, not dead-lettered): a run with
    /// any is a failed run.
    pub refused: u64,
    /// Where an `s3` sink wrote the run (`PREFIX/backfill/RUN/`).
    pub archive_folder: Option<String>,
}

/// Where the batches go.
enum Target {
    Sink(Box<dyn Sink>),
    Archive(Box<BackfillArchive>),
}

impl Target {
    async fn deliver(&self, batch: &Batch) -> Result<(), DeliveryError> {
        match self {
            Target::Sink(sink) => sink.deliver(batch).await,
            Target::Archive(archive) => archive.put(batch).await,
        }
    }

    async fn finish(&self) -> Result<(), DeliveryError> {
        match self {
            Target::Sink(sink) => sink.finish().await,
            Target::Archive(archive) => archive.finish().await,
        }
    }
}

/// Re-sends `range` to the configured sink. The time form needs `store`. Stops early, with
/// an error, when `shutdown` turns true.
pub async fn backfill(
    config: &BackfillConfig,
    range: &BackfillRange,
    store: Option<&QueryRunner>,
    shutdown: watch::Receiver<bool>,
) -> Result<BackfillReport, StreamError> {
    let sink = &config.sink;
    let kafka = kafka_client(config);
    let target = match &sink.destination {
        Destination::S3(s3) => {
            let archive = BackfillArchive::new(
                s3,
                &sink.name,
                &range.run_name(&config.topic),
                range.to_string(),
                sink.format.to_string(),
                sink.filter_text.clone(),
            );
            let cleared = archive
                .clear()
                .await
                .map_err(|error| failed(sink, &error))?;
            if cleared > 0 {
                tracing::info!(sink = %sink.name, folder = archive.folder(), objects = cleared, "replacing an earlier run of this range");
            }
            Target::Archive(Box::new(archive))
        }
        destination => Target::Sink(crate::sink::build(
            destination,
            &SinkContext {
                kafka: kafka.clone(),
                checkpoint_topic: None,
            },
        )),
    };
    let mut run = Run {
        config,
        target,
        shutdown,
        report: BackfillReport {
            sink: sink.name.clone(),
            ..BackfillReport::default()
        },
    };
    if let Target::Archive(archive) = &run.target {
        run.report.archive_folder = Some(archive.folder().to_owned());
    }
    match range {
        BackfillRange::Offsets {
            partition,
            from,
            to,
        } => run.resend_offsets(kafka, *partition, *from, *to).await?,
        BackfillRange::Time { from, to } => {
            let Some(store) = store else {
                return Err(StreamError::Backfill(
                    "a time range is read from ClickHouse, and no store was given".to_owned(),
                ));
            };
            run.resend_time_range(store, range, *from, *to).await?
        }
    }
    run.target
        .finish()
        .await
        .map_err(|error| failed(sink, &error))?;
    Ok(run.report)
}

fn failed(sink: &SinkConfig, error: &DeliveryError) -> StreamError {
    StreamError::Backfill(format!("sink {:?}: {error}", sink.name))
}

fn kafka_client(config: &BackfillConfig) -> ClientConfig {
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &config.brokers);
    for (key, value) in &config.kafka_properties {
        client.set(key, value);
    }
    client
}

struct Run<'a> {
    config: &'a BackfillConfig,
    target: Target,
    shutdown: watch::Receiver<bool>,
    report: BackfillReport,
}

impl Run<'_> {
    async fn resend_offsets(
        &mut self,
        mut client: ClientConfig,
        partition: i32,
        from: i64,
        to: i64,
    ) -> Result<(), StreamError> {
        let topic = self.config.topic.clone();
        let sink = &self.config.sink;
        // A group id librdkafka wants for a consumer; `assign` never joins it and nothing
        // is committed, so no group's offsets change.
        client
            .set("group.id", format!("{}-backfill", sink.group()))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false");
        let consumer: StreamConsumer = client.create()?;
        let (low, high) = consumer.fetch_watermarks(&topic, partition, KAFKA_TIMEOUT)?;
        range::check_offsets_held(&topic, partition, (from, to), (low, high))?;
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(&topic, partition, Offset::Offset(from))?;
        consumer.assign(&assignment)?;
        let mut batcher = Batcher::new(&topic, sink.format, sink.filter.clone(), sink.batch);
        let mut last_seen = from - 1;
        while last_seen < to - 1 {
            let mut shutdown = self.shutdown.clone();
            let received = tokio::select! {
                _ = shutdown.changed() => return Err(interrupted()),
                received = tokio::time::timeout(IDLE, consumer.recv()) => received,
            };
            let message = match received {
                Ok(Ok(message)) => message,
                Ok(Err(error)) => return Err(StreamError::Kafka(error)),
                Err(_) => {
                    // Transaction markers take offsets no message carries: the end of the
                    // range may be one of them.
                    let position = consumer.position()?;
                    let at = position
                        .find_partition(&topic, partition)
                        .and_then(|element| match element.offset() {
                            Offset::Offset(offset) => Some(offset),
                            _ => None,
                        });
                    if at.is_some_and(|next| next >= to) {
                        break;
                    }
                    continue;
                }
            };
            let offset = message.offset();
            if offset >= to {
                break;
            }
            last_seen = offset;
            let (outcome, sealed) =
                batcher.push(partition, offset, message.payload(), offset == to - 1);
            self.report.read += 1;
            match outcome {
                Outcome::Kept => {}
                Outcome::Filtered => self.report.filtered += 1,
                Outcome::Malformed(reason) => {
                    self.report.malformed += 1;
                    tracing::warn!(partition, offset, %reason, "skipping a message that is not a valid event");
                }
            }
            if let Some(batch) = sealed {
                self.deliver(batch).await?;
            }
        }
        for batch in batcher.take_aged(Instant::now() + sink.batch.max_age) {
            self.deliver(batch).await?;
        }
        Ok(())
    }

    async fn resend_time_range(
        &mut self,
        store: &QueryRunner,
        range: &BackfillRange,
        from: time::OffsetDateTime,
        to: time::OffsetDateTime,
    ) -> Result<(), StreamError> {
        let sink = &self.config.sink;
        let micros = (
            auditlog_event::unix_micros_saturating(from),
            auditlog_event::unix_micros_saturating(to),
        );
        let mut pending = Pending::new(range.batch_topic(), sink.format);
        let mut after = None;
        loop {
            if *self.shutdown.borrow() {
                return Err(interrupted());
            }
            let rows = store
                .range_page(&ResolvedFilter::default(), micros, after, PAGE_ROWS)
                .await
                .map_err(|error| StreamError::Backfill(format!("reading ClickHouse: {error}")))?;
            let short = (rows.len() as u64) < PAGE_ROWS;
            for row in rows {
                after = Some(Cursor::after_row(row.time, row.id));
                let event = row.into_event();
                let place = self.report.read as i64;
                self.report.read += 1;
                if !matches(&sink.filter, &event) {
                    self.report.filtered += 1;
                    pending.skip(place);
                    continue;
                }
                let mut json = Vec::with_capacity(1024);
                sink.format.write(&event, &mut json);
                let full = pending.push(
                    Record {
                        offset: place,
                        id: event.id,
                        time: event.time,
                        json,
                    },
                    &sink.batch,
                );
                if full {
                    let batch = pending.take();
                    self.deliver(batch).await?;
                }
            }
            if short {
                break;
            }
        }
        if pending.has_any() {
            let batch = pending.take();
            self.deliver(batch).await?;
        }
        Ok(())
    }

    /// Delivers `batch` until the destination confirms it, at most [`ATTEMPTS`] times.
    async fn deliver(&mut self, batch: Batch) -> Result<(), StreamError> {
        let sink = &self.config.sink;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut shutdown = self.shutdown.clone();
            let result = tokio::select! {
                _ = shutdown.changed() => return Err(interrupted()),
                result = self.target.deliver(&batch) => result,
            };
            match result {
                Ok(()) => break,
                Err(error) if attempt >= ATTEMPTS => {
                    self.report.failures += 1;
                    return Err(StreamError::Backfill(format!(
                        "sink {:?}: batch {} failed {attempt} times, the last: {error}; \
                         what was delivered before it stays delivered, a rerun re-sends the range",
                        sink.name,
                        batch.range_key()
                    )));
                }
                Err(error) => {
                    self.report.failures += 1;
                    if self.settle_refusal(&batch, &error).await {
                        return Ok(());
                    }
                    let delay = retry::delay(&self.config.retry, attempt);
                    tracing::warn!(sink = %sink.name, batch = %batch.range_key(), attempt, retry_in_ms = delay.as_millis() as u64, %error, "backfill delivery failed; retrying");
                    tokio::time::sleep(delay).await;
                }
            }
        }
        if !batch.records.is_empty() {
            self.report.batches += 1;
            self.report.delivered += batch.records.len() as u64;
        }
        Ok(())
    }
}

impl Run<'_> {
    /// Whether `error` shows the destination took `batch` except events it refuses for good
    /// (named by it, or found by sending parts, as the live path does); those are counted
    /// and logged, and the batch is done.
    async fn settle_refusal(&mut self, batch: &Batch, error: &DeliveryError) -> bool {
        let Target::Sink(sink) = &self.target else {
            return false;
        };
        let proven = self.report.delivered > 0;
        let Some(refused) =
            crate::isolate::refused_for_good(sink.as_ref(), batch, error, proven).await
        else {
            return false;
        };
        for rejection in &refused {
            let id = batch
                .records
                .iter()
                .find(|record| record.offset == rejection.offset)
                .map(|record| record.id);
            tracing::error!(
                sink = %self.config.sink.name,
                batch = %batch.range_key(),
                offset = rejection.offset,
                id = ?id,
                kind = %rejection.kind,
                reason = %rejection.reason,
                "the destination refuses this event for good; the backfill does not re-send it"
            );
        }
        let refused = refused.len() as u64;
        self.report.refused += refused;
        self.report.batches += 1;
        self.report.delivered += (batch.records.len() as u64).saturating_sub(refused);
        true
    }
}

fn interrupted() -> StreamError {
    StreamError::Backfill(
        "interrupted; what was delivered stays delivered, a rerun re-sends the range".to_owned(),
    )
}

/// The batch being filled from the store's rows.
struct Pending {
    batch: Batch,
    bytes: usize,
    started: bool,
}

impl Pending {
    fn new(topic: String, format: crate::Format) -> Self {
        Self {
            batch: Batch {
                topic,
                partition: 0,
                first_offset: 0,
                last_offset: 0,
                records: Vec::new(),
                filtered: 0,
                malformed: 0,
                format,
            },
            bytes: 0,
            started: false,
        }
    }

    fn place(&mut self, place: i64) {
        if !self.started {
            self.batch.first_offset = place;
            self.started = true;
        }
        self.batch.last_offset = place;
    }

    /// An event the filter left out, at `place`.
    fn skip(&mut self, place: i64) {
        self.place(place);
        self.batch.filtered += 1;
    }

    /// Adds `record`; whether the batch is now full.
    fn push(&mut self, record: Record, limits: &crate::BatchLimits) -> bool {
        self.place(record.offset);
        self.bytes += record.json.len() + 1;
        self.batch.records.push(record);
        self.batch.records.len() >= limits.max_events || self.bytes >= limits.max_bytes
    }

    fn has_any(&self) -> bool {
        self.started
    }

    /// The batch so far; the next starts after it.
    fn take(&mut self) -> Batch {
        let next = Batch {
            topic: self.batch.topic.clone(),
            partition: self.batch.partition,
            first_offset: 0,
            last_offset: 0,
            records: Vec::new(),
            filtered: 0,
            malformed: 0,
            format: self.batch.format,
        };
        self.bytes = 0;
        self.started = false;
        std::mem::replace(&mut self.batch, next)
    }
}

#[cfg(test)]
#[path = "backfill_tests.rs"]
mod tests;
