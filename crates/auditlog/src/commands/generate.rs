//! `auditlog generate`: realistic Coder-like traffic, published through the SDK.
//!
//! Exits 0 only when Kafka acknowledged every event; otherwise it says how many were not
//! delivered and why. On a terminal it redraws one progress line on stderr.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use auditlog_producer::{Compression, Producer, ProducerError};
use auditlog_traffic::TrafficGenerator;
use time::OffsetDateTime;
use tokio::time::Instant;

use crate::cli::GenerateArgs;
use crate::config::{FileConfig, ProducerSettings, Settings};

/// How often the progress line is redrawn.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(200);

/// How long the start-up topic check waits for the cluster's answer.
const TOPIC_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// How far back the generated events go.
const HISTORY: time::Duration = time::Duration::days(30);

/// Extra time for the final flush beyond the delivery timeout, after which every event
/// has its report anyway.
const SHUTDOWN_SLACK: Duration = Duration::from_secs(10);

/// Outcomes counted by the delivery callback on the producer's polling thread.
#[derive(Debug, Default)]
struct Tally {
    enqueued: AtomicU64,
    confirmed: AtomicU64,
    failed: AtomicU64,
    first_error: OnceLock<String>,
}

impl Tally {
    fn line(&self, count: u64, elapsed: Duration) -> String {
        let confirmed = self.confirmed.load(Ordering::Relaxed);
        let rate = confirmed as f64 / elapsed.as_secs_f64().max(1e-3);
        format!(
            "{} of {count} sent, {confirmed} confirmed, {} failed, {rate:.0} events/s",
            self.enqueued.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

pub async fn run(settings: &Settings, args: &GenerateArgs, file: &FileConfig) -> Result<()> {
    let producer_settings = ProducerSettings::resolve(&args.producer, file);
    if let Some(rate) = args.rate {
        ensure!(
            rate.is_finite() && rate > 0.0,
            "--rate must be a positive number of events per second, not {rate}"
        );
    }
    let compression: Compression = producer_settings.compression.parse()?;
    let tally = Arc::new(Tally::default());
    let producer = {
        let tally = Arc::clone(&tally);
        Producer::builder(&settings.kafka_brokers, &settings.kafka_topic)
            .with_properties(settings.kafka_properties.clone())
            .with_compression(compression)
            .with_linger(producer_settings.linger)
            .with_batch_bytes(producer_settings.batch_bytes)
            .with_queue_capacity(producer_settings.queue_events)
            .with_delivery_timeout(producer_settings.delivery_timeout)
            .with_delivery_callback(move |result| match result {
                Ok(_) => {
                    tally.confirmed.fetch_add(1, Ordering::Relaxed);
                }
                Err(error) => {
                    tally.failed.fetch_add(1, Ordering::Relaxed);
                    // Each lost event by id, so whoever ran this knows exactly what to resend.
                    if let Some(event_id) = error.event_id() {
                        tracing::warn!(%event_id, %error, "audit event not delivered");
                    }
                    let _ = tally.first_error.set(error.to_string());
                }
            })
            .build()
            .context("creating the producer")?
    };
    // A misnamed or missing topic is one clear error now, not a failure per event later. A
    // cluster that does not answer yet is no reason to stop: the delivery timeout decides.
    match producer.check_topic(TOPIC_CHECK_TIMEOUT).await {
        Ok(_) => {}
        Err(error @ ProducerError::MissingTopic { .. }) => bail!(
            "{error} on {} (`auditlog migrate` creates it)",
            settings.kafka_brokers
        ),
        Err(error) => tracing::warn!(%error, "could not check the topic; sending anyway"),
    }
    let end = OffsetDateTime::now_utc();
    let generator = TrafficGenerator::new(args.seed).with_time_span(end - HISTORY, end, args.count);
    tracing::info!(
        count = args.count,
        seed = args.seed,
        rate = ?args.rate,
        topic = %settings.kafka_topic,
        brokers = %settings.kafka_brokers,
        "generating audit events"
    );

    let started = Instant::now();
    let progress = (!args.no_progress && std::io::stderr().is_terminal()).then(|| {
        let tally = Arc::clone(&tally);
        let count = args.count;
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(PROGRESS_INTERVAL);
            loop {
                ticks.tick().await;
                let line = tally.line(count, started.elapsed());
                // Progress is decoration: a closed stderr must not stop the run.
                let _ = write!(std::io::stderr(), "\r{line}\x1b[K");
            }
        })
    });

    let mut stopped_by = None;
    for (index, event) in generator.enumerate() {
        if let Some(rate) = args.rate {
            let due = started + Duration::from_secs_f64(index as f64 / rate);
            if due > Instant::now() {
                tokio::time::sleep_until(due).await;
            }
        }
        // `record` waits while the queue is full, so the broker sets the pace.
        if let Err(error) = producer.record(&event).await {
            stopped_by = Some(error);
            break;
        }
        tally.enqueued.fetch_add(1, Ordering::Relaxed);
    }
    let flushed = producer
        .shutdown(producer_settings.delivery_timeout + SHUTDOWN_SLACK)
        .await;
    let elapsed = started.elapsed();
    if let Some(progress) = progress {
        progress.abort();
        let _ = writeln!(
            std::io::stderr(),
            "\r{}\x1b[K",
            tally.line(args.count, elapsed)
        );
    }

    let confirmed = tally.confirmed.load(Ordering::Relaxed);
    let failed = tally.failed.load(Ordering::Relaxed);
    tracing::info!(
        confirmed,
        failed,
        seconds = elapsed.as_secs_f64(),
        events_per_second = confirmed as f64 / elapsed.as_secs_f64().max(1e-3),
        "generation finished"
    );
    if let Some(error) = stopped_by {
        bail!(
            "stopped after enqueueing {} of {} events: {error}",
            tally.enqueued.load(Ordering::Relaxed),
            args.count
        );
    }
    if failed > 0 {
        let first = tally.first_error.get().map_or("", String::as_str);
        bail!(
            "{failed} of {} events were not delivered; first error: {first}",
            args.count
        );
    }
    flushed.context("waiting for the last acknowledgements")?;
    if confirmed != args.count {
        bail!(
            "only {confirmed} of {} events were confirmed delivered",
            args.count
        );
    }
    Ok(())
}
