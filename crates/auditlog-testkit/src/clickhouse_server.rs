//! ClickHouse: the shared server, fresh databases on it, and private servers.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, http_get, log_dir, repo_root, tools_dir, unique_name};

/// The local stack's ClickHouse HTTP URL.
pub const DEFAULT_CLICKHOUSE_URL: &str = "http://127.0.0.1:8123";

/// ClickHouse HTTP URL: `AUDITLOG_CLICKHOUSE_URL` or the local stack's.
pub fn clickhouse_url() -> String {
    std::env::var("AUDITLOG_CLICKHOUSE_URL").unwrap_or_else(|_| DEFAULT_CLICKHOUSE_URL.to_owned())
}

/// A client for the shared server, with no database selected.
pub fn clickhouse_client() -> clickhouse::Client {
    clickhouse::Client::default().with_url(clickhouse_url())
}

/// Creates a new, empty database and returns a client that uses it, with its name.
pub async fn fresh_database(prefix: &str) -> (clickhouse::Client, String) {
    let database = unique_name(prefix);
    clickhouse_client()
        .query(&format!("CREATE DATABASE {database}"))
        .execute()
        .await
        .unwrap_or_else(|error| panic!("create database {database}: {error}"));
    (clickhouse_client().with_database(&database), database)
}

/// The one number `sql` answers (a count, usually); panics with the query on failure.
pub async fn clickhouse_scalar(client: &clickhouse::Client, sql: &str) -> u64 {
    client
        .query(sql)
        .fetch_one::<u64>()
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
}

/// Runs one statement (DDL, an insert from a select, a mutation); panics with the
/// statement on failure.
pub async fn clickhouse_execute(client: &clickhouse::Client, sql: &str) {
    client
        .query(sql)
        .execute()
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"));
}

/// A private ClickHouse HTTP server (the project's chDB server) that a test may stop and
/// start again without disturbing other tests.
#[derive(Debug)]
pub struct PrivateClickHouse {
    /// Its HTTP port.
    pub port: u16,
    /// Its data directory (removed on drop).
    pub data_dir: PathBuf,
    process: Option<Child>,
    log_path: PathBuf,
}

impl PrivateClickHouse {
    /// Starts one on a free port with a fresh data directory.
    pub async fn start() -> Self {
        let data_dir = std::env::temp_dir().join(unique_name("auditlog_private_clickhouse"));
        let mut server = Self {
            port: free_port(),
            data_dir,
            process: None,
            log_path: log_dir().join(format!("{}.log", unique_name("clickhouse"))),
        };
        server.resume().await;
        server
    }

    /// The URL to point clients at.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops the server abruptly (SIGKILL), as a crash or a network cut looks to clients.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    /// Starts it again on the same port and data directory; waits until it answers.
    pub async fn resume(&mut self) {
        let python = tools_dir().join("chdb-venv").join("bin").join("python");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("log file");
        let process = Command::new(python)
            .arg(repo_root().join("deploy/local/clickhouse/server.py"))
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start the chDB server (run `make install` first)");
        self.process = Some(process);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if http_get(self.port, "/ping", None)
                .await
                .is_ok_and(|response| response.text() == "Ok.\n")
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "private clickhouse did not start; log: {}",
            self.log_path.display()
        );
    }
}

impl Drop for PrivateClickHouse {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}
