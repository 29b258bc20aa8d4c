//! Whole-system tests of a sink's dead-letter topic: a destination refuses one event for
//! good, and `auditlog stream --until-caught-up` puts that event in the sink's dead-letter
//! topic with the destination's reason, delivers every other event once, and commits past
//! the batch.
//!
//! - OpenSearch, a real node: the month's index is made before the sink runs, with
//!   `user_agent` mapped as an integer. OpenSearch takes the events whose user agent is a
//!   number in a string ("1234") and answers `mapper_parsing_exception` for the one whose
//!   user agent is not, in the same bulk request: a refusal about that event, not about
//!   the index, which is what the sink dead-letters.
//! - A webhook receiver (an HTTP server of the test's own) that validates batches as a
//!   strict receiver does: any request holding the bad event is refused whole with 422,
//!   without saying which event. The sink has to find it by sending parts of the batch.

use auditlog_e2e::stream::{hit_id, publish, wait_for_exit};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use auditlog_e2e::pipeline::events;
use std::sync::{Arc, Mutex};

use auditlog_testkit::{
    AuditlogCommand, OpenSearchNode, auditlog_binary, create_topic, free_port, kafka_brokers,
    log_dir, read_topic, unique_name,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(180);

/// The offset the consumer group committed for partition 0 of `topic`.
async fn committed(group: &str, topic: &str) -> Option<i64> {
    let (group, topic) = (group.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", kafka_brokers())
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let mut list = TopicPartitionList::new();
        list.add_partition(&topic, 0);
        let committed = consumer
            .committed_offsets(list, Duration::from_secs(10))
            .expect("committed offsets");
        match committed.elements()[0].offset() {
            Offset::Offset(offset) => Some(offset),
            _ => None,
        }
    })
    .await
    .expect("reading the commit")
}

/// Every document id of the indices under `prefix`.
async fn indexed_ids(opensearch: &OpenSearchNode, prefix: &str) -> Vec<Uuid> {
    opensearch.refresh(&format!("{prefix}-*")).await;
    let answer = opensearch
        .json(
            "POST",
            &format!("/{prefix}-*/_search"),
            Some(&json!({ "size": 10000, "_source": false })),
        )
        .await;
    answer["hits"]["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(hit_id)
        .collect()
}

/// Runs `auditlog stream --until-caught-up` to its end, which must be a success; its log.
async fn stream_until_caught_up(config: &std::path::Path, topic: &str) -> String {
    let ops_port = free_port();
    let mut process = AuditlogCommand::new(auditlog_binary(), "stream_dead_letter")
        .args([
            "--config".to_owned(),
            config.to_str().expect("utf-8 path").to_owned(),
            "--kafka-topic".to_owned(),
            topic.to_owned(),
            "stream".to_owned(),
            "--metrics-listen".to_owned(),
            format!("127.0.0.1:{ops_port}"),
            "--until-caught-up".to_owned(),
        ])
        .ops_port(ops_port)
        .spawn();
    let status = wait_for_exit(&mut process, TIMEOUT).await;
    let log = process.log();
    assert!(status.success(), "exit {status}; log:\n{log}");
    log
}

/// What the strict receiver saw: every request's line count and answer, and the lines it
/// took.
#[derive(Debug, Default)]
struct Received {
    requests: Vec<(usize, u16)>,
    taken: Vec<Value>,
}

/// An HTTP/1.1 server that refuses with 422 any NDJSON request holding a line with
/// `refused` in it, and takes any other (204).
async fn strict_receiver(refused: String) -> (u16, Arc<Mutex<Received>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let received = Arc::new(Mutex::new(Received::default()));
    let shared = Arc::clone(&received);
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let (refused, received) = (refused.clone(), Arc::clone(&shared));
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut reader = BufReader::new(read);
                // One request after another on the connection (the sink's client keeps it).
                loop {
                    let mut length = 0_usize;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some((name, value)) = line.split_once(':')
                            && name.eq_ignore_ascii_case("content-length")
                        {
                            length = value.trim().parse().expect("content length");
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let text = String::from_utf8_lossy(&body);
                    let lines: Vec<&str> = text.lines().collect();
                    let status = if text.contains(refused.as_str()) {
                        422
                    } else {
                        204
                    };
                    {
                        let mut received = received.lock().expect("lock");
                        received.requests.push((lines.len(), status));
                        if status == 204 {
                            for line in &lines {
                                received
                                    .taken
                                    .push(serde_json::from_str(line).expect("a JSON line"));
                            }
                        }
                    }
                    let answer = if status == 204 {
                        "HTTP/1.1 204 No Content\r\n\r\n".to_owned()
                    } else {
                        let reason = "{\"error\":\"a line does not validate\"}";
                        format!(
                            "HTTP/1.1 422 Unprocessable Entity\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{reason}",
                            reason.len()
                        )
                    };
                    if write.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, received)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_the_destination_refuses_for_good_lands_in_the_sinks_dead_letter_topic_with_its_reason()
 {
    let topic = unique_name("stream_dead_letter");
    create_topic(&kafka_brokers(), &topic, 1).await;
    let opensearch = OpenSearchNode::start().await;
    let prefix = unique_name("refusing").replace('_', "-").to_lowercase();
    let sink = unique_name("search").replace('_', "-");

    let mut sent = events(95, 30);
    for event in &mut sent {
        event.user_agent = "1234".into();
    }
    let refused = 17;
    sent[refused].user_agent = "Mozilla/5.0 (not a number)".into();
    let refused_id = sent[refused].id;
    publish(&topic, &sent).await;

    // The index as the sink's template would make it, but for `user_agent`.
    let opaque = json!({ "type": "object", "enabled": false });
    let mapping = json!({ "mappings": { "properties": {
        "id": { "type": "keyword" },
        "request_id": { "type": "keyword" },
        "time": { "type": "date" },
        "diff": opaque,
        "additional_fields": opaque,
        "user_agent": { "type": "integer" }
    } } });
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
            .json("PUT", &format!("/{index}"), Some(&mapping))
            .await;
    }

    // One batch for the whole partition (sealed at the end offset, not by age), so the
    // refused event shares its bulk request with events OpenSearch takes.
    let config = log_dir().join(format!("{}.toml", unique_name("stream_dead_letter")));
    std::fs::write(
        &config,
        format!(
            "[[stream.sinks]]\nname = \"{sink}\"\nkind = \"opensearch\"\nformat = \"coder\"\n\
             url = \"{}\"\nindex_prefix = \"{prefix}\"\nbatch_max_age_ms = 60000\n",
            opensearch.url()
        ),
    )
    .expect("config file");
    let log = stream_until_caught_up(&config, &topic).await;

    // The refused event, in the sink's own dead-letter topic, with the reason.
    let dead_letter_topic = format!("{topic}-stream-{sink}-dlq");
    let letters = read_topic(&kafka_brokers(), &dead_letter_topic, 1, 1, TIMEOUT).await;
    assert_eq!(letters.len(), 1, "one letter: {letters:?}\n{log}");
    let letter = &letters[0];
    let header = |name: &str| {
        letter
            .header(name)
            .unwrap_or_else(|| panic!("header {name}: {:?}", letter.headers))
    };
    assert_eq!(header("auditlog.dlq.event_id"), refused_id.to_string());
    assert_eq!(header("auditlog.dlq.kind"), "mapper_parsing_exception");
    let reason = header("auditlog.dlq.reason");
    assert!(
        reason.contains("400 mapper_parsing_exception") && reason.contains("user_agent"),
        "{reason}"
    );
    assert_eq!(header("auditlog.dlq.source.topic"), topic);
    assert_eq!(header("auditlog.dlq.source.partition"), "0");
    assert_eq!(header("auditlog.dlq.source.offset"), refused.to_string());
    assert_eq!(header("auditlog.dlq.sink"), sink);
    assert_eq!(header("auditlog.dlq.format"), "coder");
    assert!(!header("auditlog.dlq.time").is_empty());
    assert_eq!(letter.key, refused_id.to_string().into_bytes());
    let value: Value = serde_json::from_slice(letter.value()).expect("the event as sent");
    assert_eq!(value["id"], refused_id.to_string());
    assert_eq!(value["user_agent"], "Mozilla/5.0 (not a number)");

    // Every other event indexed once; the refused one not at all.
    let mut counts: BTreeMap<Uuid, usize> = BTreeMap::new();
    for id in indexed_ids(&opensearch, &prefix).await {
        *counts.entry(id).or_default() += 1;
    }
    assert!(counts.values().all(|count| *count == 1), "{counts:?}");
    let expected: BTreeSet<Uuid> = sent
        .iter()
        .map(|event| event.id)
        .filter(|id| *id != refused_id)
        .collect();
    assert_eq!(counts.into_keys().collect::<BTreeSet<_>>(), expected);

    // Caught up: the group committed past the whole partition, the refused event included.
    assert_eq!(
        committed(&format!("auditlog-stream-{sink}"), &topic).await,
        Some(sent.len() as i64)
    );
    // And said so, naming the event and the reason.
    let line = log
        .lines()
        .find(|line| line.contains("refused an event for good"))
        .unwrap_or_else(|| panic!("no dead-letter line:\n{log}"));
    assert!(
        line.contains(&refused_id.to_string()) && line.contains("mapper_parsing_exception"),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_a_webhook_refuses_whole_is_narrowed_down_to_the_event_it_refuses() {
    let topic = unique_name("stream_dead_letter_webhook");
    create_topic(&kafka_brokers(), &topic, 1).await;
    let sink = unique_name("hook").replace('_', "-");
    let mut sent = events(96, 40);
    let refused = 29;
    sent[refused].user_agent = "refuse-me/1.0".into();
    let refused_id = sent[refused].id;
    publish(&topic, &sent).await;
    let (port, received) = strict_receiver("refuse-me/1.0".to_owned()).await;

    let config = log_dir().join(format!("{}.toml", unique_name("stream_dead_letter")));
    std::fs::write(
        &config,
        format!(
            "[[stream.sinks]]\nname = \"{sink}\"\nkind = \"webhook\"\nformat = \"coder\"\n\
             url = \"http://127.0.0.1:{port}/audit\"\nsecret = \"a secret of sixteen bytes\"\n\
             batch_max_age_ms = 60000\n"
        ),
    )
    .expect("config file");
    let log = stream_until_caught_up(&config, &topic).await;

    let dead_letter_topic = format!("{topic}-stream-{sink}-dlq");
    let letters = read_topic(&kafka_brokers(), &dead_letter_topic, 1, 1, TIMEOUT).await;
    assert_eq!(letters.len(), 1, "one letter: {letters:?}\n{log}");
    let letter = &letters[0];
    assert_eq!(
        letter.header("auditlog.dlq.event_id"),
        Some(refused_id.to_string())
    );
    assert_eq!(
        letter.header("auditlog.dlq.kind").as_deref(),
        Some("http_422")
    );
    let reason = letter.header("auditlog.dlq.reason").expect("a reason");
    assert!(
        reason.contains("HTTP 422") && reason.contains("a line does not validate"),
        "{reason}"
    );
    assert_eq!(
        letter.header("auditlog.dlq.source.offset"),
        Some(refused.to_string())
    );

    // Every other event taken exactly once: halves that were taken are not sent again.
    let (requests, taken) = {
        let received = received.lock().expect("lock");
        (received.requests.clone(), received.taken.clone())
    };
    let mut counts: BTreeMap<Uuid, usize> = BTreeMap::new();
    for line in &taken {
        let id = line["id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .expect("id");
        *counts.entry(id).or_default() += 1;
    }
    assert!(counts.values().all(|count| *count == 1), "{counts:?}");
    let expected: BTreeSet<Uuid> = sent
        .iter()
        .map(|event| event.id)
        .filter(|id| *id != refused_id)
        .collect();
    assert_eq!(counts.into_keys().collect::<BTreeSet<_>>(), expected);
    // The whole batch first, then halves down to the event alone: a handful of requests,
    // not one per event.
    assert_eq!(requests[0], (sent.len(), 422), "{requests:?}");
    assert!(
        requests.contains(&(1, 422)) && requests.len() <= 2 * 6 + 1,
        "{requests:?}"
    );
    assert_eq!(
        committed(&format!("auditlog-stream-{sink}"), &topic).await,
        Some(sent.len() as i64)
    );
}
