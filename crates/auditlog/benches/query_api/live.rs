//! Live traffic while the queries run: a steady event rate through the SDK into a topic of the
//! bench's own, a running `auditlog ingest` writing into the bench table, and the same events
//! into Coder's table; freshness probes measure send → visible through the API.
//!
//! ```text
//!  pacer (every 10 ms) ─► Producer (SDK) ─► Kafka bench topic ─► auditlog ingest ─► audit_bench
//!        └──────────────► COPY batch ─────────────────────────────────────────────► Coder's audit_logs
//!  probe: note one event's request_id and send instant; poll GET /api/v2/audit?q=request_id:..
//! ```
//!
//! Live events are timed from the end of the loaded span (2026-01-01) on, at the wall clock's
//! pace, so they are the table's newest rows, as continuous ingest makes them, and sit in
//! partitions of their own: [`remove_live_rows`] drops them again, and a next run starts from
//! the cached load as it was.

use std::time::{Duration, Instant};

use auditlog_producer::Producer;
use auditlog_testkit::{
    AuditlogCommand, AuditlogProcess, create_topic, free_port, kafka_brokers, unique_name,
};
use auditlog_traffic::TrafficGenerator;
use bytes::Bytes;
use futures::SinkExt as _;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use crate::coder;

/// The pacer's tick: the rate is spread over 100 sends a second.
const TICK: Duration = Duration::from_millis(10);
/// How often a freshness probe polls the API.
const PROBE_POLL: Duration = Duration::from_millis(50);
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);
/// The first instant of the live rows; the loaded events all come before it.
const LIVE_FROM: &str = "2026-01-01 00:00:00";
/// The first partition (`toYYYYMM(time)`) that can hold live rows.
const LIVE_PARTITION: &str = "202601";

type ProbeReply = oneshot::Sender<(Uuid, Instant)>;

/// What live traffic sent.
pub struct Paced {
    /// Events sent to Kafka.
    pub sent: u64,
    /// Events Coder's table missed because its writer was behind.
    pub coder_skipped: u64,
}

/// The running live traffic; [`LiveTraffic::stop`] ends it.
pub struct LiveTraffic {
    ingester: AuditlogProcess,
    topics: Vec<String>,
    stop_tx: watch::Sender<bool>,
    probe_tx: mpsc::Sender<ProbeReply>,
    pacer: tokio::task::JoinHandle<Result<Paced, String>>,
    coder_writer: Option<tokio::task::JoinHandle<Result<u64, String>>>,
}

impl LiveTraffic {
    /// Starts the ingester and the pacer at `events_per_second`; also into Coder's table
    /// when `coder_port` is given.
    pub async fn start(
        clickhouse_url: &str,
        database: &str,
        events_per_second: u32,
        coder_port: Option<u16>,
    ) -> Result<Self, String> {
        let brokers = kafka_brokers();
        let topic = unique_name("audit-bench-live");
        let dlq_topic = format!("{topic}-dlq");
        create_topic(&brokers, &topic, 6).await;
        create_topic(&brokers, &dlq_topic, 1).await;
        let metrics_port = free_port();
        let ingester = AuditlogCommand::new(env!("CARGO_BIN_EXE_auditlog"), "bench_live_ingest")
            .arg("ingest")
            .env("AUDITLOG_KAFKA_BROKERS", &brokers)
            .env("AUDITLOG_KAFKA_TOPIC", &topic)
            .env("AUDITLOG_KAFKA_DLQ_TOPIC", &dlq_topic)
            .env("AUDITLOG_KAFKA_GROUP", &topic)
            .env("AUDITLOG_CLICKHOUSE_URL", clickhouse_url)
            .env("AUDITLOG_CLICKHOUSE_DATABASE", database)
            .env(
                "AUDITLOG_INGEST_METRICS_LISTEN",
                format!("127.0.0.1:{metrics_port}"),
            )
            .log_level("warn")
            .ops_port(metrics_port)
            .spawn();
        let producer = Producer::builder(&brokers, &topic)
            .build()
            .map_err(|error| format!("producer: {error}"))?;

        let (stop_tx, stop_rx) = watch::channel(false);
        let (probe_tx, probe_rx) = mpsc::channel::<ProbeReply>(16);
        let (coder_tx, coder_writer) = match coder_port {
            Some(port) => {
                let (rows_tx, rows_rx) = mpsc::channel::<Vec<u8>>(1_000);
                let writer = tokio::spawn(write_to_coder(port, rows_rx));
                (Some(rows_tx), Some(writer))
            }
            None => (None, None),
        };
        let pacer = tokio::spawn(pace(
            producer,
            events_per_second,
            stop_rx,
            probe_rx,
            coder_tx,
        ));
        Ok(Self {
            ingester,
            topics: vec![topic, dlq_topic],
            stop_tx,
            probe_tx,
            pacer,
            coder_writer,
        })
    }

    /// Send → visible of `num_probes` events, one after the other (one probe polls at a
    /// time, so the probing itself stays a light load); `visible` asks our API whether the
    /// event with that request id can be read yet.
    pub async fn freshness<V, Fut>(
        &self,
        num_probes: usize,
        visible: V,
    ) -> Result<Vec<Duration>, String>
    where
        V: Fn(Uuid) -> Fut,
        Fut: std::future::Future<Output = Result<bool, String>>,
    {
        let mut samples = Vec::with_capacity(num_probes);
        for _ in 0..num_probes {
            let (reply_tx, reply_rx) = oneshot::channel();
            self.probe_tx
                .send(reply_tx)
                .await
                .map_err(|_| "the pacer stopped".to_owned())?;
            let (request_id, sent) = reply_rx
                .await
                .map_err(|_| "the pacer dropped a probe".to_owned())?;
            loop {
                if visible(request_id).await? {
                    samples.push(sent.elapsed());
                    break;
                }
                if sent.elapsed() > PROBE_TIMEOUT {
                    return Err(format!(
                        "the event of request_id {request_id} was not visible after {PROBE_TIMEOUT:?}"
                    ));
                }
                tokio::time::sleep(PROBE_POLL).await;
            }
        }
        Ok(samples)
    }

    /// Stops the pacer, the ingester, and deletes the bench's topics; returns what was sent
    /// and the rows written to Coder's table.
    pub async fn stop(mut self) -> Result<(Paced, u64), String> {
        let _ = self.stop_tx.send(true);
        let paced = (&mut self.pacer)
            .await
            .map_err(|error| error.to_string())
            .and_then(|paced| paced);
        let coder_rows = match self.coder_writer.take() {
            Some(writer) => writer
                .await
                .map_err(|error| error.to_string())
                .and_then(|written| written),
            None => Ok(0),
        };
        // An ingester that died mid-round (killed from outside, or an error on its stderr)
        // would make the round's figures those of a table without ingest.
        let early_exit = self.ingester.exit_status();
        self.ingester.kill_dash_nine();
        // The topics are the bench's own; leave nothing behind on the shared broker, even
        // when the round failed.
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", kafka_brokers())
            .create()
            .map_err(|error| format!("kafka admin client: {error}"))?;
        let names: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        admin
            .delete_topics(&names, &AdminOptions::new())
            .await
            .map_err(|error| format!("delete the bench topics: {error}"))?;
        if let Some(status) = early_exit {
            return Err(format!(
                "auditlog ingest exited during the live round ({status}): its figures are not under ingest; log:\n{}",
                self.ingester.log()
            ));
        }
        Ok((paced?, coder_rows?))
    }
}

impl Drop for LiveTraffic {
    fn drop(&mut self) {
        self.pacer.abort();
        self.ingester.kill_dash_nine();
    }
}

/// Sends `events_per_second` generated events, timed now with fresh ids, spread over ticks;
/// answers probes with the request id and send instant of the next event.
async fn pace(
    producer: Producer,
    events_per_second: u32,
    mut stop_rx: watch::Receiver<bool>,
    mut probe_rx: mpsc::Receiver<ProbeReply>,
    coder_tx: Option<mpsc::Sender<Vec<u8>>>,
) -> Result<Paced, String> {
    let per_tick = (events_per_second as u64 * TICK.as_millis() as u64 / 1_000).max(1);
    let mut generator = TrafficGenerator::new(crate::SEED + 1);
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sent = 0_u64;
    let mut coder_skipped = 0_u64;
    // Live events continue the loaded history: stamped from the end of the loaded span on,
    // at the wall clock's pace, as continuous ingest would have them.
    let live_from = time::PrimitiveDateTime::parse(
        LIVE_FROM,
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
    )
    .map_err(|error| format!("LIVE_FROM: {error}"))?
    .assume_utc();
    let started_at = OffsetDateTime::now_utc();
    loop {
        tokio::select! {
            biased;
            _ = stop_rx.changed() => break,
            _ = ticker.tick() => {}
        }
        let mut probe = probe_rx.try_recv().ok();
        let mut coder_rows = String::new();
        for _ in 0..per_tick {
            let mut event = match generator.next() {
                Some(event) => event,
                // Its span is finite; ids and times are replaced anyway, so start it over.
                None => {
                    generator = TrafficGenerator::new(crate::SEED + 1);
                    generator
                        .next()
                        .ok_or("the live generator yields nothing")?
                }
            };
            event.time = live_from + (OffsetDateTime::now_utc() - started_at);
            event.id = Uuid::now_v7();
            event.request_id = Uuid::now_v7();
            let started = Instant::now();
            producer
                .record(&event)
                .await
                .map_err(|error| format!("live send: {error}"))?;
            if let Some(reply) = probe.take() {
                let _ = reply.send((event.request_id, started));
            }
            if coder_tx.is_some() {
                coder::push_audit_log(&mut coder_rows, &event);
            }
            sent += 1;
        }
        // A PostgreSQL that falls behind gets fewer rows (counted, in its favour) rather than
        // slowing our side's rate.
        if let Some(coder_tx) = &coder_tx
            && coder_tx.try_send(coder_rows.into_bytes()).is_err()
        {
            coder_skipped += per_tick;
        }
    }
    producer
        .flush(Duration::from_secs(30))
        .await
        .map_err(|error| format!("live flush: {error}"))?;
    Ok(Paced {
        sent,
        coder_skipped,
    })
}

/// Writes each tick's rows to Coder's table, one COPY per tick, until the pacer stops. (Coder
/// inserts one row per request; one COPY per 10 ms is the cheaper load, in the anchor's favour.)
async fn write_to_coder(port: u16, mut rows_rx: mpsc::Receiver<Vec<u8>>) -> Result<u64, String> {
    let client = coder::connect(port).await?;
    let mut written = 0_u64;
    while let Some(rows) = rows_rx.recv().await {
        let num_rows = rows.iter().filter(|byte| **byte == b'\n').count() as u64;
        let sink = client
            .copy_in::<_, Bytes>(coder::AUDIT_LOGS_COPY)
            .await
            .map_err(|error| format!("live copy into coder's table: {error}"))?;
        futures::pin_mut!(sink);
        sink.send(Bytes::from(rows))
            .await
            .map_err(|error| format!("live copy into coder's table: {error}"))?;
        sink.finish()
            .await
            .map_err(|error| format!("live copy into coder's table: {error}"))?;
        written += num_rows;
    }
    Ok(written)
}

/// Drops the rows live traffic added, on both sides (also those of an interrupted run).
pub async fn remove_live_rows(
    clickhouse: &clickhouse::Client,
    coder_port: Option<u16>,
) -> Result<(), String> {
    let partitions = clickhouse
        .query(
            "SELECT DISTINCT partition_id FROM system.parts \
             WHERE database = currentDatabase() AND table = ? AND partition_id >= ?",
        )
        .bind(crate::TABLE)
        .bind(LIVE_PARTITION)
        .fetch_all::<String>()
        .await
        .map_err(|error| format!("find the live partitions: {error}"))?;
    for partition in partitions {
        clickhouse
            .query(&format!("ALTER TABLE {} DROP PARTITION ID ?", crate::TABLE))
            .bind(&partition)
            .execute()
            .await
            .map_err(|error| format!("drop live partition {partition}: {error}"))?;
    }
    if let Some(port) = coder_port {
        let client = coder::connect(port).await?;
        let deleted = client
            .execute(
                &format!("DELETE FROM audit_logs WHERE \"time\" >= '{LIVE_FROM}+00'"),
                &[],
            )
            .await
            .map_err(|error| format!("delete coder's live rows: {error}"))?;
        if deleted > 0 {
            client
                .batch_execute("VACUUM ANALYZE audit_logs")
                .await
                .map_err(|error| format!("vacuum coder's audit_logs: {error}"))?;
        }
    }
    Ok(())
}
