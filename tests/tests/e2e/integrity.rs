//! Tamper evidence against the real stack: events go through Kafka and a real ingester that
//! digests every batch and signs checkpoints; then someone with write access to ClickHouse
//! changes what is stored, and `auditlog verify` must name exactly what was done.
//!
//! One signed dataset is ingested once; each tampering works on its own copy of the
//! database (same topics, same key, same Kafka checkpoint copies), so they cannot mask each
//! other. Untouched data after `kill -9`, rebalances and outages is checked in `ingest` and
//! `groups`, at the end of those tests.

use std::time::Duration;

use auditlog_e2e::pipeline::{PipelineTarget, events, produce_events, produce_payloads};
use auditlog_e2e::{clickhouse_execute, unique_name};
use auditlog_integrity::{Checkpoint, CheckpointSigner};
use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::query_support::{ApiServer, TestToken};

const NUM_EVENTS: usize = 3_000;
const NUM_POISON: usize = 3;
const INGEST_TIMEOUT: Duration = Duration::from_secs(180);

static DATASET: OnceCell<PipelineTarget> = OnceCell::const_new();

/// The signed dataset: events in small batches over three partitions, a few dead letters,
/// ingested in two runs of an ingester that each stop cleanly. A clean stop always signs the
/// heads that moved, so the dataset holds at least two checkpoints however the 1 s timer
/// falls (a loaded machine can ingest a whole run between two ticks), and the last one
/// covers everything.
async fn dataset() -> &'static PipelineTarget {
    DATASET
        .get_or_init(|| async {
            let target = PipelineTarget::create("integrity", 3).await;
            target.migrate();
            let all = events(13, NUM_EVENTS);
            let (first, second) = all.split_at(NUM_EVENTS / 2);
            let mut log = String::new();
            log.push_str(&ingest_run(&target, first, Vec::new(), first.len()).await);
            let poison = (0..NUM_POISON)
                .map(|index| (format!("poison-{index}"), vec![0xde, 0xad, index as u8]))
                .collect();
            log.push_str(&ingest_run(&target, second, poison, NUM_EVENTS).await);
            let checkpoints: u64 =
                scalar(&target.client(), "SELECT count() FROM ingest_checkpoints").await;
            assert!(
                checkpoints >= 2,
                "each clean stop signs a checkpoint, found {checkpoints}:\n{log}"
            );
            target.assert_verifies(NUM_EVENTS as u64, &log);
            target
        })
        .await
}

/// One ingester run: produces `batch` (then `poison`), waits until `rows_after` rows are
/// stored and every dead letter is committed, and stops the ingester cleanly. Its log.
async fn ingest_run(
    target: &PipelineTarget,
    batch: &[auditlog_event::AuditEvent],
    poison: Vec<(String, Vec<u8>)>,
    rows_after: usize,
) -> String {
    let poisoned = poison.len();
    let mut ingester = target.spawn_ingester("integrity", &["--batch-rows", "250"]);
    produce_events(&target.topic, batch).await;
    produce_payloads(&target.topic, poison).await;
    target
        .wait_for_rows(rows_after as u64, INGEST_TIMEOUT)
        .await;
    // Offsets are committed batch by batch; wait until the dead letters are too.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while poisoned > 0 && std::time::Instant::now() < deadline {
        let metrics = ingester.metrics().await.unwrap_or_default();
        if metrics.contains(&format!(
            "auditlog_ingest_dead_lettered_total{{kind=\"decode\"}} {poisoned}"
        )) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let status = ingester.terminate(Duration::from_secs(30)).expect("exits");
    let log = ingester.log();
    assert!(status.success(), "{log}");
    log
}

/// A copy of the dataset's database; the topics and the key are the dataset's. Each source
/// partition's rows are one part; `keep_parts` stops merges so that they stay apart (which
/// also stops mutations, so only a test that needs no `ALTER ... DELETE/UPDATE` asks).
async fn copy(name: &str, keep_parts: bool) -> (PipelineTarget, clickhouse::Client) {
    let source = dataset().await;
    let mut copy = source.clone();
    copy.database = unique_name(&format!("integrity_{name}"));
    copy.migrate();
    let client = copy
        .client()
        .with_setting("mutations_sync", "2")
        .with_setting("insert_deduplicate", "0");
    if keep_parts {
        clickhouse_execute(&client, "SYSTEM STOP MERGES audit_logs").await;
    }
    for partition in 0..3 {
        clickhouse_execute(&client, &format!(
                "INSERT INTO audit_logs SELECT * FROM {}.audit_logs WHERE source_partition = {partition}",
                source.database
            )).await;
    }
    for table in ["ingest_digests", "ingest_checkpoints"] {
        clickhouse_execute(
            &client,
            &format!(
                "INSERT INTO {table} SELECT * FROM {}.{table}",
                source.database
            ),
        )
        .await;
    }
    let (valid, output) = copy.verify(&["--no-progress"]);
    assert!(valid, "the untouched copy verifies:\n{output}");
    (copy, client)
}

async fn scalar<T>(client: &clickhouse::Client, sql: &str) -> T
where
    T: clickhouse::Row + for<'b> clickhouse::RowRead<Value<'b> = T> + 'static,
{
    client
        .query(sql)
        .fetch_one::<T>()
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
}

/// Runs verify on `target` and asserts it fails naming every one of `expected`.
fn assert_named(target: &PipelineTarget, args: &[&str], expected: &[String]) -> String {
    let mut all = vec!["--no-progress"];
    all.extend_from_slice(args);
    let (valid, output) = target.verify(&all);
    assert!(!valid, "tampering went unnoticed:\n{output}");
    for text in expected {
        assert!(
            output.contains(text.as_str()),
            "expected {text:?} in:\n{output}"
        );
    }
    output
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_event_is_named_by_partition_and_offset() {
    let (target, client) = copy("delete", false).await;
    let offset: i64 = scalar(
        &client,
        "SELECT source_offset FROM audit_logs WHERE source_partition = 0 ORDER BY source_offset LIMIT 1 OFFSET 100",
    )
    .await;
    clickhouse_execute(
        &client,
        &format!(
            "ALTER TABLE audit_logs DELETE WHERE source_partition = 0 AND source_offset = {offset}"
        ),
    )
    .await;
    let output = assert_named(
        &target,
        &[],
        &[format!(
            "deleted: 1 event(s) at partition 0 offsets {offset}..={offset}"
        )],
    );
    assert!(
        output.contains(&format!("{}/{} events valid", NUM_EVENTS - 1, NUM_EVENTS)),
        "{output}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_updated_field_is_named_with_the_events_id() {
    let (target, client) = copy("update", false).await;
    let (id, offset): (Uuid, i64) = {
        #[derive(clickhouse::Row, serde::Deserialize)]
        struct Picked {
            #[serde(with = "clickhouse::serde::uuid")]
            id: Uuid,
            source_offset: i64,
        }
        let picked: Picked = client
            .query("SELECT id, source_offset FROM audit_logs WHERE source_partition = 1 ORDER BY source_offset LIMIT 1 OFFSET 7")
            .fetch_one()
            .await
            .unwrap();
        (picked.id, picked.source_offset)
    };
    clickhouse_execute(&client, &format!(
            "ALTER TABLE audit_logs UPDATE user_agent = 'curl/8.0 (not what happened)' WHERE id = '{id}'"
        )).await;
    assert_named(
        &target,
        &[],
        &[format!(
            "modified: event {id} at partition 1 offset {offset}"
        )],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn inserted_events_are_named_as_forged() {
    let (target, client) = copy("forge", false).await;
    // A copy of a real row under a new id at an offset that exists, and one past every batch.
    let existing: i64 = scalar(
        &client,
        "SELECT source_offset FROM audit_logs WHERE source_partition = 2 ORDER BY source_offset LIMIT 1 OFFSET 3",
    )
    .await;
    let (at_existing, past_end) = (Uuid::now_v7(), Uuid::now_v7());
    for (id, offset) in [(at_existing, existing), (past_end, 9_999_999)] {
        clickhouse_execute(
            &client,
            &format!(
                // The filter sits in a subquery: ClickHouse would read the REPLACE aliases
                // into an outer WHERE.
                "INSERT INTO audit_logs SELECT * REPLACE ('{id}' AS id, {offset} AS source_offset) \
                 FROM (SELECT * FROM audit_logs WHERE source_partition = 2 \
                       AND source_offset = {existing} LIMIT 1)"
            ),
        )
        .await;
    }
    // An identical copy of a stored row (what a replayed batch leaves before a merge) is no
    // tampering: it must not be among the problems.
    clickhouse_execute(
        &client,
        &format!(
            "INSERT INTO audit_logs SELECT * FROM (SELECT * FROM audit_logs \
             WHERE source_partition = 0 AND source_offset = {existing} LIMIT 1)"
        ),
    )
    .await;
    let output = assert_named(
        &target,
        &[],
        &[
            format!("forged or inserted: event {at_existing} (partition 2 offset {existing})"),
            format!("forged or inserted: event {past_end} (partition 2 offset 9999999)"),
        ],
    );
    assert!(output.contains("INVALID: 2 problem(s)"), "{output}");
}

#[tokio::test(flavor = "multi_thread")]
async fn events_dropped_by_retention_are_expired_not_deleted() {
    // The dataset's events are a day old: with one day of retention every batch lies wholly
    // before the boundary, so rows gone from them are what the TTL would have dropped.
    let (target, client) = copy("expired", false).await;
    let gone: u64 = scalar(
        &client,
        "SELECT count() FROM audit_logs WHERE source_partition = 1",
    )
    .await;
    clickhouse_execute(
        &client,
        "ALTER TABLE audit_logs DELETE WHERE source_partition = 1",
    )
    .await;
    let (valid, output) = target.verify(&["--no-progress", "--retention-days", "1"]);
    assert!(valid, "{output}");
    assert!(
        output.contains(&format!("{gone} event(s) expired")),
        "{output}"
    );
    // Without the retention setting the same rows are deleted.
    assert_named(&target, &[], &["deleted: ".to_owned()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_part_is_named_as_deleted_events() {
    let (target, client) = copy("drop_part", true).await;
    let part: String = scalar(
        &client,
        "SELECT _part FROM audit_logs WHERE source_partition = 1 LIMIT 1",
    )
    .await;
    let in_part: u64 = scalar(
        &client,
        &format!("SELECT count() FROM audit_logs WHERE _part = '{part}'"),
    )
    .await;
    clickhouse_execute(
        &client,
        &format!("ALTER TABLE audit_logs DROP PART '{part}'"),
    )
    .await;
    let output = assert_named(&target, &[], &["deleted: ".to_owned()]);
    let deleted: u64 = output
        .lines()
        .filter_map(|line| line.trim().strip_prefix("deleted: "))
        .filter(|line| line.contains("at partition 1 "))
        .filter_map(|line| line.split(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(
        deleted, in_part,
        "every event of the dropped part is named\n{output}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_or_rewritten_digest_row_breaks_the_chain() {
    let (target, client) = copy("digest_delete", false).await;
    let first: i64 = scalar(
        &client,
        "SELECT first_offset FROM ingest_digests WHERE partition = 0 ORDER BY first_offset LIMIT 1 OFFSET 1",
    )
    .await;
    clickhouse_execute(
        &client,
        &format!(
            "ALTER TABLE ingest_digests DELETE WHERE partition = 0 AND first_offset = {first}"
        ),
    )
    .await;
    assert_named(
        &target,
        &[],
        &["broken chain: partition 0 batch".to_owned()],
    );

    let (target, client) = copy("digest_rewrite", false).await;
    clickhouse_execute(
        &client,
        "ALTER TABLE ingest_digests UPDATE root = toFixedString(unhex(repeat('00', 32)), 32) \
             WHERE partition = 1 AND first_offset = 0",
    )
    .await;
    assert_named(
        &target,
        &[],
        &[
            "batch mismatch: partition 1 batch 0..=".to_owned(),
            "the digest row was rewritten".to_owned(),
        ],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn checkpoints_signed_by_strangers_changed_or_removed_are_named() {
    #[derive(clickhouse::Row, serde::Deserialize)]
    struct Stored {
        body: String,
        signature: String,
    }
    // Re-signed with a key nobody trusts, and a changed text under the real signature.
    let (target, client) = copy("checkpoint_stranger", false).await;
    let stored: Stored = client
        .query("SELECT body, signature FROM ingest_checkpoints ORDER BY signed_at DESC LIMIT 1")
        .fetch_one()
        .await
        .unwrap();
    let checkpoint = Checkpoint::parse(&stored.body).expect("a stored checkpoint parses");
    let stranger = CheckpointSigner::generate();
    let forged = stranger.sign(checkpoint.time_micros + 1, checkpoint.heads.clone());
    let envelope = forged.envelope();
    let changed_body = stored.body.replacen(
        &format!("time {}", checkpoint.time_micros),
        &format!("time {}", checkpoint.time_micros + 2),
        1,
    );
    for (key_id, body, signature) in [
        (
            stranger.key_id().to_owned(),
            envelope.body,
            envelope.signature,
        ),
        (
            checkpoint.key_id.clone(),
            changed_body,
            stored.signature.clone(),
        ),
    ] {
        client
            .query(
                "INSERT INTO ingest_checkpoints (topic, key_id, signed_at, body, signature) \
                 VALUES (?, ?, now64(6), ?, ?)",
            )
            .bind(&target.topic)
            .bind(key_id)
            .bind(body)
            .bind(signature)
            .execute()
            .await
            .expect("insert a checkpoint");
    }
    assert_named(
        &target,
        &["--checkpoints", "clickhouse"],
        &[
            "unknown key: checkpoint signed at".to_owned(),
            format!("names key {}, which is not trusted", stranger.key_id()),
            format!("bad signature: checkpoint of key {}", checkpoint.key_id),
        ],
    );

    // Removed from ClickHouse; the copy in Kafka says it existed.
    let (target, client) = copy("checkpoint_removed", false).await;
    clickhouse_execute(&client, &format!(
            "ALTER TABLE ingest_checkpoints DELETE WHERE signed_at = (SELECT min(signed_at) FROM {}.ingest_checkpoints)",
            target.database
        )).await;
    assert_named(
        &target,
        &[],
        &["is in kafka but not in clickhouse".to_owned()],
    );
    // Checked against ClickHouse alone, the remaining checkpoints still hold.
    let (valid, output) = target.verify(&["--no-progress", "--checkpoints", "clickhouse"]);
    assert!(valid, "{output}");
}

/// The auditor's independent check (Python's hashlib and cryptography) of a proof.
fn python_check(proof: &serde_json::Value, public_key_pem: &str) -> (bool, String) {
    let document = serde_json::json!({ "proof": proof, "public_key_pem": public_key_pem });
    auditlog_testkit::independent_proof_check(&document.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_events_proof_checks_out_independently_and_fails_once_the_event_changes() {
    let (target, client) = copy("proof", false).await;
    #[derive(clickhouse::Row, serde::Deserialize)]
    struct Picked {
        #[serde(with = "clickhouse::serde::uuid")]
        id: Uuid,
        #[serde(with = "clickhouse::serde::uuid")]
        organization_id: Uuid,
    }
    let picked: Picked = client
        .query("SELECT id, organization_id FROM audit_logs WHERE source_partition = 1 ORDER BY source_offset LIMIT 1 OFFSET 42")
        .fetch_one()
        .await
        .unwrap();
    let mut own_org = TestToken::new("olga", "olga-secret", "org_auditor");
    own_org.organizations = vec![picked.organization_id];
    let mut other_org = TestToken::new("oscar", "oscar-secret", "org_auditor");
    other_org.organizations = vec![Uuid::from_u128(0xdead)];
    let server = ApiServer::start_with(
        &target.database,
        &[
            TestToken::new("ann", "ann-secret", "auditor"),
            own_org,
            other_org,
        ],
        &[("AUDITLOG_KAFKA_TOPIC", target.topic.clone())],
    )
    .await;
    let path = format!("/api/v2/audit/{}/proof", picked.id);
    let public_key = std::fs::read_to_string(target.public_key()).unwrap();

    let response = server.get(&path, Some("ann-secret")).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let proof = response.json();
    let (valid, complaint) = python_check(&proof, &public_key);
    assert!(valid, "{complaint}\n{proof}");
    // The CLI gives the same proof, and checks it itself.
    let (valid, output) = target.verify(&["--event", &picked.id.to_string(), "--format", "json"]);
    assert!(valid, "{output}");
    let cli_proof: serde_json::Value = serde_json::from_str(&output).expect("json proof");
    assert_eq!(cli_proof["row"], proof["row"]);

    // An org_auditor gets proofs of its organizations' events only.
    let response = server.get(&path, Some("olga-secret")).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let response = server.get(&path, Some("oscar-secret")).await;
    assert_eq!(response.status, 404, "{}", response.text());

    // Change the event: the old proof with the row as it is now stored no longer checks,
    // and no new proof can be had.
    clickhouse_execute(
        &client,
        &format!(
            "ALTER TABLE audit_logs UPDATE status_code = 200 + status_code WHERE id = '{}'",
            picked.id
        ),
    )
    .await;
    let mut bytes = client
        .query(&format!(
            "SELECT {} FROM audit_logs WHERE id = '{}'",
            auditlog_store::stored_columns().join(", "),
            picked.id
        ))
        .fetch_bytes("RowBinary")
        .unwrap();
    let row = bytes.collect().await.unwrap();
    let mut changed = proof.clone();
    changed["row"] = serde_json::Value::String(base64_encode(&row));
    changed["leaf"] = serde_json::Value::String(hex::encode(auditlog_integrity::event_leaf(&row)));
    let (valid, complaint) = python_check(&changed, &public_key);
    assert!(!valid);
    assert!(complaint.contains("not in the batch's tree"), "{complaint}");
    let response = server.get(&path, Some("ann-secret")).await;
    assert_eq!(response.status, 409, "{}", response.text());
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// An ingester killed between a checkpoint's two writes (ClickHouse first, then Kafka)
/// leaves it in ClickHouse alone, which verify names as missing from Kafka. The next
/// ingester to start copies it over, and verify holds again. The soak found this: one
/// checkpoint of 4,442 after four ingester kills.
#[tokio::test(flavor = "multi_thread")]
async fn a_checkpoint_a_crash_left_in_clickhouse_alone_is_copied_to_kafka_at_the_next_start() {
    const EVENTS: usize = 600;
    let target = PipelineTarget::create("integrity_heal", 2).await;
    target.migrate();
    let log = ingest_run(&target, &events(17, EVENTS), Vec::new(), EVENTS).await;
    target.assert_verifies(EVENTS as u64, &log);

    // What the cut-off write leaves: the newest heads signed again, in ClickHouse only.
    let client = target.client();
    let newest: String = scalar(
        &client,
        "SELECT body FROM ingest_checkpoints ORDER BY signed_at DESC LIMIT 1",
    )
    .await;
    let heads = Checkpoint::parse(&newest)
        .expect("a stored checkpoint parses")
        .heads;
    let pem = std::fs::read_to_string(&target.signing_key).expect("the target's signing key");
    let signer = CheckpointSigner::from_pem(&pem).expect("a signing key");
    let signed_at = auditlog_event::unix_micros_saturating(time::OffsetDateTime::now_utc());
    let envelope = signer.sign(signed_at, heads).envelope();
    client
        .query(
            "INSERT INTO ingest_checkpoints (topic, key_id, signed_at, body, signature) \
             VALUES (?, ?, fromUnixTimestamp64Micro(?), ?, ?)",
        )
        .bind(&target.topic)
        .bind(signer.key_id())
        .bind(signed_at)
        .bind(&envelope.body)
        .bind(&envelope.signature)
        .execute()
        .await
        .expect("insert a checkpoint");
    assert_named(
        &target,
        &[],
        &["is in clickhouse but not in kafka".to_owned()],
    );

    // The next ingester heals it as it starts, with nothing to consume.
    let mut ingester = target.spawn_ingester("integrity_heal", &[]);
    let deadline = std::time::Instant::now() + INGEST_TIMEOUT;
    while !ingester.log().contains("copied to Kafka") {
        assert!(
            std::time::Instant::now() < deadline,
            "no copy to Kafka:\n{}",
            ingester.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let status = ingester.terminate(Duration::from_secs(30)).expect("exits");
    assert!(status.success(), "{}", ingester.log());
    assert!(
        ingester.log().contains("copied=1"),
        "exactly the one checkpoint is copied:\n{}",
        ingester.log()
    );
    target.assert_verifies(EVENTS as u64, &ingester.log());
}
