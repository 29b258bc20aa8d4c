//! Whole-system tests of the `s3` and `opensearch` sinks against the real servers: SeaweedFS's
//! S3 server (every request SigV4-signed) and an OpenSearch node, both private to the test.
//!
//! Events go through the SDK into a topic of the test's own, and the real binary streams
//! them with `--until-caught-up`. The archive is read back with an independent S3 client
//! (boto3), which walks each partition's manifest chain from its head, checks every link's
//! and object's SHA-256, opens the gzip objects and counts their lines; OpenSearch is asked
//! through its REST API for counts, ids and document versions.
//!
//! What the tests hold the sinks to:
//! - the archive holds exactly the filter's events, each once, and its manifests account
//!   for every offset of every partition (event, filtered or malformed), chained unbroken;
//! - the index holds every valid event once, under its event id, in monthly indices made
//!   from the template the sink installed;
//! - a later run of the same group adds a manifest linked to the previous one; a new group
//!   over the same offsets overwrites (OpenSearch versions go up, counts do not) and adds
//!   nothing to the archive.

use auditlog_e2e::stream::{
    hit_id, ids_once, publish, publish_checkpoint, spawn_stream, wait_for_exit,
};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use auditlog_e2e::pipeline::{events, produce_payloads};
use auditlog_event::AuditEvent;
use auditlog_integrity::CheckpointSigner;
use auditlog_testkit::{
    OpenSearchNode, S3Server, auditlog_binary, create_topic, kafka_brokers, log_dir, unique_name,
};
use serde_json::{Value, json};
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(180);
const PARTITIONS: i32 = 3;
const BUCKET: &str = "audit-archive";

/// Reads the archive with boto3: every manifest chain from its head back to its first
/// manifest, every object listed, and what the bucket holds besides. Prints one JSON
/// document; `problems` names whatever does not add up.
const ARCHIVE_READER: &str = r#"
import gzip, hashlib, json, sys
import boto3
from botocore.config import Config
endpoint, key, secret, bucket, prefix = sys.argv[1:6]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key,
                  aws_secret_access_key=secret, region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}))
keys = []
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
    keys += [item["Key"] for item in page.get("Contents", [])]
def get(k):
    return s3.get_object(Bucket=bucket, Key=k)["Body"].read()
problems, ids, chains, listed = [], [], {}, set()
for head_key in [k for k in keys if k.endswith("/HEAD.json")]:
    head = json.loads(get(head_key))
    link, manifests = head, []
    while link is not None:
        body = get(link["key"])
        listed.add(link["key"])
        if hashlib.sha256(body).hexdigest() != link["sha256"]:
            problems.append("manifest %s: sha256 differs from its link" % link["key"])
        manifest = json.loads(body)
        if manifest["sequence"] != link["sequence"]:
            problems.append("manifest %s: sequence %s, link says %s" % (link["key"], manifest["sequence"], link["sequence"]))
        manifests.append(manifest)
        link = manifest["previous"]
    manifests.reverse()
    if manifests[0]["sequence"] != 0:
        problems.append("%s: chain does not start at sequence 0" % head_key)
    expected = manifests[0]["first_offset"]
    for manifest in manifests:
        if manifest["first_offset"] != expected:
            problems.append("manifest %s starts at %s, expected %s" % (manifest["sequence"], manifest["first_offset"], expected))
        for entry in manifest["objects"]:
            listed.add(entry["key"])
            if entry["first_offset"] != expected:
                problems.append("%s starts at %s, expected %s" % (entry["key"], entry["first_offset"], expected))
            data = get(entry["key"])
            if hashlib.sha256(data).hexdigest() != entry["sha256"] or len(data) != entry["bytes"]:
                problems.append("%s: sha256 or size differs from the manifest" % entry["key"])
            lines = gzip.decompress(data).decode().splitlines()
            if len(lines) != entry["events"]:
                problems.append("%s: %d lines, manifest says %d" % (entry["key"], len(lines), entry["events"]))
            if entry["events"] + entry["filtered"] + entry["malformed"] != entry["last_offset"] - entry["first_offset"] + 1:
                problems.append("%s: offsets not all accounted for" % entry["key"])
            ids += [json.loads(line)["id"] for line in lines]
            expected = entry["last_offset"] + 1
        if manifest["last_offset"] != expected - 1:
            problems.append("manifest %s ends at %s, its objects at %s" % (manifest["sequence"], manifest["last_offset"], expected - 1))
    chains[str(manifests[0]["partition"])] = {
        "first": manifests[0]["first_offset"], "next": expected, "manifests": len(manifests),
        "filtered": sum(m["filtered"] for m in manifests), "malformed": sum(m["malformed"] for m in manifests)}
stray = [k for k in keys if k not in listed and not k.endswith("/HEAD.json")]
if stray:
    problems.append("objects no manifest lists: %s" % stray)
print(json.dumps({"ids": ids, "chains": chains, "problems": problems, "keys": len(keys)}))
"#;

/// The two sinks, named with `suffix` (a new suffix is a new consumer group).
fn write_config(
    suffix: &str,
    s3: &S3Server,
    opensearch: &OpenSearchNode,
    prefix: &str,
    manifest_secs: u64,
) -> PathBuf {
    let path = log_dir().join(format!("{}.toml", unique_name("stream_archive")));
    let text = format!(
        r#"
[[stream.sinks]]
name = "archive-{suffix}"
kind = "s3"
format = "coder"
filter = "resource_type:template"
url = "s3://{BUCKET}/{prefix}"
endpoint = "{endpoint}"
batch_events = 25
batch_max_age_ms = 200
manifest_interval_secs = {manifest_secs}

[[stream.sinks]]
name = "search-{suffix}"
kind = "opensearch"
format = "ocsf"
url = "{search}"
index_prefix = "{prefix}"
batch_events = 64
batch_max_age_ms = 200
"#,
        endpoint = s3.endpoint(),
        search = opensearch.url(),
    );
    std::fs::write(&path, text).expect("config file");
    path
}

/// Runs `auditlog stream --until-caught-up` to its end; its log.
async fn stream_until_caught_up(config: &Path, topic: &str, s3: &S3Server) -> String {
    let mut process = spawn_stream("stream_archive", config, topic, Some(s3), true);
    let status = wait_for_exit(&mut process, TIMEOUT).await;
    let log = process.log();
    assert!(status.success(), "exit {status}; log:\n{log}");
    log
}

/// The Python with boto3 (`stack.sh install` makes it, pinned), not the machine's own.
fn independent_python() -> std::path::PathBuf {
    let python = auditlog_testkit::tools_dir().join("auditor-venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `deploy/local/stack.sh install`",
        python.display()
    );
    python
}

/// The archive as boto3 reads it.
fn read_archive(s3: &S3Server, prefix: &str) -> Value {
    let credentials = s3.credentials();
    let output = std::process::Command::new(independent_python())
        .args([
            "-c",
            ARCHIVE_READER,
            &s3.endpoint(),
            &credentials.access_key,
            &credentials.secret_key,
            BUCKET,
            &format!("{prefix}/"),
        ])
        .output()
        .expect("the independent checks' Python runs");
    assert!(
        output.status.success(),
        "archive reader: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the reader's JSON")
}

fn archived_ids(archive: &Value) -> BTreeSet<Uuid> {
    let problems = archive["problems"].as_array().expect("problems");
    assert!(problems.is_empty(), "archive problems: {problems:#?}");
    ids_once(
        archive["ids"]
            .as_array()
            .expect("ids")
            .iter()
            .map(|id| id.as_str().and_then(|id| id.parse().ok()).expect("a uuid")),
        "archive",
    )
}

/// Every document of the indices under `prefix`: its id, its `metadata.uid` and version.
async fn documents(opensearch: &OpenSearchNode, prefix: &str) -> Vec<(Uuid, Uuid, u64)> {
    opensearch.refresh(&format!("{prefix}-*")).await;
    let answer = opensearch
        .json(
            "POST",
            &format!("/{prefix}-*/_search"),
            Some(&json!({ "size": 10000, "version": true, "_source": ["metadata.uid"] })),
        )
        .await;
    answer["hits"]["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|hit| {
            let parse =
                |value: &Value| value.as_str().and_then(|id| id.parse().ok()).expect("uuid");
            (
                hit_id(hit),
                parse(&hit["_source"]["metadata"]["uid"]),
                hit["_version"].as_u64().expect("version"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn archive_and_index_hold_each_event_once_and_a_replay_overwrites() {
    let topic = unique_name("stream_archive");
    create_topic(&kafka_brokers(), &topic, PARTITIONS).await;
    let (s3, opensearch) = tokio::join!(S3Server::start(), OpenSearchNode::start());
    s3.create_bucket(BUCKET).await;
    let prefix = unique_name("audit").replace('_', "-").to_lowercase();

    // First run: events, one message that is not an event, more events.
    let first = events(51, 240);
    publish(&topic, &first).await;
    produce_payloads(&topic, vec![("junk".into(), b"not avro".to_vec())]).await;
    let config = write_config("a", &s3, &opensearch, &prefix, 1);
    let log = stream_until_caught_up(&config, &topic, &s3).await;
    assert!(log.contains("opensearch index template installed"), "{log}");

    // Second run, same groups: only what is new, in a second manifest per partition.
    let second = events(52, 120);
    publish(&topic, &second).await;
    stream_until_caught_up(&config, &topic, &s3).await;

    let all: Vec<&AuditEvent> = first.iter().chain(&second).collect();
    let templates: BTreeSet<Uuid> = all
        .iter()
        .filter(|event| event.resource_type.as_str() == "template")
        .map(|event| event.id)
        .collect();
    let every_id: BTreeSet<Uuid> = all.iter().map(|event| event.id).collect();
    assert!(!templates.is_empty() && templates.len() < every_id.len());

    let archive = read_archive(&s3, &prefix);
    assert_eq!(
        archived_ids(&archive),
        templates,
        "exactly the filter's events in the archive; {archive}"
    );
    let chains = archive["chains"].as_object().expect("chains");
    assert_eq!(
        chains.len(),
        PARTITIONS as usize,
        "one chain per partition: {archive}"
    );
    let messages = all.len() as u64 + 1;
    let covered: u64 = chains
        .values()
        .map(|chain| {
            assert_eq!(chain["first"], 0, "from the partition's start: {chain}");
            assert!(
                chain["manifests"].as_u64().unwrap() >= 2,
                "one per run at least: {chain}"
            );
            chain["next"].as_u64().unwrap()
        })
        .sum();
    assert_eq!(
        covered, messages,
        "every offset of every partition: {archive}"
    );
    let skipped: u64 = chains
        .values()
        .map(|chain| chain["filtered"].as_u64().unwrap() + chain["malformed"].as_u64().unwrap())
        .sum();
    assert_eq!(skipped, messages - templates.len() as u64);
    assert_eq!(
        chains
            .values()
            .map(|chain| chain["malformed"].as_u64().unwrap())
            .sum::<u64>(),
        1,
        "the junk message is accounted as malformed"
    );

    // OpenSearch: every event once, under its id, in the template's indices.
    let docs = documents(&opensearch, &prefix).await;
    assert!(
        docs.iter().all(|(id, uid, _)| id == uid),
        "_id is the event id"
    );
    assert_eq!(
        ids_once(docs.iter().map(|(id, _, _)| *id), "opensearch"),
        every_id
    );
    assert_eq!(
        opensearch.count(&format!("{prefix}-*")).await,
        every_id.len() as u64
    );
    let template = opensearch
        .json("GET", &format!("/_index_template/{prefix}"), None)
        .await;
    assert_eq!(
        template["index_templates"][0]["index_template"]["index_patterns"][0],
        format!("{prefix}-*")
    );
    // The node is OpenSearch 2.19: every index the sink made keeps a Bloom filter of ids.
    let settings = opensearch
        .json(
            "GET",
            &format!("/{prefix}-*/_settings?flat_settings=true"),
            None,
        )
        .await;
    let indices = settings.as_object().expect("settings by index");
    assert!(!indices.is_empty(), "{settings}");
    for (index, body) in indices {
        assert_eq!(
            body["settings"][auditlog_stream::sink::opensearch::ID_BLOOM_FILTER],
            "true",
            "{index}: {body}"
        );
    }
    // The template's fields are searchable, the rest only returned: Coder's resource type
    // finds exactly the template events; OCSF's class name, kept in every document's
    // `_source`, finds nothing.
    let hits = |query: Value| {
        let path = format!("/{prefix}-*/_search");
        let opensearch = &opensearch;
        async move {
            opensearch
                .json(
                    "POST",
                    &path,
                    Some(&json!({ "size": 10000, "query": query, "_source": ["metadata.uid", "class_name"] })),
                )
                .await["hits"]["hits"]
                .as_array()
                .expect("hits")
                .clone()
        }
    };
    let found: BTreeSet<Uuid> = hits(json!({ "term": { "unmapped.resource_type": "template" } }))
        .await
        .iter()
        .map(hit_id)
        .collect();
    assert_eq!(found, templates, "searched by a mapped field");
    let any = hits(json!({ "match_all": {} })).await;
    let class_name = any[0]["_source"]["class_name"].clone();
    assert!(class_name.is_string(), "kept in _source: {}", any[0]);
    assert!(
        hits(json!({ "term": { "class_name": class_name } }))
            .await
            .is_empty(),
        "class_name is not indexed"
    );
    let month = time::OffsetDateTime::now_utc();
    let indices = opensearch
        .json(
            "GET",
            &format!("/_cat/indices/{prefix}-*?format=json"),
            None,
        )
        .await;
    let names: Vec<&str> = indices
        .as_array()
        .expect("indices")
        .iter()
        .filter_map(|index| index["index"].as_str())
        .collect();
    assert!(
        names.iter().all(|name| name.len() == prefix.len() + 8
            && name[prefix.len() + 1..].chars().nth(4) == Some('.')),
        "monthly indices: {names:?} (now {month})"
    );

    // A new group over the same offsets: OpenSearch overwrites, the archive adds nothing.
    let keys_before = archive["keys"].as_u64().unwrap();
    let replay = write_config("b", &s3, &opensearch, &prefix, 1);
    let log = stream_until_caught_up(&replay, &topic, &s3).await;
    let docs = documents(&opensearch, &prefix).await;
    assert_eq!(
        ids_once(
            docs.iter().map(|(id, _, _)| *id),
            "opensearch after the replay"
        ),
        every_id
    );
    assert!(
        docs.iter().all(|(_, _, version)| *version >= 2),
        "every document was written again (overwritten, not duplicated); log:\n{log}"
    );
    let archive = read_archive(&s3, &prefix);
    assert_eq!(archived_ids(&archive), templates, "{archive}");
    assert_eq!(
        archive["keys"].as_u64().unwrap(),
        keys_before,
        "nothing added: {archive}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_dash_nine_mid_archive_then_a_restart_keeps_each_event_once() {
    let topic = unique_name("stream_archive_kill");
    create_topic(&kafka_brokers(), &topic, PARTITIONS).await;
    let (mut s3, opensearch) = tokio::join!(S3Server::start(), OpenSearchNode::start());
    s3.create_bucket(BUCKET).await;
    let prefix = unique_name("audit").replace('_', "-").to_lowercase();
    let first = events(61, 300);
    publish(&topic, &first).await;

    // No manifest is due within the test: after the kill only the objects tell the story.
    let config = write_config("k", &s3, &opensearch, &prefix, 3600);
    let mut stream = spawn_stream("stream_archive", &config, &topic, Some(&s3), false);
    let deadline = Instant::now() + TIMEOUT;
    while opensearch_count_or_zero(&opensearch, &prefix).await < first.len() as u64
        || s3.list_keys(BUCKET, &format!("{prefix}/")).await.is_empty()
    {
        assert!(
            Instant::now() < deadline && stream.is_running(),
            "{}",
            stream.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The store goes away with the next events on their way; the process dies mid-retry.
    s3.kill();
    let second = events(62, 150);
    publish(&topic, &second).await;
    assert!(
        stream
            .wait_for_log("delivery failed; the partition waits", TIMEOUT)
            .await,
        "{}",
        stream.log()
    );
    stream.kill_dash_nine();
    s3.resume().await;
    let objects_before = s3.list_keys(BUCKET, &format!("{prefix}/")).await;
    assert!(
        objects_before.iter().all(|key| key.ends_with(".ndjson.gz")),
        "no manifest yet: {objects_before:?}"
    );
    // What a crash between an object's write and its commit leaves: an object past the
    // committed offsets, which the restarted sink must delete and write again its own way.
    let day = time::OffsetDateTime::now_utc();
    let stale = format!(
        "{prefix}/{:04}/{:02}/{:02}/{topic}/0/{:020}-{:020}.ndjson.gz",
        day.year(),
        u8::from(day.month()),
        day.day(),
        100_000,
        100_009
    );
    s3.put_object(BUCKET, &stale, b"never committed".to_vec())
        .await;

    let log = stream_until_caught_up(&config, &topic, &s3).await;
    assert!(
        log.contains("deleting an object written but never committed"),
        "{log}"
    );
    let all: Vec<&AuditEvent> = first.iter().chain(&second).collect();
    let templates: BTreeSet<Uuid> = all
        .iter()
        .filter(|event| event.resource_type.as_str() == "template")
        .map(|event| event.id)
        .collect();
    let archive = read_archive(&s3, &prefix);
    assert_eq!(archived_ids(&archive), templates, "{archive}");
    let covered: u64 = archive["chains"]
        .as_object()
        .expect("chains")
        .values()
        .map(|chain| chain["next"].as_u64().unwrap())
        .sum();
    assert_eq!(covered, all.len() as u64, "every offset: {archive}");
    assert!(s3.get_object(BUCKET, &stale).await.is_none());

    let docs = documents(&opensearch, &prefix).await;
    let every_id: BTreeSet<Uuid> = all.iter().map(|event| event.id).collect();
    assert_eq!(
        ids_once(docs.iter().map(|(id, _, _)| *id), "opensearch"),
        every_id
    );
}

/// Documents searchable now under `prefix`, 0 before the first index exists.
async fn opensearch_count_or_zero(opensearch: &OpenSearchNode, prefix: &str) -> u64 {
    let answer = opensearch
        .request("GET", &format!("/{prefix}-*/_count"), None)
        .await
        .expect("opensearch answers");
    answer.json()["count"].as_u64().unwrap_or(0)
}

/// Drops the first line of a gzipped NDJSON object, as someone hiding an event would.
const REMOVE_A_LINE: &str = r#"
import gzip, sys
import boto3
from botocore.config import Config
endpoint, key, secret, bucket, name = sys.argv[1:6]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key,
                  aws_secret_access_key=secret, region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}))
lines = gzip.decompress(s3.get_object(Bucket=bucket, Key=name)["Body"].read()).splitlines(True)
s3.put_object(Bucket=bucket, Key=name, Body=gzip.compress(b"".join(lines[1:])))
"#;

/// `auditlog verify --archive`: exit success, and the report as JSON.
fn verify_archive(s3: &S3Server, prefix: &str, public_key: Option<&Path>) -> (bool, Value) {
    let credentials = s3.credentials();
    let mut args = vec![
        "verify".to_owned(),
        "--archive".to_owned(),
        format!("s3://{BUCKET}/{prefix}"),
        "--archive-endpoint".to_owned(),
        s3.endpoint(),
        "--format".to_owned(),
        "json".to_owned(),
    ];
    if let Some(path) = public_key {
        args.push("--public-key".to_owned());
        args.push(path.to_str().expect("utf-8 path").to_owned());
    }
    let output = std::process::Command::new(auditlog_binary())
        .args(args)
        .env("AUDITLOG_S3_ACCESS_KEY", &credentials.access_key)
        .env("AUDITLOG_S3_SECRET_KEY", &credentials.secret_key)
        .output()
        .expect("auditlog verify runs");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "verify's JSON ({error}): {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.success(), report)
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_archive_passes_then_names_each_tampering() {
    let topic = unique_name("stream_archive_verify");
    create_topic(&kafka_brokers(), &topic, PARTITIONS).await;
    let s3 = S3Server::start().await;
    s3.create_bucket(BUCKET).await;
    let prefix = unique_name("audit").replace('_', "-").to_lowercase();
    let config = log_dir().join(format!("{}.toml", unique_name("stream_archive_verify")));
    std::fs::write(
        &config,
        format!(
            "[[stream.sinks]]\nname = \"archive\"\nkind = \"s3\"\nurl = \"s3://{BUCKET}/{prefix}\"\n\
             endpoint = \"{}\"\nbatch_events = 10\nbatch_max_age_ms = 200\n",
            s3.endpoint()
        ),
    )
    .expect("config file");
    // Two runs: two manifests per partition, each carrying the checkpoint signed before it.
    create_topic(&kafka_brokers(), &format!("{topic}-checkpoints"), 1).await;
    let signer = CheckpointSigner::generate();
    let public_key = log_dir().join(format!("{}.pub", unique_name("archive_key")));
    std::fs::write(&public_key, signer.public_pem()).expect("public key");
    let stranger = log_dir().join(format!("{}.pub", unique_name("stranger_key")));
    std::fs::write(&stranger, CheckpointSigner::generate().public_pem()).expect("public key");
    publish(&topic, &events(71, 150)).await;
    publish_checkpoint(&topic, PARTITIONS, &signer, 150).await;
    stream_until_caught_up(&config, &topic, &s3).await;
    publish(&topic, &events(72, 150)).await;
    publish_checkpoint(&topic, PARTITIONS, &signer, 300).await;
    stream_until_caught_up(&config, &topic, &s3).await;

    let (valid, report) = verify_archive(&s3, &prefix, Some(&public_key));
    assert!(valid, "a real archive passes: {report:#}");
    assert_eq!(report["signatures_checked"], true);
    let chains = report["chains"].as_array().unwrap();
    assert_eq!(chains.len(), PARTITIONS as usize);
    for chain in chains {
        assert_eq!(chain["checkpoints"], 2, "{chain}");
        assert_eq!(
            chain["signed_through"], chain["last_offset"],
            "the newest checkpoint signs the archive's last offset: {chain}"
        );
    }
    let (valid, report) = verify_archive(&s3, &prefix, Some(&stranger));
    assert!(!valid, "{report:#}");
    assert_eq!(
        report["problems"].as_array().unwrap().len(),
        PARTITIONS as usize * 2,
        "each checkpoint is named as not verifying with the stranger's key: {report:#}"
    );
    let events: u64 = report["chains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|chain| chain["events"].as_u64().unwrap())
        .sum();
    assert_eq!(events, 300, "{report:#}");

    // Partition 0's newest manifest names its objects and its predecessor.
    let head: Value = serde_json::from_slice(
        &s3.get_object(BUCKET, &format!("{prefix}/manifests/{topic}/0/HEAD.json"))
            .await
            .expect("a head"),
    )
    .unwrap();
    let newest: Value = serde_json::from_slice(
        &s3.get_object(BUCKET, head["key"].as_str().unwrap())
            .await
            .unwrap(),
    )
    .unwrap();
    let with_events: Vec<String> = newest["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|object| object["events"].as_u64().unwrap() >= 2)
        .map(|object| object["key"].as_str().unwrap().to_owned())
        .collect();
    assert!(with_events.len() >= 3, "{newest:#}");
    let (deleted, altered, shortened) = (&with_events[0], &with_events[1], &with_events[2]);
    let missing_manifest = newest["previous"]["key"].as_str().unwrap().to_owned();

    for key in [deleted, &missing_manifest] {
        let response = s3
            .request(
                "DELETE",
                &format!("/{BUCKET}/{key}"),
                &[],
                bytes::Bytes::new(),
            )
            .await
            .expect("delete");
        assert!(response.status.is_success(), "{}", response.text());
    }
    let mut bytes = s3.get_object(BUCKET, altered).await.unwrap().to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    s3.put_object(BUCKET, altered, bytes).await;
    let credentials = s3.credentials();
    let status = std::process::Command::new(independent_python())
        .args([
            "-c",
            REMOVE_A_LINE,
            &s3.endpoint(),
            &credentials.access_key,
            &credentials.secret_key,
            BUCKET,
            shortened,
        ])
        .status()
        .expect("the independent checks' Python runs");
    assert!(status.success());

    let (valid, report) = verify_archive(&s3, &prefix, None);
    assert!(!valid, "{report:#}");
    let problems: Vec<&str> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|problem| problem.as_str().unwrap())
        .collect();
    let named = |needle: &str| problems.iter().any(|problem| problem.contains(needle));
    assert!(
        named(&format!("object {deleted} ")) && named("is missing"),
        "{problems:#?}"
    );
    assert!(
        named(&format!("object {altered} is altered")),
        "{problems:#?}"
    );
    assert!(
        named(&format!("object {shortened} holds")) && named("lines were removed"),
        "{problems:#?}"
    );
    assert!(
        named(&format!(
            "manifest {missing_manifest} (sequence 0) is missing"
        )),
        "{problems:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn opensearch_items_it_refuses_are_retried_and_reported_until_fixed() {
    let topic = unique_name("stream_archive_refused");
    create_topic(&kafka_brokers(), &topic, PARTITIONS).await;
    let opensearch = OpenSearchNode::start().await;
    let prefix = unique_name("audit").replace('_', "-").to_lowercase();
    let sent = events(81, 60);
    publish(&topic, &sent).await;
    // Indices made before the sink's template, mapping OCSF's numeric class as a boolean:
    // OpenSearch answers the bulk request 200 and refuses every item in it.
    let months: BTreeSet<String> = sent
        .iter()
        .map(|event| {
            format!(
                "{prefix}-{:04}.{:02}",
                event.time.year(),
                u8::from(event.time.month())
            )
        })
        .collect();
    for index in &months {
        opensearch
            .json(
                "PUT",
                &format!("/{index}"),
                Some(&json!({ "mappings": { "properties": { "class_uid": { "type": "boolean" } } } })),
            )
            .await;
    }
    let config = log_dir().join(format!("{}.toml", unique_name("stream_archive_refused")));
    std::fs::write(
        &config,
        format!(
            "[[stream.sinks]]\nname = \"search\"\nkind = \"opensearch\"\nformat = \"ocsf\"\n\
             url = \"{}\"\nindex_prefix = \"{prefix}\"\nbatch_max_age_ms = 200\n",
            opensearch.url()
        ),
    )
    .expect("config file");
    let mut stream = spawn_stream("stream_archive", &config, &topic, None, false);
    assert!(
        stream
            .wait_for_log("mapper_parsing_exception", TIMEOUT)
            .await,
        "{}",
        stream.log()
    );
    let ready = stream.ops_get("/readyz").await.expect("readyz answers");
    assert_eq!(
        ready.status.as_u16(),
        503,
        "unready while refused: {}",
        ready.text()
    );
    assert!(ready.text().contains("search"), "{}", ready.text());
    assert_eq!(opensearch_count_or_zero(&opensearch, &prefix).await, 0);

    // Someone fixes the mapping: the same batches go through, nothing was skipped. One
    // request drops every month's index at once, as an operator would: dropped one by one,
    // the sink would rightly dead-letter events of the months still refused beside events
    // of months already taken.
    let all: Vec<&str> = months.iter().map(String::as_str).collect();
    opensearch
        .json("DELETE", &format!("/{}", all.join(",")), None)
        .await;
    let deadline = Instant::now() + TIMEOUT;
    while opensearch_count_or_zero(&opensearch, &prefix).await < sent.len() as u64 {
        assert!(
            Instant::now() < deadline && stream.is_running(),
            "{}",
            stream.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let docs = documents(&opensearch, &prefix).await;
    let expected: BTreeSet<Uuid> = sent.iter().map(|event| event.id).collect();
    assert_eq!(
        ids_once(docs.iter().map(|(id, _, _)| *id), "opensearch"),
        expected
    );
    stream.kill_dash_nine();
}
