//! Whole-system tests of `auditlog stream`: events published through the SDK into a topic of
//! the test's own, streamed by the real binary to a webhook receiver that checks every
//! signature and to the test kit's Splunk HTTP Event Collector (acknowledgements included;
//! no Splunk server can run here), with `--until-caught-up`.
//!
//! What the tests hold the stream to:
//! - a sink's filter selects exactly the events expected (computed here from how they were
//!   made, not with the stream's own matcher), each once, every request signed and fresh;
//! - a sink without filter delivers every valid event, in OCSF, each once, acknowledged;
//! - a message that is not an event is skipped and counted, never stops the stream;
//! - a second run has nothing left to send (offsets were committed after delivery);
//! - destinations that fail for a while lose nothing, and the sink is unready meanwhile.

use auditlog_e2e::stream::{every_third_by_carol, ids_once, publish, wait_for_exit};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use auditlog_e2e::pipeline::{events, produce_payloads};
use auditlog_event::AuditEvent;
use auditlog_testkit::{
    AuditlogCommand, AuditlogProcess, SplunkHecReceiver, WebhookReceiver, auditlog_binary,
    create_topic, free_port, kafka_brokers, log_dir, metric_sum, unique_name,
};
use serde_json::Value;
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(180);
const NUM_EVENTS: usize = 300;
const PARTITIONS: i32 = 3;
const SECRET: &str = "a webhook secret for the stream tests";
const HEC_TOKEN: &str = "5e1f8a4c-hec-token";

/// Events whose every third actor is "Carol" (spelled with a capital, as stored; the filter
/// says `username:carol`): the ones the webhook's filter must select, by construction.
fn carol_events(seed: u64) -> (Vec<AuditEvent>, BTreeSet<Uuid>) {
    let mut all = events(seed, NUM_EVENTS);
    let carol = every_third_by_carol(&mut all)
        .into_iter()
        .map(|index| all[index].id)
        .collect();
    (all, carol)
}

/// The sinks' names, unique per test: a sink's name is its consumer group's, and tests that
/// run at once must not share groups.
struct SinkNames {
    webhook: String,
    splunk: String,
}

fn sink_names(test: &str) -> SinkNames {
    let suffix = unique_name(test);
    SinkNames {
        webhook: format!("webhook-{suffix}"),
        splunk: format!("splunk-{suffix}"),
    }
}

fn write_config(names: &SinkNames, webhook: &WebhookReceiver, hec: &SplunkHecReceiver) -> PathBuf {
    let path = log_dir().join(format!("{}.toml", names.webhook));
    let text = format!(
        r#"
[[stream.sinks]]
name = "{webhook_name}"
kind = "webhook"
format = "coder"
filter = "username:carol"
url = "{webhook}"
secret = "{SECRET}"
batch_events = 40
batch_max_age_ms = 200
headers = {{ "X-Tenant" = "acme" }}

[[stream.sinks]]
name = "{splunk_name}"
kind = "splunk_hec"
format = "ocsf"
url = "{hec}"
token = "{HEC_TOKEN}"
ack = true
ack_poll_ms = 50
index = "audit"
batch_events = 64
batch_max_age_ms = 200
"#,
        webhook = webhook.url(),
        hec = hec.url(),
        webhook_name = names.webhook,
        splunk_name = names.splunk,
    );
    std::fs::write(&path, text).expect("config file");
    path
}

fn spawn_stream(name: &str, config: &Path, topic: &str, ops_port: u16) -> AuditlogProcess {
    AuditlogCommand::new(auditlog_binary(), name)
        .args([
            "--config",
            config.to_str().expect("utf-8 path"),
            "--kafka-topic",
            topic,
            "stream",
            "--until-caught-up",
            "--metrics-listen",
            &format!("127.0.0.1:{ops_port}"),
        ])
        .ops_port(ops_port)
        .spawn()
}

fn uuid_at(value: &Value, pointer: &str) -> Uuid {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| panic!("no uuid at {pointer} in {value}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn stream_delivers_filtered_signed_and_acknowledged_events_once() {
    let topic = unique_name("stream");
    create_topic(&kafka_brokers(), &topic, PARTITIONS).await;
    let (all, carol) = carol_events(41);
    publish(&topic, &all).await;
    // Two messages that are not events, among the real ones.
    produce_payloads(
        &topic,
        vec![
            ("junk-1".into(), b"not avro".to_vec()),
            ("junk-2".into(), Vec::new()),
        ],
    )
    .await;
    let more = events(42, 30);
    publish(&topic, &more).await;
    let mut every_id: BTreeSet<Uuid> = all.iter().map(|event| event.id).collect();
    every_id.extend(more.iter().map(|event| event.id));

    let webhook = WebhookReceiver::start(SECRET).await;
    let hec = SplunkHecReceiver::start(HEC_TOKEN, true).await;
    let names = sink_names("stream");
    let config = write_config(&names, &webhook, &hec);
    let mut stream = spawn_stream("stream", &config, &topic, free_port());
    let status = wait_for_exit(&mut stream, TIMEOUT).await;
    let log = stream.log();
    assert!(status.success(), "exit {status}; log:\n{log}");

    // The webhook: exactly Carol's events, once each, every request signed and fresh.
    let lines = webhook.lines();
    let delivered = ids_once(lines.iter().map(|line| uuid_at(line, "/id")), "webhook");
    assert_eq!(
        delivered, carol,
        "the filter's events, no more and no fewer; log:\n{log}"
    );
    assert_eq!((webhook.bad_signatures(), webhook.stale()), (0, 0));
    for line in &lines {
        assert_eq!(line["user"]["username"], "Carol", "coder format: {line}");
        assert!(line.get("description").is_some() && line.get("resource_link").is_some());
    }
    assert!(
        webhook
            .batches()
            .iter()
            .all(|batch| batch.starts_with(&format!("{topic}/"))),
        "{:?}",
        webhook.batches()
    );

    // Splunk: every valid event, once, in OCSF, acknowledged.
    let hec_events = hec.events();
    let indexed = ids_once(
        hec_events
            .iter()
            .map(|event| uuid_at(event, "/event/metadata/uid")),
        "splunk_hec",
    );
    assert_eq!(indexed, every_id, "every valid event; log:\n{log}");
    assert!(hec.ack_polls() > 0, "acknowledgements were polled");
    assert_eq!(hec.refused(), 0, "no request was refused");
    for event in &hec_events {
        assert_eq!(event["index"], "audit");
        assert_eq!(event["sourcetype"], "auditlog:ocsf");
        assert!(event["time"].as_f64().is_some());
        assert!(event["event"]["class_uid"].as_u64().is_some());
    }

    // The two messages that are not events were skipped, each with its reason, by each sink.
    assert_eq!(
        log.matches("skipping a message that is not a valid event")
            .count(),
        4,
        "{log}"
    );
    assert!(log.contains("reason=decode"), "{log}");

    // A second run finds everything committed: nothing is sent again.
    let requests_before = (webhook.requests(), hec.requests());
    let mut again = spawn_stream("stream_again", &config, &topic, free_port());
    let status = wait_for_exit(&mut again, TIMEOUT).await;
    assert!(status.success(), "exit {status}; log:\n{}", again.log());
    assert_eq!(
        (webhook.requests(), hec.requests()),
        requests_before,
        "a caught-up sink sends nothing; log:\n{}",
        again.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn destinations_failing_for_a_while_lose_nothing() {
    let topic = unique_name("stream_outage");
    create_topic(&kafka_brokers(), &topic, PARTITIONS).await;
    let (all, carol) = carol_events(43);
    publish(&topic, &all).await;
    let every_id: BTreeSet<Uuid> = all.iter().map(|event| event.id).collect();

    let webhook = WebhookReceiver::start(SECRET).await;
    let hec = SplunkHecReceiver::start(HEC_TOKEN, true).await;
    // The webhook answers 503 to its next 6 requests; Splunk is busy until told otherwise.
    webhook.fail_next(6, 503);
    hec.set_unavailable(true);
    let names = sink_names("stream_outage");
    let config = write_config(&names, &webhook, &hec);
    let ops_port = free_port();
    let mut stream = spawn_stream("stream_outage", &config, &topic, ops_port);

    // While Splunk refuses, the process reports itself unready and counts the failures.
    let deadline = Instant::now() + TIMEOUT;
    let mut unready = None;
    while Instant::now() < deadline && stream.is_running() {
        if let Some(response) = stream.ops_get("/readyz").await
            && response.status == 503
            && response
                .text()
                .contains(&format!("sink {} failing", names.splunk))
        {
            unready = Some(response.text());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let unready = unready.unwrap_or_else(|| panic!("never unready; log:\n{}", stream.log()));
    assert!(
        unready.contains("attempts") && unready.contains("503"),
        "{unready}"
    );
    let metrics = stream.metrics().await.unwrap_or_default();
    assert!(
        metric_sum(&metrics, "auditlog_stream_delivery_failures_total") > 0.0,
        "{metrics}"
    );
    assert!(
        metric_sum(&metrics, "auditlog_stream_sink_failing") >= 1.0,
        "{metrics}"
    );
    assert!(
        metric_sum(&metrics, "auditlog_stream_lag_messages") > 0.0,
        "the undelivered events show as lag: {metrics}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(stream.is_running(), "a failing sink must not end the run");
    assert!(hec.events().is_empty(), "nothing is accepted while busy");
    hec.set_unavailable(false);

    let status = wait_for_exit(&mut stream, TIMEOUT).await;
    let log = stream.log();
    assert!(status.success(), "exit {status}; log:\n{log}");
    assert_eq!(
        webhook.failures_left(),
        0,
        "the webhook's outage was used up"
    );
    assert!(hec.refused() > 0 && webhook.requests() > 6);
    let delivered = ids_once(
        webhook.lines().iter().map(|line| uuid_at(line, "/id")),
        "webhook",
    );
    assert_eq!(delivered, carol, "log:\n{log}");
    let indexed = ids_once(
        hec.events()
            .iter()
            .map(|event| uuid_at(event, "/event/metadata/uid")),
        "splunk_hec",
    );
    assert_eq!(indexed, every_id, "log:\n{log}");
    assert!(
        log.contains("delivery failed; the partition waits"),
        "{log}"
    );
}

/// Like [`spawn_stream`], without `--until-caught-up`: it runs until killed.
fn spawn_stream_forever(name: &str, config: &Path, topic: &str) -> AuditlogProcess {
    let ops_port = free_port();
    AuditlogCommand::new(auditlog_binary(), name)
        .args([
            "--config",
            config.to_str().expect("utf-8 path"),
            "--kafka-topic",
            topic,
            "stream",
            "--metrics-listen",
            &format!("127.0.0.1:{ops_port}"),
        ])
        .ops_port(ops_port)
        .spawn()
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_dash_nine_while_a_sink_is_stuck_then_restart_loses_nothing() {
    let topic = unique_name("stream_kill");
    create_topic(&kafka_brokers(), &topic, PARTITIONS).await;
    let (all, carol) = carol_events(44);
    publish(&topic, &all).await;
    let every_id: BTreeSet<Uuid> = all.iter().map(|event| event.id).collect();

    let webhook = WebhookReceiver::start(SECRET).await;
    let hec = SplunkHecReceiver::start(HEC_TOKEN, true).await;
    webhook.fail_next(u64::MAX, 503);
    let names = sink_names("stream_kill");
    let config = write_config(&names, &webhook, &hec);
    let mut stream = spawn_stream_forever("stream_kill", &config, &topic);

    // Splunk gets everything while the webhook keeps failing; then the process dies hard.
    let deadline = Instant::now() + TIMEOUT;
    while (hec.events().len() < every_id.len() || webhook.requests() < 3)
        && Instant::now() < deadline
    {
        assert!(stream.is_running(), "{}", stream.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        webhook.lines().is_empty(),
        "the webhook accepted nothing yet"
    );
    // Splunk's last commit follows its last acknowledgement; give it that moment.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stream.kill_dash_nine();
    let splunk_before = hec.requests();

    webhook.fail_next(0, 503);
    let mut restarted = spawn_stream("stream_kill_restart", &config, &topic, free_port());
    let status = wait_for_exit(&mut restarted, TIMEOUT).await;
    let log = restarted.log();
    assert!(status.success(), "exit {status}; log:\n{log}");
    // Nothing the webhook refused was committed: every event of its filter arrives now.
    let delivered = ids_once(
        webhook.lines().iter().map(|line| uuid_at(line, "/id")),
        "webhook",
    );
    assert_eq!(delivered, carol, "log:\n{log}");
    // Splunk's sink had committed what Splunk acknowledged: nothing is sent to it again.
    assert_eq!(hec.requests(), splunk_before, "log:\n{log}");
    let indexed = ids_once(
        hec.events()
            .iter()
            .map(|event| uuid_at(event, "/event/metadata/uid")),
        "splunk_hec",
    );
    assert_eq!(indexed, every_id);
}
