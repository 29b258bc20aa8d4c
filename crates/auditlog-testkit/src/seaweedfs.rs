//! A private S3-compatible object store: SeaweedFS's S3 server, for tests of the S3 archive.
//!
//! It is the same server as the local stack's (`deploy/local/seaweedfs.sh run`), on a free port
//! with a data directory and a key pair of its own, so every request must be signed (SigV4)
//! as against a production store. Tests reach it through [`S3Server::request`] or the
//! bucket and object helpers, which sign for them.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use hyper::StatusCode;

use crate::sigv4::{SigV4Credentials, SigV4Request, amz_date, sha256_hex, uri_encode};
use crate::{
    Error, HttpResponse, free_port, http_get, http_request, log_dir, repo_root, unique_name,
};

/// How long a start may take: `weed` itself starts in seconds, but the first start on a
/// machine builds it (minutes) unless `make test` or `stack.sh install seaweedfs` did.
const START_TIMEOUT: Duration = Duration::from_secs(900);
/// The region every S3-compatible server accepts unless configured otherwise.
pub const S3_REGION: &str = "us-east-1";

/// A running (or killed) private S3 server.
#[derive(Debug)]
pub struct S3Server {
    port: u16,
    dir: PathBuf,
    log_path: PathBuf,
    credentials: SigV4Credentials,
    process: Option<Child>,
}

impl S3Server {
    /// Starts one on a free port with an empty data directory and a fresh key pair; returns
    /// once it accepts signed requests.
    pub async fn start() -> Self {
        let name = unique_name("s3");
        let mut server = Self {
            port: free_port(),
            dir: std::env::temp_dir().join(format!("auditlog_private_{name}")),
            log_path: log_dir().join(format!("{name}.log")),
            credentials: SigV4Credentials {
                access_key: format!("AK{}", name.replace('_', "").to_uppercase()),
                secret_key: format!("secret-{name}"),
                region: S3_REGION.to_owned(),
                service: "s3".to_owned(),
            },
            process: None,
        };
        server.resume().await;
        server
    }

    /// Its endpoint, for S3 clients: `http://127.0.0.1:PORT` (path-style addressing).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The key pair (and region) it accepts; any other signature is refused.
    pub fn credentials(&self) -> &SigV4Credentials {
        &self.credentials
    }

    /// SIGKILL: a crash, or a cut network, as clients see it. The data stays for [`Self::resume`].
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    /// Starts it (again) on the same port, data and keys; returns once it accepts signed requests.
    pub async fn resume(&mut self) {
        assert!(self.process.is_none(), "the S3 server is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("S3 server log file");
        // The script writes the internal servers' ports afresh; an old file names dead ports.
        let _ = std::fs::remove_file(self.dir.join("ports"));
        let process = Command::new("bash")
            .arg(repo_root().join("deploy/local/seaweedfs.sh"))
            .arg("run")
            .args(["--port", &self.port.to_string()])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--access-key", &self.credentials.access_key])
            .args(["--secret-key", &self.credentials.secret_key])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("S3 server log file"))
            .stderr(log)
            .spawn()
            .expect("start the S3 server (`deploy/local/seaweedfs.sh install` builds it)");
        self.process = Some(process);
        self.wait_until_serving().await;
    }

    /// The gateway answers as soon as it listens, before its filer serves and before its
    /// volume server has registered with the master (until then, reads of stored objects
    /// fail): it serves once a signed listing succeeds and both internal servers are healthy.
    async fn wait_until_serving(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if self.serving().await {
                return;
            }
            if let Some(process) = self.process.as_mut()
                && let Ok(Some(status)) = process.try_wait()
            {
                panic!(
                    "S3 server exited during start-up ({status}); log: {}",
                    self.log_path.display()
                );
            }
            assert!(
                Instant::now() < deadline,
                "S3 server did not serve on {} within {START_TIMEOUT:?}; log: {}",
                self.endpoint(),
                self.log_path.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn serving(&self) -> bool {
        let Ok(ports) = std::fs::read_to_string(self.dir.join("ports")) else {
            return false;
        };
        let port_of = |name: &str| {
            ports
                .lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix('='))
                .and_then(|port| port.parse::<u16>().ok())
        };
        let (Some(master), Some(volume), Some(filer)) =
            (port_of("master"), port_of("volume"), port_of("filer"))
        else {
            return false;
        };
        for port in [volume, filer] {
            if !http_get(port, "/healthz", None)
                .await
                .is_ok_and(|response| response.status == StatusCode::OK)
            {
                return false;
            }
        }
        // After a restart the volume server answers its health check before its first
        // heartbeat has told the (new) master which volumes it holds; until then a read of an
        // object stored before the restart fails with "volume not found".
        let on_disk = std::fs::read_dir(self.dir.join("data"))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "dat"))
                    .count()
            })
            .unwrap_or(0);
        let Ok(status) = http_get(master, "/dir/status", None).await else {
            return false;
        };
        if master_volumes(&status.text(), volume).is_none_or(|known| known < on_disk) {
            return false;
        }
        self.request("GET", "/", &[], Bytes::new())
            .await
            .is_ok_and(|response| response.status == StatusCode::OK)
    }

    /// One request signed with the server's keys: `path` (`/bucket/key`) and `query` not yet
    /// percent-encoded. Any answer is returned, error statuses included.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: Bytes,
    ) -> Result<HttpResponse, Error> {
        let host = format!("127.0.0.1:{}", self.port);
        let date = amz_date(SystemTime::now());
        let payload = sha256_hex(&body);
        let headers = [
            ("host", host.as_str()),
            ("x-amz-date", date.as_str()),
            ("x-amz-content-sha256", payload.as_str()),
        ];
        let authorization = crate::sigv4::sigv4_authorization(
            &self.credentials,
            &SigV4Request {
                method,
                path,
                query,
                headers: &headers,
                payload_sha256: &payload,
            },
            &date,
        );
        let mut path_and_query = uri_encode(path, false);
        for (index, (name, value)) in query.iter().enumerate() {
            path_and_query.push(if index == 0 { '?' } else { '&' });
            path_and_query.push_str(&uri_encode(name, true));
            path_and_query.push('=');
            path_and_query.push_str(&uri_encode(value, true));
        }
        let mut all_headers = headers.to_vec();
        all_headers.push(("authorization", &authorization));
        http_request(method, self.port, &path_and_query, &all_headers, body).await
    }

    /// Creates `bucket`; panics unless the server confirms.
    pub async fn create_bucket(&self, bucket: &str) {
        let response = self
            .expect_request("PUT", &format!("/{bucket}"), &[], Bytes::new())
            .await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "create bucket {bucket}: {}",
            response.text()
        );
    }

    /// Writes one object; panics unless the server confirms.
    pub async fn put_object(&self, bucket: &str, key: &str, body: impl Into<Bytes>) {
        let response = self
            .expect_request("PUT", &format!("/{bucket}/{key}"), &[], body.into())
            .await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "put {bucket}/{key}: {}",
            response.text()
        );
    }

    /// One object's content, or `None` when there is no such key.
    pub async fn get_object(&self, bucket: &str, key: &str) -> Option<Bytes> {
        let response = self
            .expect_request("GET", &format!("/{bucket}/{key}"), &[], Bytes::new())
            .await;
        match response.status {
            StatusCode::OK => Some(response.body),
            StatusCode::NOT_FOUND => None,
            status => panic!("get {bucket}/{key}: {status} {}", response.text()),
        }
    }

    /// Every key under `prefix` in `bucket`, in S3's order, across as many ListObjectsV2 pages
    /// as it takes.
    pub async fn list_keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut continuation: Option<String> = None;
        loop {
            let mut query = vec![("list-type", "2"), ("prefix", prefix)];
            if let Some(token) = continuation.as_deref() {
                query.push(("continuation-token", token));
            }
            let response = self
                .expect_request("GET", &format!("/{bucket}"), &query, Bytes::new())
                .await;
            let text = response.text();
            assert_eq!(response.status, StatusCode::OK, "list {bucket}: {text}");
            keys.extend(xml_values(&text, "Key"));
            continuation = xml_values(&text, "NextContinuationToken")
                .into_iter()
                .next();
            if xml_values(&text, "IsTruncated").first().map(String::as_str) != Some("true")
                || continuation.is_none()
            {
                return keys;
            }
        }
    }

    async fn expect_request(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: Bytes,
    ) -> HttpResponse {
        // A 5xx is retried a few times, as S3 clients do: SeaweedFS answers 500 for a moment
        // after it grows a volume for a new bucket, before its master knows the volume.
        for pause in [200, 800] {
            let response = self
                .request(method, path, query, body.clone())
                .await
                .unwrap_or_else(|error| panic!("{error}; log: {}", self.log_path.display()));
            if !response.status.is_server_error() {
                return response;
            }
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        self.request(method, path, query, body)
            .await
            .unwrap_or_else(|error| panic!("{error}; log: {}", self.log_path.display()))
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How many volumes the master's topology (`/dir/status`) gives the volume server on
/// `volume_port`, or `None` while that server has not registered.
fn master_volumes(status: &str, volume_port: u16) -> Option<usize> {
    let status: serde_json::Value = serde_json::from_str(status).ok()?;
    let url = format!("127.0.0.1:{volume_port}");
    status["Topology"]["DataCenters"]
        .as_array()?
        .iter()
        .flat_map(|center| center["Racks"].as_array().into_iter().flatten())
        .flat_map(|rack| rack["DataNodes"].as_array().into_iter().flatten())
        .find(|node| node["Url"] == url.as_str())
        .and_then(|node| node["Volumes"].as_u64())
        .map(|count| count as usize)
}

/// The texts of every `<tag>...</tag>` in an S3 XML answer, unescaped. S3's listings are flat
/// and regular enough that this needs no XML parser.
fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut values = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        values.push(
            after[..end]
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&"),
        );
        rest = &after[end + close.len()..];
    }
    values
}

#[cfg(test)]
mod tests {
    #[test]
    fn master_volumes_reads_one_servers_count_and_none_before_it_registers() {
        let status = r#"{"Topology":{"DataCenters":[{"Racks":[{"DataNodes":[
            {"Url":"127.0.0.1:54763","Volumes":7}]}]}]}}"#;
        assert_eq!(super::master_volumes(status, 54763), Some(7));
        assert_eq!(super::master_volumes(status, 1), None);
        let before = r#"{"Topology":{"DataCenters":[],"Layouts":null}}"#;
        assert_eq!(super::master_volumes(before, 54763), None);
    }

    #[test]
    fn xml_values_are_found_in_order_and_unescaped() {
        let xml = "<R><Contents><Key>a&amp;b</Key></Contents><Contents><Key>c</Key></Contents>\
                   <IsTruncated>false</IsTruncated></R>";
        assert_eq!(super::xml_values(xml, "Key"), ["a&b", "c"]);
        assert_eq!(super::xml_values(xml, "IsTruncated"), ["false"]);
        assert!(super::xml_values(xml, "NextContinuationToken").is_empty());
    }
}
