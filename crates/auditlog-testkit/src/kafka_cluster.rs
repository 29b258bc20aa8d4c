//! A private Apache Kafka cluster of several nodes, for tests that lose brokers, partition
//! leaders or the controller.
//!
//! Each node is one process that is both broker and KRaft controller, the local stack's broker
//! launched as [`PrivateBroker`](crate::PrivateBroker) launches it (`deploy/local/kafka/kafka.sh
//! run`), on free ports with a data directory of its own; all share one cluster id and list
//! every node as a controller voter, as a production cluster of combined nodes does. With
//! three nodes, internal topics have three replicas and need two in sync.
//!
//! The nodes start in parallel (a JVM start each: on two busy cores, tens of seconds for three
//! together); [`KafkaCluster::start_up`] says how long it took. A node is named by its Kafka
//! node id, 1 to N, the id metadata reports for partition leaders.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::metadata::Metadata;

use crate::{free_port, log_dir, repo_root, unique_name};

/// How long the nodes may take to start and find each other. Generous: three JVMs starting at
/// once on two busy cores.
const START_TIMEOUT: Duration = Duration::from_secs(240);
/// How long a SIGTERM'd node may take for its controlled shutdown (moving its leaderships).
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// The heap of each node: test topics are small, and three JVMs share the machine.
const NODE_HEAP: &str = "384m";
/// How long one metadata request may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);

/// One node: a combined broker and controller.
#[derive(Debug)]
struct Node {
    id: i32,
    port: u16,
    controller_port: u16,
    dir: PathBuf,
    log_path: PathBuf,
    process: Option<Child>,
}

/// A running private cluster; dropping it kills every node and removes their data.
#[derive(Debug)]
pub struct KafkaCluster {
    cluster_id: String,
    nodes: Vec<Node>,
    start_up: Duration,
}

impl KafkaCluster {
    /// Starts `size` nodes in parallel on free ports with empty data directories; returns once
    /// metadata lists every one of them as a broker.
    pub fn start(size: usize) -> Self {
        assert!(size >= 1, "a cluster needs a node");
        let name = unique_name("kafka_cluster");
        // One directory per node and none around them: a node's watcher (kafka.sh --owner)
        // removes its own when the test process is gone.
        let temp = std::env::temp_dir();
        let nodes = (1..=size as i32)
            .map(|id| Node {
                id,
                port: free_port(),
                controller_port: free_port(),
                dir: temp.join(format!("auditlog_private_{name}_node{id}")),
                log_path: log_dir().join(format!("{name}_node{id}.log")),
                process: None,
            })
            .collect();
        let mut cluster = Self {
            cluster_id: kafka_uuid(),
            nodes,
            start_up: Duration::ZERO,
        };
        let started = Instant::now();
        for id in cluster.node_ids() {
            cluster.spawn(id);
        }
        cluster.wait_for_brokers(&cluster.node_ids(), START_TIMEOUT);
        cluster.start_up = started.elapsed();
        eprintln!(
            "kafka cluster of {size} up in {:.1} s ({})",
            cluster.start_up.as_secs_f64(),
            cluster.brokers()
        );
        cluster
    }

    /// How long [`start`](Self::start) took, from the first spawn to every broker listed.
    pub fn start_up(&self) -> Duration {
        self.start_up
    }

    /// The bootstrap servers: every node.
    pub fn brokers(&self) -> String {
        self.nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The node ids, 1 to N.
    pub fn node_ids(&self) -> Vec<i32> {
        self.nodes.iter().map(|node| node.id).collect()
    }

    /// The nodes whose process this cluster started and has not stopped.
    pub fn running(&self) -> Vec<i32> {
        self.nodes
            .iter()
            .filter(|node| node.process.is_some())
            .map(|node| node.id)
            .collect()
    }

    /// Where node `id` logs.
    pub fn log_path(&self, id: i32) -> PathBuf {
        self.node(id).log_path.clone()
    }

    /// SIGKILL of node `id`: a crash, as the others and the clients see it.
    pub fn kill(&mut self, id: i32) {
        if let Some(mut process) = self.node_mut(id).process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    /// SIGTERM of node `id`, then waits for its controlled shutdown (SIGKILL past a minute).
    pub fn stop(&mut self, id: i32) {
        let Some(mut process) = self.node_mut(id).process.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &process.id().to_string()])
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = process.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = process.kill();
        let _ = process.wait();
    }

    /// Starts node `id` again on its ports and data directory; returns once metadata lists it
    /// as a broker again.
    pub fn restart(&mut self, id: i32) {
        self.spawn(id);
        self.wait_for_brokers(&[id], START_TIMEOUT);
    }

    /// Starts every node that is not running (all at once) and waits until all are brokers
    /// again: the way back to a whole cluster, whatever a test left behind.
    pub fn heal(&mut self) {
        let stopped: Vec<i32> = self
            .nodes
            .iter()
            .filter(|node| node.process.is_none())
            .map(|node| node.id)
            .collect();
        for &id in &stopped {
            self.spawn(id);
        }
        self.wait_for_brokers(&self.node_ids(), START_TIMEOUT);
    }

    /// The current metadata of `topic` as a running node sees it, or `None` when no node
    /// answers within a few seconds.
    pub fn topic_metadata(&self, topic: &str) -> Option<Metadata> {
        self.metadata_client()
            .fetch_metadata(Some(topic), METADATA_TIMEOUT)
            .ok()
    }

    /// The leader of each partition of `topic` (`-1`: none), as metadata says now.
    pub fn partition_leaders(&self, topic: &str) -> BTreeMap<i32, i32> {
        let Some(metadata) = self.topic_metadata(topic) else {
            return BTreeMap::new();
        };
        metadata
            .topics()
            .iter()
            .filter(|entry| entry.name() == topic)
            .flat_map(|entry| entry.partitions())
            .map(|partition| (partition.id(), partition.leader()))
            .collect()
    }

    /// The leader of one partition of `topic`, if it has one now.
    pub fn partition_leader(&self, topic: &str, partition: i32) -> Option<i32> {
        self.partition_leaders(topic)
            .get(&partition)
            .copied()
            .filter(|leader| *leader >= 0)
    }

    /// The active controller (the KRaft quorum's leader), read from the quorum state each
    /// running node keeps in its data directory: the leader of the newest epoch that any
    /// running node knows a leader for, if that leader is running. Metadata cannot say: a
    /// KRaft broker reports a random broker as "controller".
    pub fn active_controller(&self) -> Option<i32> {
        let running = self.running();
        let newest = running
            .iter()
            .filter_map(|id| self.quorum_state(*id))
            .filter(|(leader, _)| *leader >= 0)
            .max_by_key(|(_, epoch)| *epoch)?;
        running.contains(&newest.0).then_some(newest.0)
    }

    /// Waits until [`active_controller`](Self::active_controller) names a running node.
    pub fn wait_for_controller(&self, timeout: Duration) -> i32 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(id) = self.active_controller() {
                return id;
            }
            assert!(
                Instant::now() < deadline,
                "no active controller among nodes {:?} within {timeout:?}",
                self.running()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until every partition of `topic` has a leader and all its replicas in sync.
    pub fn wait_for_full_isr(&self, topic: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut last = String::from("no metadata");
        loop {
            if let Some(metadata) = self.topic_metadata(topic) {
                let partitions: Vec<_> = metadata
                    .topics()
                    .iter()
                    .filter(|entry| entry.name() == topic && entry.error().is_none())
                    .flat_map(|entry| entry.partitions())
                    .collect();
                let lagging: Vec<String> = partitions
                    .iter()
                    .filter(|partition| {
                        partition.leader() < 0 || partition.isr().len() < partition.replicas().len()
                    })
                    .map(|partition| {
                        format!(
                            "{}: leader {}, replicas {:?}, isr {:?}",
                            partition.id(),
                            partition.leader(),
                            partition.replicas(),
                            partition.isr()
                        )
                    })
                    .collect();
                if !partitions.is_empty() && lagging.is_empty() {
                    return;
                }
                last = if partitions.is_empty() {
                    "topic not in metadata".to_owned()
                } else {
                    lagging.join("; ")
                };
            }
            assert!(
                Instant::now() < deadline,
                "topic {topic} not fully in sync within {timeout:?}: {last}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn node(&self, id: i32) -> &Node {
        self.nodes
            .iter()
            .find(|node| node.id == id)
            .unwrap_or_else(|| panic!("no node {id} in this cluster"))
    }

    fn node_mut(&mut self, id: i32) -> &mut Node {
        self.nodes
            .iter_mut()
            .find(|node| node.id == id)
            .unwrap_or_else(|| panic!("no node {id} in this cluster"))
    }

    fn voters(&self) -> String {
        self.nodes
            .iter()
            .map(|node| format!("{}@127.0.0.1:{}", node.id, node.controller_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn spawn(&mut self, id: i32) {
        let voters = self.voters();
        let cluster_id = self.cluster_id.clone();
        let node = self.node_mut(id);
        assert!(node.process.is_none(), "node {id} is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log_path)
            .expect("node log file");
        let process = Command::new("bash")
            .arg(repo_root().join("deploy/local/kafka/kafka.sh"))
            .arg("run")
            .args(["--port", &node.port.to_string()])
            .args(["--controller-port", &node.controller_port.to_string()])
            .arg("--dir")
            .arg(&node.dir)
            .arg("--log")
            .arg(&node.log_path)
            .args(["--node-id", &id.to_string()])
            .args(["--voters", &voters])
            .args(["--cluster-id", &cluster_id])
            // Drop kills the nodes, but not when the test process dies without unwinding (an
            // abort, a cluster kept in a static): the node then goes with the process.
            .args(["--owner", &std::process::id().to_string()])
            .env("AUDITLOG_KAFKA_HEAP", NODE_HEAP)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("node log file"))
            .stderr(log)
            .spawn()
            .expect("start a Kafka node (`make install` installs Kafka)");
        node.process = Some(process);
    }

    fn metadata_client(&self) -> BaseConsumer {
        ClientConfig::new()
            .set("bootstrap.servers", self.brokers())
            .set("log_level", "0")
            .create()
            .expect("metadata client")
    }

    /// Waits until metadata lists each of `ids` as a broker (registered and not fenced).
    fn wait_for_brokers(&mut self, ids: &[i32], timeout: Duration) {
        let client = self.metadata_client();
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(metadata) = client.fetch_metadata(None, Duration::from_secs(1)) {
                let listed: Vec<i32> = metadata.brokers().iter().map(|b| b.id()).collect();
                if ids.iter().all(|id| listed.contains(id)) {
                    return;
                }
            }
            for node in &mut self.nodes {
                if let Some(process) = node.process.as_mut()
                    && let Ok(Some(status)) = process.try_wait()
                {
                    panic!(
                        "Kafka node {} exited during start-up ({status}); log: {}",
                        node.id,
                        node.log_path.display()
                    );
                }
            }
            assert!(
                Instant::now() < deadline,
                "Kafka nodes {ids:?} not all listed as brokers within {timeout:?}; logs: {}",
                self.nodes
                    .iter()
                    .map(|node| node.log_path.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// (leader id, epoch) from node `id`'s persisted KRaft election state.
    fn quorum_state(&self, id: i32) -> Option<(i32, i64)> {
        let path = self
            .node(id)
            .dir
            .join("data")
            .join("__cluster_metadata-0")
            .join("quorum-state");
        let text = std::fs::read_to_string(path).ok()?;
        let state: serde_json::Value = serde_json::from_str(&text).ok()?;
        let leader = state.get("leaderId")?.as_i64()?;
        let epoch = state.get("leaderEpoch")?.as_i64()?;
        Some((i32::try_from(leader).ok()?, epoch))
    }
}

impl Drop for KafkaCluster {
    fn drop(&mut self) {
        for id in self.node_ids() {
            self.kill(id);
        }
        for node in &self.nodes {
            let _ = std::fs::remove_dir_all(&node.dir);
        }
    }
}

/// A fresh Kafka Uuid (a cluster id): 16 random bytes in unpadded URL-safe base64.
fn kafka_uuid() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    // The standard library's randomly keyed hasher is random enough for a test cluster's id.
    let random = |salt: &str| {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write(salt.as_bytes());
        hasher.finish().to_be_bytes()
    };
    let bytes: Vec<u8> = [random("high"), random("low")].concat();
    let mut text = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let word = chunk.iter().enumerate().fold(0u32, |word, (index, byte)| {
            word | (u32::from(*byte) << (16 - 8 * index))
        });
        for sextet in 0..=chunk.len() {
            text.push(char::from(
                ALPHABET[(word >> (18 - 6 * sextet)) as usize & 63],
            ));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::kafka_uuid;

    #[test]
    fn cluster_ids_are_kafka_uuids() {
        let id = kafka_uuid();
        assert_eq!(id.len(), 22, "{id}");
        assert!(
            id.bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'),
            "{id}"
        );
        assert_ne!(id, kafka_uuid());
    }
}
