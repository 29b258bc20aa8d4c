//! A private OpenSearch node, for tests of the OpenSearch sink.
//!
//! It is the same node as the local stack's (`deploy/local/opensearch.sh run`): OpenSearch
//! 2.19 from Maven Central, one node, plain HTTP without authentication, on a free port with a
//! data directory of its own. A start costs a JVM start-up (seconds, more on a busy machine).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::StatusCode;
use serde_json::Value;

use crate::{Error, HttpResponse, free_port, http_request, log_dir, repo_root, unique_name};

/// How long a start may take: a JVM start on two busy cores takes tens of seconds, and the
/// first start on a machine installs the server from Maven Central unless `make test` or
/// `stack.sh install opensearch` did.
const START_TIMEOUT: Duration = Duration::from_secs(600);

/// A running (or killed) private OpenSearch node.
#[derive(Debug)]
pub struct OpenSearchNode {
    port: u16,
    dir: PathBuf,
    log_path: PathBuf,
    process: Option<Child>,
}

impl OpenSearchNode {
    /// Starts one on a free port with an empty data directory; returns once its cluster is
    /// formed (health green or yellow).
    pub async fn start() -> Self {
        let name = unique_name("opensearch");
        let mut node = Self {
            port: free_port(),
            dir: std::env::temp_dir().join(format!("auditlog_private_{name}")),
            log_path: log_dir().join(format!("{name}.log")),
            process: None,
        };
        node.resume().await;
        node
    }

    /// Its REST endpoint: `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Its HTTP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// SIGKILL: a crash, or a cut network, as clients see it. The data stays for [`Self::resume`].
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    /// Starts it (again) on the same port and data directory; returns once it serves.
    pub async fn resume(&mut self) {
        assert!(
            self.process.is_none(),
            "the OpenSearch node is already running"
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("OpenSearch log file");
        let process = Command::new("bash")
            .arg(repo_root().join("deploy/local/opensearch.sh"))
            .arg("run")
            .args(["--port", &self.port.to_string()])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("OpenSearch log file"))
            .stderr(log)
            .spawn()
            .expect("start OpenSearch (`deploy/local/opensearch.sh install` installs it)");
        self.process = Some(process);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if self.serving().await {
                return;
            }
            if let Some(process) = self.process.as_mut()
                && let Ok(Some(status)) = process.try_wait()
            {
                panic!(
                    "OpenSearch exited during start-up ({status}); log: {}",
                    self.log_path.display()
                );
            }
            assert!(
                Instant::now() < deadline,
                "OpenSearch did not serve on {} within {START_TIMEOUT:?}; log: {}",
                self.url(),
                self.log_path.display()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The cluster is formed (health green or yellow), and the launcher has set its default
    /// of no replicas (one node holds none), so the indices a test creates are green.
    async fn serving(&self) -> bool {
        let Ok(health) = self.request("GET", "/_cluster/health", None).await else {
            return false;
        };
        let Ok(settings) = self.request("GET", "/_cluster/settings", None).await else {
            return false;
        };
        health.status == StatusCode::OK
            && matches!(health.json()["status"].as_str(), Some("green" | "yellow"))
            && settings.status == StatusCode::OK
            && settings.json()["persistent"]["cluster"]["default_number_of_replicas"] == "0"
    }

    /// One REST request; `body` is JSON, or NDJSON for the `_bulk` routes. Any answer is
    /// returned, error statuses included.
    pub async fn request(
        &self,
        method: &str,
        path_and_query: &str,
        body: Option<Bytes>,
    ) -> Result<HttpResponse, Error> {
        let content_type = if path_and_query
            .split('?')
            .next()
            .unwrap_or_default()
            .ends_with("/_bulk")
        {
            "application/x-ndjson"
        } else {
            "application/json"
        };
        let headers = [("content-type", content_type)];
        http_request(
            method,
            self.port,
            path_and_query,
            if body.is_some() { &headers } else { &[] },
            body.unwrap_or_default(),
        )
        .await
    }

    /// A JSON request whose answer must be a 2xx; its JSON body. Panics otherwise.
    pub async fn json(&self, method: &str, path_and_query: &str, body: Option<&Value>) -> Value {
        let body = body.map(|body| Bytes::from(body.to_string()));
        let response = self
            .request(method, path_and_query, body)
            .await
            .unwrap_or_else(|error| panic!("{error}; log: {}", self.log_path.display()));
        assert!(
            response.status.is_success(),
            "{method} {path_and_query}: {} {}",
            response.status,
            response.text()
        );
        response.json()
    }

    /// Makes what was indexed searchable now, instead of at the next periodic refresh.
    pub async fn refresh(&self, index: &str) {
        self.json("POST", &format!("/{index}/_refresh"), None).await;
    }

    /// How many documents `index` (a name or a pattern) holds, as a search sees them now.
    pub async fn count(&self, index: &str) -> u64 {
        self.json("GET", &format!("/{index}/_count"), None).await["count"]
            .as_u64()
            .expect("a count")
    }
}

impl Drop for OpenSearchNode {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
