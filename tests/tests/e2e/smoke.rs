//! Smoke test of the local stack: the two real services work together end to end.
//!
//! produce (rdkafka, idempotent) → fresh topic → consumer group → ClickHouse insert (LZ4)
//! → read back through a server-side parameter.

use std::collections::BTreeSet;
use std::time::Duration;

use auditlog_e2e::{fresh_database, kafka_brokers, unique_name};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::{Deserialize, Serialize};

const NUM_MESSAGES: u32 = 500;
const NUM_PARTITIONS: i32 = 3;

#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Serialize, Deserialize)]
struct SmokeRow {
    partition: i32,
    offset: i64,
    payload: String,
}

#[tokio::test]
async fn kafka_to_clickhouse_round_trip() {
    let brokers = kafka_brokers();
    let topic = unique_name("smoke");

    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("admin client");
    let created = admin
        .create_topics(
            &[NewTopic::new(
                &topic,
                NUM_PARTITIONS,
                TopicReplication::Fixed(1),
            )],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .expect("create topics request");
    assert!(
        created.iter().all(Result::is_ok),
        "create topic: {created:?}"
    );

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()
        .expect("producer");
    let deliveries = (0..NUM_MESSAGES).map(|index| {
        let producer = producer.clone();
        let topic = topic.clone();
        async move {
            let key = format!("key-{}", index % 17);
            let payload = format!("event-{index}");
            let record = FutureRecord::to(&topic).key(&key).payload(&payload);
            producer
                .send(record, Duration::from_secs(30))
                .await
                .map_err(|(error, _)| error)
        }
    });
    for delivery in futures::future::join_all(deliveries).await {
        delivery.expect("delivery confirmed");
    }

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", unique_name("smoke_group"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[&topic]).expect("subscribe");
    let mut rows = Vec::new();
    while rows.len() < NUM_MESSAGES as usize {
        let message = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .expect("a message within 60 s")
            .expect("consume");
        rows.push(SmokeRow {
            partition: message.partition(),
            offset: message.offset(),
            payload: String::from_utf8(message.payload().unwrap_or_default().to_vec())
                .expect("utf-8 payload"),
        });
    }
    consumer
        .commit_consumer_state(CommitMode::Sync)
        .expect("commit offsets");
    let partitions_seen: BTreeSet<i32> = rows.iter().map(|row| row.partition).collect();
    assert_eq!(
        partitions_seen.len(),
        NUM_PARTITIONS as usize,
        "keys spread over every partition"
    );

    let (client, _database) = fresh_database("smoke").await;
    let client = client.with_compression(clickhouse::Compression::Lz4);
    client
        .query(
            "CREATE TABLE smoke (partition Int32, offset Int64, payload String) \
             ENGINE = MergeTree ORDER BY (partition, offset)",
        )
        .execute()
        .await
        .expect("create table");
    let mut insert = client.insert::<SmokeRow>("smoke").await.expect("insert");
    for row in &rows {
        insert.write(row).await.expect("write row");
    }
    insert.end().await.expect("insert acknowledged");

    let count: u64 = client
        .query("SELECT count() FROM smoke")
        .fetch_one()
        .await
        .expect("count");
    assert_eq!(count, u64::from(NUM_MESSAGES));

    let wanted = "event-42";
    let found: Vec<SmokeRow> = client
        .query("SELECT ?fields FROM smoke WHERE payload = {payload:String}")
        .param("payload", wanted)
        .fetch_all()
        .await
        .expect("select with a server-side parameter");
    let expected: Vec<SmokeRow> = rows
        .into_iter()
        .filter(|row| row.payload == wanted)
        .collect();
    assert_eq!(found, expected);
    assert_eq!(found.len(), 1);
}
