//! `auditlog` child processes: the one way tests and benches start, watch and stop them.
//!
//! The kit does not depend on the binary crate: the caller names the binary
//! ([`auditlog_binary`](crate::auditlog_binary) in tests, `env!("CARGO_BIN_EXE_auditlog")` in
//! the binary crate's own benches).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::http::{HttpResponse, http_get};
use crate::{Error, log_dir, unique_name};

/// How to start one `auditlog` process; [`AuditlogCommand::spawn`] starts it.
#[derive(Debug, Clone)]
pub struct AuditlogCommand {
    binary: PathBuf,
    name: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log_level: String,
    ops_port: Option<u16>,
    open_files: Option<u32>,
}

impl AuditlogCommand {
    /// `binary` with no arguments, logging at `info` to a file named after `name`.
    pub fn new(binary: impl Into<PathBuf>, name: &str) -> Self {
        Self {
            binary: binary.into(),
            name: name.to_owned(),
            args: Vec::new(),
            env: Vec::new(),
            log_level: "info".to_owned(),
            ops_port: None,
            open_files: None,
        }
    }

    /// One more argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// More arguments.
    pub fn args<A: Into<String>>(mut self, args: impl IntoIterator<Item = A>) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// One more environment variable (a later one wins over an earlier one of the same name).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// More environment variables.
    pub fn envs<K: Into<String>, V: Into<String>>(
        mut self,
        env: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.env.extend(
            env.into_iter()
                .map(|(key, value)| (key.into(), value.into())),
        );
        self
    }

    /// `AUDITLOG_LOG` (default `info`); it wins over one given with [`AuditlogCommand::env`].
    pub fn log_level(mut self, level: &str) -> Self {
        level.clone_into(&mut self.log_level);
        self
    }

    /// The port of its metrics and health endpoints (`ingest --metrics-listen`, the API
    /// port or `--ops-listen` of `serve`), for [`AuditlogProcess::ops_get`].
    pub fn ops_port(mut self, port: u16) -> Self {
        self.ops_port = Some(port);
        self
    }

    /// Runs it under `ulimit -n limit` (through `sh`, whose `exec` leaves the process id
    /// the binary's).
    pub fn open_files_limit(mut self, limit: u32) -> Self {
        self.open_files = Some(limit);
        self
    }

    /// Starts it, its stdout and stderr going to `target/e2e-logs/<name>_<unique>.log`.
    pub fn spawn(self) -> AuditlogProcess {
        let log_path = log_dir().join(format!("{}.log", unique_name(&self.name)));
        let log = std::fs::File::create(&log_path).expect("log file");
        let mut command = match self.open_files {
            Some(limit) => {
                let mut shell = Command::new("sh");
                shell
                    .arg("-c")
                    .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
                    .arg(&self.binary);
                shell
            }
            None => Command::new(&self.binary),
        };
        let child = command
            .args(&self.args)
            .envs(self.env.iter().map(|(key, value)| (key, value)))
            .env("AUDITLOG_LOG", &self.log_level)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| panic!("spawn {}: {error}", self.binary.display()));
        AuditlogProcess {
            name: self.name,
            child,
            log_path,
            ops_port: self.ops_port,
        }
    }
}

/// A running `auditlog` child process with its log file; killed (`-9`) when dropped.
#[derive(Debug)]
pub struct AuditlogProcess {
    name: String,
    child: Child,
    log_path: PathBuf,
    ops_port: Option<u16>,
}

impl AuditlogProcess {
    /// The name it was started under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Where its stdout and stderr go.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The port of its metrics and health endpoints, when it was given one.
    pub fn ops_port(&self) -> Option<u16> {
        self.ops_port
    }

    /// SIGKILL: no flush, no commit, no goodbye.
    pub fn kill_dash_nine(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits up to `timeout` for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.send_sigterm();
        self.wait_for_exit(timeout)
    }

    /// Sends SIGTERM and returns at once.
    pub fn send_sigterm(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    /// Waits up to `timeout` for the exit status.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exit_status() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Its exit status if it has exited, without waiting.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The process's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Waits until its log holds `text`; whether it did within `timeout`. For what only the
    /// log tells, e.g. that a signal was taken.
    pub async fn wait_for_log(&self, text: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log().contains(text) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The text of its `/metrics` endpoint, `None` if it does not answer.
    pub async fn metrics(&self) -> Option<String> {
        Some(self.ops_get("/metrics").await?.text())
    }

    /// One of its operational endpoints, `None` if it has no ops port or does not answer.
    pub async fn ops_get(&self, path: &str) -> Option<HttpResponse> {
        http_get(self.ops_port?, path, None).await.ok()
    }

    /// Waits until its ops port answers `path` with 200: an error, with its log, when it
    /// exits or `timeout` passes first.
    pub async fn wait_until_ok(&mut self, path: &str, timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        loop {
            if self
                .ops_get(path)
                .await
                .is_some_and(|response| response.status == 200)
            {
                return Ok(());
            }
            if !self.is_running() || Instant::now() >= deadline {
                return Err(Error::NotReady {
                    name: self.name.clone(),
                    path: path.to_owned(),
                    seconds: timeout.as_secs(),
                    log: self.log(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Its peak resident memory (Linux `VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
    }
}

impl Drop for AuditlogProcess {
    fn drop(&mut self) {
        if self.is_running() {
            self.kill_dash_nine();
        }
    }
}

/// The sum of every sample of `name` in a Prometheus text page (all label sets; `0` when
/// there is none).
pub fn metric_sum(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with([' ', '{']))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_metric_sums_over_its_labels_and_not_over_longer_names() {
        let page = "# TYPE a_total counter\na_total{kind=\"x\"} 2\na_total{kind=\"y\"} 3\n\
                    a_total_extra 100\nb 7\n";
        assert_eq!(super::metric_sum(page, "a_total"), 5.0);
        assert_eq!(super::metric_sum(page, "b"), 7.0);
        assert_eq!(super::metric_sum(page, "c"), 0.0);
    }
}
