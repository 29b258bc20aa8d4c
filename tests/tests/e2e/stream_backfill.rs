//! Whole-system tests of `auditlog stream backfill`: events ingested into ClickHouse by the
//! real ingester, then re-sent by the real binary to a webhook receiver that checks every
//! signature.
//!
//! What the tests hold the backfill to:
//! - a time range re-sends exactly the stored events of `[from, to)` that the sink's filter
//!   selects (computed here from how the events were made, and checked against ClickHouse),
//!   each once, in batches named apart from the live stream's, with a summary that says what
//!   was read, sent and skipped;
//! - an offset range re-sends exactly the events at those offsets of the partition (as the
//!   topic holds them), leaves the sink's consumer group without any committed offset, and a
//!   range past the topic's retention is refused with a pointer to the time form;
//! - into an `s3` archive, a time range lands in its own run folder beside the live chain, a
//!   rerun replaces it, and `auditlog verify --archive` passes with both, then names a
//!   backfill object taken out.

use auditlog_e2e::stream::every_third_by_carol;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use auditlog_e2e::pipeline::{PipelineTarget, auditlog_binary, events, log_dir, produce_events};
use auditlog_e2e::{read_topic, unique_name};
use auditlog_event::{AuditEvent, EventCodec, Framing};
use auditlog_testkit::{S3Server, WebhookReceiver, free_port};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(180);
const NUM_EVENTS: usize = 300;
const PARTITIONS: i32 = 2;
const SECRET: &str = "a webhook secret for the backfill tests";

/// `events` with whole-second times one millisecond apart (so the store's microseconds hold
/// them exactly) and every third actor "Carol": the events `username:carol` selects.
fn made_events(seed: u64) -> (Vec<AuditEvent>, BTreeSet<usize>) {
    let mut all = events(seed, NUM_EVENTS);
    let now = OffsetDateTime::now_utc() - time::Duration::days(1);
    let base = now.replace_nanosecond(0).expect("a valid instant");
    for (index, event) in all.iter_mut().enumerate() {
        event.time = base + time::Duration::milliseconds(index as i64);
    }
    let carol = every_third_by_carol(&mut all);
    (all, carol)
}

/// A pipeline with the events ingested into its database.
async fn ingested(prefix: &str, events: &[AuditEvent]) -> PipelineTarget {
    let target = PipelineTarget::create(prefix, PARTITIONS).await;
    target.migrate();
    produce_events(&target.topic, events).await;
    let mut ingester = target.spawn_ingester(&format!("{prefix}-ingester"), &[]);
    let counts = target.wait_for_rows(events.len() as u64, TIMEOUT).await;
    assert_eq!(counts.1, events.len() as u64, "{}", ingester.log());
    ingester.terminate(Duration::from_secs(30));
    target
}

fn write_config(sink: &str, webhook: &WebhookReceiver) -> PathBuf {
    let path = log_dir().join(format!("{sink}.toml"));
    let text = format!(
        r#"
[[stream.sinks]]
name = "{sink}"
kind = "webhook"
format = "coder"
filter = "username:carol"
url = "{url}"
secret = "{SECRET}"
batch_events = 16
"#,
        url = webhook.url(),
    );
    std::fs::write(&path, text).expect("config file");
    path
}

fn backfill(target: &PipelineTarget, config: &PathBuf, sink: &str, range: &[&str]) -> Output {
    Command::new(auditlog_binary())
        .arg("--config")
        .arg(config)
        .args(["stream", "backfill", "--sink", sink])
        .args(range)
        .envs(target.env())
        .output()
        .expect("run auditlog stream backfill")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The ids the receiver got, each once (a panic names repeats), every request signed.
fn received_once(webhook: &WebhookReceiver) -> BTreeSet<Uuid> {
    assert_eq!(webhook.bad_signatures(), 0);
    let mut counts: BTreeMap<Uuid, usize> = BTreeMap::new();
    for line in webhook.lines() {
        let id = line
            .get("id")
            .and_then(Value::as_str)
            .and_then(|text| text.parse().ok())
            .unwrap_or_else(|| panic!("no id in {line}"));
        *counts.entry(id).or_default() += 1;
    }
    let repeated: Vec<_> = counts.iter().filter(|(_, count)| **count > 1).collect();
    assert!(
        repeated.is_empty(),
        "delivered more than once: {repeated:?}"
    );
    counts.into_keys().collect()
}

/// `20261201T080000Z`, with `.ffffff` before the `Z` when the instant has microseconds: how
/// the docs say a time range's run folder is named.
fn compact(time: OffsetDateTime) -> String {
    let seconds = time
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]"
        ))
        .unwrap();
    match time.microsecond() {
        0 => format!("{seconds}Z"),
        micros => format!("{seconds}.{micros:06}Z"),
    }
}

fn rfc3339(time: OffsetDateTime) -> String {
    time.format(&Rfc3339).expect("formattable")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_time_range_resends_exactly_the_stored_events_the_filter_selects() {
    let (all, carol) = made_events(61);
    let target = ingested("backfill_time", &all).await;
    let webhook = WebhookReceiver::start(SECRET).await;
    let sink = unique_name("backfill-time");
    let config = write_config(&sink, &webhook);
    let (from, to) = (all[100].time, all[250].time);
    let expected: BTreeSet<Uuid> = (100..250)
        .filter(|index| carol.contains(index))
        .map(|index| all[index].id)
        .collect();
    assert_eq!(expected.len(), 50);

    // What the store itself says the range and filter hold, read apart from the binary.
    let stored: Vec<String> = target
        .client()
        .query(
            "SELECT DISTINCT toString(id) FROM audit_logs \
             WHERE time >= fromUnixTimestamp64Micro(?) AND time < fromUnixTimestamp64Micro(?) \
             AND lower(user_username) = 'carol'",
        )
        .bind((from.unix_timestamp_nanos() / 1000) as i64)
        .bind((to.unix_timestamp_nanos() / 1000) as i64)
        .fetch_all()
        .await
        .expect("reading the store");
    let stored: BTreeSet<Uuid> = stored.iter().map(|id| id.parse().unwrap()).collect();
    assert_eq!(stored, expected, "the store holds what the test made");

    let output = backfill(
        &target,
        &config,
        &sink,
        &["--from", &rfc3339(from), "--to", &rfc3339(to)],
    );
    let log = text(&output);
    assert!(output.status.success(), "{log}");
    assert_eq!(received_once(&webhook), expected, "{log}");
    assert!(
        log.contains("150 read, 50 delivered in 4 batch(es), 100 skipped by the filter"),
        "{log}"
    );
    let batches = webhook.batches();
    assert_eq!(batches.len(), 4, "{batches:?}");
    assert!(
        batches.iter().all(|name| name.starts_with("backfill-")),
        "batch names apart from the live stream's: {batches:?}"
    );

    // An empty range is refused before anything is read or sent.
    let output = backfill(
        &target,
        &config,
        &sink,
        &["--from", &rfc3339(to), "--to", &rfc3339(from)],
    );
    assert!(!output.status.success());
    assert!(
        text(&output).contains("is not before --to"),
        "{}",
        text(&output)
    );
    assert_eq!(webhook.lines().len(), 50);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_offset_range_resends_those_messages_and_refuses_offsets_past_retention() {
    let (all, carol) = made_events(62);
    let target = ingested("backfill_offsets", &all).await;
    let webhook = WebhookReceiver::start(SECRET).await;
    let sink = unique_name("backfill-offsets");
    let config = write_config(&sink, &webhook);

    // Which event sits at which offset of partition 1, as the topic holds them.
    let records = read_topic(
        &target.brokers,
        &target.topic,
        PARTITIONS,
        NUM_EVENTS,
        TIMEOUT,
    )
    .await;
    let codec = EventCodec::new(Framing::SingleObject);
    let carol_ids: BTreeSet<Uuid> = carol.iter().map(|index| all[*index].id).collect();
    let partition_one: BTreeMap<i64, Uuid> = records
        .iter()
        .filter(|record| record.partition == 1)
        .map(|record| {
            let payload = record.payload.as_deref().expect("an event");
            (record.offset, codec.decode(payload).expect("an event").id)
        })
        .collect();
    assert!(
        partition_one.len() >= 60,
        "{} on partition 1",
        partition_one.len()
    );
    let expected: BTreeSet<Uuid> = partition_one
        .range(5..45)
        .map(|(_, id)| *id)
        .filter(|id| carol_ids.contains(id))
        .collect();
    assert!(!expected.is_empty());

    let output = backfill(
        &target,
        &config,
        &sink,
        &[
            "--partition",
            "1",
            "--from-offset",
            "5",
            "--to-offset",
            "45",
        ],
    );
    let log = text(&output);
    assert!(output.status.success(), "{log}");
    assert_eq!(received_once(&webhook), expected, "{log}");
    assert!(
        log.contains(&format!("40 read, {} delivered", expected.len())),
        "{log}"
    );
    assert!(
        log.contains(&format!("{} skipped by the filter", 40 - expected.len())),
        "{log}"
    );

    // The sink's consumer group committed nothing: the live stream starts where it was.
    let group = format!("auditlog-stream-{sink}");
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &target.brokers)
        .set("group.id", &group)
        .create()
        .expect("consumer");
    let mut partitions = TopicPartitionList::new();
    partitions.add_partition(&target.topic, 1);
    let committed = consumer
        .committed_offsets(partitions, Duration::from_secs(10))
        .expect("committed offsets");
    assert!(
        committed
            .elements()
            .iter()
            .all(|element| !matches!(element.offset(), Offset::Offset(_))),
        "{committed:?}"
    );

    // Offsets the topic no longer holds: the run is refused and points at the time form.
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &target.brokers)
        .create()
        .expect("admin client");
    let mut before = TopicPartitionList::new();
    before
        .add_partition_offset(&target.topic, 1, Offset::Offset(10))
        .expect("offset");
    admin
        .delete_records(&before, &AdminOptions::new())
        .await
        .expect("deleting records");
    let output = backfill(
        &target,
        &config,
        &sink,
        &[
            "--partition",
            "1",
            "--from-offset",
            "0",
            "--to-offset",
            "20",
        ],
    );
    let log = text(&output);
    assert!(!output.status.success(), "{log}");
    assert!(log.contains("past the topic's retention"), "{log}");
    assert!(log.contains("--from TIME --to TIME"), "{log}");
    assert_eq!(
        webhook.lines().len(),
        expected.len(),
        "nothing more was sent"
    );
}

const BUCKET: &str = "audit-archive";

fn with_s3(command: &mut Command, s3: &S3Server) {
    let credentials = s3.credentials();
    command
        .env("AUDITLOG_S3_ACCESS_KEY", &credentials.access_key)
        .env("AUDITLOG_S3_SECRET_KEY", &credentials.secret_key);
}

/// `auditlog verify --archive` as JSON: whether it passed, and the report.
fn verify_archive(s3: &S3Server, prefix: &str) -> (bool, Value) {
    let mut command = Command::new(auditlog_binary());
    command.args([
        "verify",
        "--archive",
        &format!("s3://{BUCKET}/{prefix}"),
        "--archive-endpoint",
        &s3.endpoint(),
        "--format",
        "json",
    ]);
    with_s3(&mut command, s3);
    let output = command.output().expect("auditlog verify runs");
    let report = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("verify's JSON ({error}): {}", text(&output)));
    (output.status.success(), report)
}

/// The ids in a gzipped NDJSON object, decompressed by Python's gzip (not the sink's code).
fn ids_in_object(body: &[u8]) -> Vec<Uuid> {
    use std::io::Write;
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import gzip, sys; sys.stdout.buffer.write(gzip.decompress(sys.stdin.buffer.read()))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child.stdin.take().unwrap().write_all(body).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line).expect("a JSON line");
            value["id"].as_str().unwrap().parse().unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_archive_keeps_backfills_beside_its_chain_and_verifies_both() {
    let (all, carol) = made_events(63);
    let target = ingested("backfill_s3", &all).await;
    let s3 = S3Server::start().await;
    s3.create_bucket(BUCKET).await;
    let prefix = unique_name("backfill").replace('_', "-").to_lowercase();
    let sink = unique_name("backfill-archive");
    let config = log_dir().join(format!("{sink}.toml"));
    std::fs::write(
        &config,
        format!(
            "[[stream.sinks]]\nname = \"{sink}\"\nkind = \"s3\"\nfilter = \"username:carol\"\n\
             url = \"s3://{BUCKET}/{prefix}\"\nendpoint = \"{}\"\nbatch_events = 16\n\
             batch_max_age_ms = 200\n",
            s3.endpoint()
        ),
    )
    .expect("config file");

    // The live archive first: a chain per partition.
    let mut live = Command::new(auditlog_binary());
    live.arg("--config")
        .arg(&config)
        .args(["stream", "--until-caught-up", "--metrics-listen"])
        .arg(format!("127.0.0.1:{}", free_port()))
        .envs(target.env());
    with_s3(&mut live, &s3);
    let output = live.output().expect("auditlog stream runs");
    assert!(output.status.success(), "{}", text(&output));

    let (from, to) = (all[100].time, all[250].time);
    let expected: BTreeSet<Uuid> = (100..250)
        .filter(|index| carol.contains(index))
        .map(|index| all[index].id)
        .collect();
    let range = [
        "--from".to_owned(),
        rfc3339(from),
        "--to".to_owned(),
        rfc3339(to),
    ];
    let range: Vec<&str> = range.iter().map(String::as_str).collect();
    // Twice: the second run of the same range replaces the first's objects.
    for run in 0..2 {
        let mut command = Command::new(auditlog_binary());
        command
            .arg("--config")
            .arg(&config)
            .args(["stream", "backfill", "--sink", &sink])
            .args(&range)
            .envs(target.env());
        with_s3(&mut command, &s3);
        let output = command.output().expect("auditlog stream backfill runs");
        let log = text(&output);
        assert!(output.status.success(), "run {run}: {log}");
        assert!(log.contains("150 read, 50 delivered"), "run {run}: {log}");
    }
    let run_folder = format!("{prefix}/backfill/time-{}-{}/", compact(from), compact(to));
    let keys = s3.list_keys(BUCKET, &run_folder).await;
    let objects: Vec<&String> = keys
        .iter()
        .filter(|key| key.ends_with(".ndjson.gz"))
        .collect();
    assert_eq!(
        objects.len(),
        4,
        "one object per batch, the rerun's only: {keys:?}"
    );
    assert!(
        keys.contains(&format!("{run_folder}manifest.json")),
        "{keys:?}"
    );
    let mut archived = Vec::new();
    for key in &objects {
        let body = s3.get_object(BUCKET, key).await.expect("the object");
        archived.extend(ids_in_object(&body));
    }
    let archived_set: BTreeSet<Uuid> = archived.iter().copied().collect();
    assert_eq!(archived.len(), archived_set.len(), "each event once");
    assert_eq!(archived_set, expected);

    let (valid, report) = verify_archive(&s3, &prefix);
    assert!(valid, "the archive with a backfill passes: {report:#}");
    assert_eq!(
        report["chains"].as_array().unwrap().len(),
        PARTITIONS as usize
    );
    let runs = report["backfill_runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{report:#}");
    assert_eq!(
        (runs[0]["events"].as_u64(), runs[0]["filtered"].as_u64()),
        (Some(50), Some(100))
    );

    // An object of the run taken out is named.
    let taken = objects[1].clone();
    let deleted = s3
        .request(
            "DELETE",
            &format!("/{BUCKET}/{taken}"),
            &[],
            Default::default(),
        )
        .await
        .expect("delete answered");
    assert!(deleted.status.is_success(), "{}", deleted.text());
    let (valid, report) = verify_archive(&s3, &prefix);
    assert!(!valid, "{report:#}");
    let problems = report["problems"].to_string();
    assert!(
        problems.contains(&taken) && problems.contains("is missing"),
        "{problems}"
    );
}
