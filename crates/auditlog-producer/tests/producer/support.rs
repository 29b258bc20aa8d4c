//! Topics, a reader from the beginning, and a private broker.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use auditlog_producer::event::AuditEvent;
use auditlog_producer::generator::TrafficGenerator;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use time::macros::datetime;

/// Kafka bootstrap servers: `AUDITLOG_KAFKA_BROKERS` or the local stack's.
pub fn brokers() -> String {
    std::env::var("AUDITLOG_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

/// A topic name no other test uses.
pub fn unique_topic(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    let sequence = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "producer_{prefix}_{}_{nanos}_{sequence}",
        std::process::id()
    )
}

/// Creates `topic` with `partitions` partitions on `brokers`.
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

/// A fresh topic on the shared broker.
pub async fn fresh_topic(prefix: &str, partitions: i32) -> String {
    let topic = unique_topic(prefix);
    create_topic(&brokers(), &topic, partitions).await;
    topic
}

/// `count` generated events (valid, distinct ids) over one day in 2025.
pub fn events(seed: u64, count: u64) -> Vec<AuditEvent> {
    TrafficGenerator::new(seed)
        .with_time_span(
            datetime!(2025-06-01 0:00 UTC),
            datetime!(2025-06-02 0:00 UTC),
            count,
        )
        .collect()
}

/// One message read back.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Vec<u8>,
    pub payload: Vec<u8>,
}

/// Reads every partition of `topic` from the beginning until `expected` messages arrived
/// (or `timeout` passed), then a little longer to catch any extra message.
pub async fn read_all(
    topic: &str,
    partitions: i32,
    expected: usize,
    timeout: Duration,
) -> Vec<Record> {
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers())
            .set("group.id", unique_topic("reader"))
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
                    payload: message.payload().unwrap_or_default().to_vec(),
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

/// A tansu broker of this test's own, on a free port, with in-memory storage.
#[derive(Debug)]
pub struct PrivateBroker {
    pub port: u16,
    process: Option<Child>,
}

impl PrivateBroker {
    pub fn tansu_binary() -> PathBuf {
        let tools = std::env::var("AUDITLOG_TOOLS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| {
                let cache = std::env::var("XDG_CACHE_HOME")
                    .map(PathBuf::from)
                    .unwrap_or_else(|_| {
                        PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache")
                    });
                cache.join("auditlog").join("tools")
            });
        tools.join("tansu-0.6.0").join("bin").join("tansu")
    }

    /// Starts it and waits until it accepts connections.
    pub fn start() -> Self {
        let binary = Self::tansu_binary();
        assert!(
            binary.exists(),
            "{} is missing: run `make install` (the local stack's tools)",
            binary.display()
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .expect("free port");
        let url = format!("tcp://127.0.0.1:{port}");
        let process = Command::new(binary)
            .arg("broker")
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        let broker = PrivateBroker {
            port,
            process: Some(process),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "private tansu did not start on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        broker
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// SIGKILL, as a crash or a cut network looks to clients.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        self.kill();
    }
}
