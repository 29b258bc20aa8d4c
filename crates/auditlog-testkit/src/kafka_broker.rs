//! A private Apache Kafka broker, for tests that must stop, kill or isolate their broker.
//!
//! It is the same broker as the local stack's, launched the same way
//! (`deploy/local/kafka/kafka.sh run`), on free ports with a data directory of its own. A
//! start costs a JVM start-up (seconds, more on a busy machine), so tests that only need a
//! topic use the shared broker and a topic of their own instead.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::{free_port, log_dir, repo_root, unique_name};

/// How long a private broker may take to answer its first Metadata request. Generous: a
/// JVM start on two busy cores has been seen to take 20 s.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a SIGTERM'd broker may take for its controlled shutdown.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// The heap of a private broker: test topics are small.
const PRIVATE_HEAP: &str = "512m";

/// A running (or stopped) private broker.
#[derive(Debug)]
pub struct PrivateBroker {
    port: u16,
    controller_port: u16,
    dir: PathBuf,
    log_path: PathBuf,
    process: Option<Child>,
}

impl PrivateBroker {
    /// Starts one on free ports with an empty data directory; returns once it answers a
    /// Metadata request.
    pub fn start() -> Self {
        let name = unique_name("kafka");
        let mut broker = Self {
            port: free_port(),
            controller_port: free_port(),
            dir: std::env::temp_dir().join(format!("auditlog_private_{name}")),
            log_path: log_dir().join(format!("{name}.log")),
            process: None,
        };
        broker.resume();
        broker
    }

    /// Its bootstrap servers.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// SIGKILL: a crash, or a cut network, as clients see it.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    /// SIGTERM, then waits for the controlled shutdown to finish (SIGKILL past a minute).
    pub fn stop(&mut self) {
        let Some(mut process) = self.process.take() else {
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

    /// Starts it (again) on the same ports and data directory; returns once it answers.
    pub fn resume(&mut self) {
        assert!(self.process.is_none(), "the broker is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("broker log file");
        let process = Command::new("bash")
            .arg(repo_root().join("deploy/local/kafka/kafka.sh"))
            .arg("run")
            .args(["--port", &self.port.to_string()])
            .args(["--controller-port", &self.controller_port.to_string()])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--log")
            .arg(&self.log_path)
            .env("AUDITLOG_KAFKA_HEAP", PRIVATE_HEAP)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("broker log file"))
            .stderr(log)
            .spawn()
            .expect("start the Kafka broker (`make install` installs it)");
        self.process = Some(process);
        self.wait_until_answering();
    }

    fn wait_until_answering(&mut self) {
        let client: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.brokers())
            .set("log_level", "0")
            .create()
            .expect("metadata client");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(metadata) = client.fetch_metadata(None, Duration::from_secs(1))
                && !metadata.brokers().is_empty()
            {
                return;
            }
            if let Some(process) = self.process.as_mut()
                && let Ok(Some(status)) = process.try_wait()
            {
                panic!(
                    "private broker exited during start-up ({status}); log: {}",
                    self.log_path.display()
                );
            }
            assert!(
                Instant::now() < deadline,
                "private broker did not answer on {} within {START_TIMEOUT:?}; log: {}",
                self.brokers(),
                self.log_path.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
