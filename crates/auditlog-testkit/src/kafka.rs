//! Topics on a real broker, and a reader that reads one back whole.

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use crate::unique_name;

/// The local stack's Kafka bootstrap servers.
pub const DEFAULT_KAFKA_BROKERS: &str = "127.0.0.1:9092";

/// Kafka bootstrap servers: `AUDITLOG_KAFKA_BROKERS` or the local stack's.
pub fn kafka_brokers() -> String {
    std::env::var("AUDITLOG_KAFKA_BROKERS").unwrap_or_else(|_| DEFAULT_KAFKA_BROKERS.to_owned())
}

/// Creates `topic` with `partitions` partitions (replication 1) on `brokers`; panics if the
/// broker refuses.
pub async fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin client");
    let results = admin
        .create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .expect("create topics request");
    for result in results {
        result.unwrap_or_else(|(topic, code)| panic!("create topic {topic}: {code}"));
    }
}

/// One message read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its partition.
    pub partition: i32,
    /// Its offset in the partition.
    pub offset: i64,
    /// Its key (empty when it had none).
    pub key: Vec<u8>,
    /// Its value; `None` for a null value (a tombstone).
    pub payload: Option<Vec<u8>>,
    /// Its headers in order, with null header values as `None`.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl Record {
    /// The value, or an empty slice for a null value.
    pub fn value(&self) -> &[u8] {
        self.payload.as_deref().unwrap_or_default()
    }

    /// The first header named `name`, as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .and_then(|(_, value)| value.as_deref())
            .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
    }
}

/// Reads every partition of `topic` from the beginning until `expected` messages arrived
/// (or `timeout` passed), then one more second to catch any message beyond those.
///
/// It assigns partitions itself (no group), so it never disturbs a consumer group.
pub async fn read_topic(
    brokers: &str,
    topic: &str,
    partitions: i32,
    expected: usize,
    timeout: Duration,
) -> Vec<Record> {
    let brokers = brokers.to_owned();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", unique_name("reader"))
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let mut assignment = TopicPartitionList::new();
        for partition in 0..partitions {
            assignment
                .add_partition_offset(&topic, partition, Offset::Beginning)
                .expect("assignment");
        }
        consumer.assign(&assignment).expect("assign");
        let mut records = Vec::with_capacity(expected);
        let deadline = Instant::now() + timeout;
        let mut quiet_until: Option<Instant> = None;
        loop {
            let now = Instant::now();
            if now >= deadline || quiet_until.is_some_and(|until| now >= until) {
                break;
            }
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(message)) => records.push(Record {
                    partition: message.partition(),
                    offset: message.offset(),
                    key: message.key().unwrap_or_default().to_vec(),
                    payload: message.payload().map(<[u8]>::to_vec),
                    headers: message
                        .headers()
                        .map(|headers| {
                            headers
                                .iter()
                                .map(|header| {
                                    (header.key.to_owned(), header.value.map(<[u8]>::to_vec))
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                }),
                Some(Err(error)) => panic!("consume {topic}: {error}"),
                None => {}
            }
            if records.len() >= expected && quiet_until.is_none() {
                quiet_until = Some(Instant::now() + Duration::from_secs(1));
            }
        }
        records
    })
    .await
    .expect("reader thread")
}
