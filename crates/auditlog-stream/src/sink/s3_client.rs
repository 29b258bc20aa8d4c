//! A signed S3 client for the archive: PUT, GET, DELETE and paged ListObjectsV2 against any
//! S3-compatible endpoint, path-style or virtual-hosted, over the sinks' HTTP stack.
//!
//! ```text
//!  S3Sink ──put/get/delete/list──▶ S3Client ──SigV4──▶ endpoint (AWS, SeaweedFS, MinIO, ...)
//! ```
//!
//! Every failure is a [`DeliveryError`]: no answer, 408, 429 and 5xx are transient; other
//! statuses (a bad key, a missing bucket) are refusals the engine retries and reports.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderMap;
use hyper::{Method, Uri};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::sink::http::TlsSettings;
use crate::sink::sigv4::{
    Credentials, Signable, amz_date, authorization, canonical_query, uri_encode,
};
use crate::sink::{DeliveryError, FailureClass};

/// Tries of one request before a transient failure is returned (as AWS's SDKs' standard mode).
const ATTEMPTS: u32 = 3;
/// The pause after the first failed try; each later pause is four times the one before.
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(200);

/// An answer, read whole.
#[derive(Debug)]
pub(crate) struct S3Answer {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl S3Answer {
    fn excerpt(&self) -> String {
        String::from_utf8_lossy(&self.body)
            .chars()
            .take(300)
            .collect()
    }

    /// `Ok` for 2xx; 408, 429 and 5xx transient, the rest refusals.
    pub(crate) fn check(&self, what: &str) -> Result<(), DeliveryError> {
        let message = || format!("{what}: HTTP {}: {}", self.status, self.excerpt());
        match self.status {
            200..=299 => Ok(()),
            408 | 429 | 500..=599 => Err(DeliveryError::transient(message())),
            _ => Err(DeliveryError::rejected(message())),
        }
    }

    /// A user metadata value (`x-amz-meta-NAME`).
    pub(crate) fn meta(&self, name: &str) -> Option<&str> {
        self.headers
            .get(format!("x-amz-meta-{name}"))
            .and_then(|value| value.to_str().ok())
    }
}

/// Where the bucket is and how to reach it.
#[derive(Debug, Clone)]
pub(crate) struct S3Client {
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
    /// `http(s)://host[:port]`, without a path.
    scheme: String,
    authority: String,
    bucket: String,
    path_style: bool,
    credentials: Credentials,
}

impl S3Client {
    pub(crate) fn new(
        endpoint: &Uri,
        bucket: &str,
        path_style: bool,
        credentials: Credentials,
        timeout: Duration,
        tls: &TlsSettings,
    ) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        connector.set_nodelay(true);
        connector.enforce_http(false);
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls.client_config())
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let authority = endpoint
            .authority()
            .map(ToString::to_string)
            .unwrap_or_default();
        Self {
            http: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(connector),
            timeout,
            scheme: endpoint.scheme_str().unwrap_or("https").to_owned(),
            authority: if path_style {
                authority
            } else {
                format!("{bucket}.{authority}")
            },
            bucket: bucket.to_owned(),
            path_style,
            credentials,
        }
    }

    /// One signed request for `key` (or the bucket itself when empty); any answer returned,
    /// except that no answer, 408, 429 and 5xx are tried again a few times first. S3 stores
    /// answer those now and then by design (AWS's own SDKs retry them the same way), and
    /// SeaweedFS does for a moment after it grows a volume; every request here is idempotent
    /// (whole-object PUTs, GETs, DELETEs, listings), so a repeat is safe. The sink's engine
    /// still retries on top, under the pipeline's policy, for outages longer than this.
    async fn send(
        &self,
        method: Method,
        key: &str,
        query: &[(&str, &str)],
        extra: &[(String, String)],
        body: Bytes,
    ) -> Result<S3Answer, DeliveryError> {
        let mut pause = FIRST_RETRY_PAUSE;
        for _ in 1..ATTEMPTS {
            match self
                .send_once(method.clone(), key, query, extra, body.clone())
                .await
            {
                Ok(answer) if !matches!(answer.status, 408 | 429 | 500..=599) => {
                    return Ok(answer);
                }
                Err(error) if !matches!(error.class, FailureClass::Transient) => return Err(error),
                Ok(_) | Err(_) => {}
            }
            tokio::time::sleep(pause).await;
            pause *= 4;
        }
        self.send_once(method, key, query, extra, body).await
    }

    async fn send_once(
        &self,
        method: Method,
        key: &str,
        query: &[(&str, &str)],
        extra: &[(String, String)],
        body: Bytes,
    ) -> Result<S3Answer, DeliveryError> {
        let path = match (self.path_style, key.is_empty()) {
            (true, true) => format!("/{}", self.bucket),
            (true, false) => format!("/{}/{key}", self.bucket),
            (false, _) => format!("/{key}"),
        };
        let date = amz_date(OffsetDateTime::now_utc());
        let payload = hex::encode(Sha256::digest(&body));
        let mut headers: Vec<(&str, &str)> = vec![
            ("host", self.authority.as_str()),
            ("x-amz-date", date.as_str()),
            ("x-amz-content-sha256", payload.as_str()),
        ];
        if let Some(token) = &self.credentials.session_token {
            headers.push(("x-amz-security-token", token.as_str()));
        }
        for (name, value) in extra {
            headers.push((name.as_str(), value.as_str()));
        }
        let signature = authorization(
            &self.credentials,
            &Signable {
                method: method.as_str(),
                path: &path,
                query,
                headers: &headers,
                payload_sha256: &payload,
            },
            &date,
        );
        let mut path_and_query = uri_encode(&path, false);
        if !query.is_empty() {
            path_and_query.push('?');
            path_and_query.push_str(&canonical_query(query));
        }
        let uri = format!("{}://{}{path_and_query}", self.scheme, self.authority);
        let what = format!("{method} {uri}");
        let mut request = hyper::Request::builder().method(method).uri(&uri);
        for (name, value) in &headers {
            request = request.header(*name, *value);
        }
        let request = request
            .header("authorization", signature)
            .body(Full::new(body))
            .map_err(|error| DeliveryError::rejected(format!("{what}: {error}")))?;
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|error| DeliveryError::transient(format!("{what}: {error:#}")))?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|error| DeliveryError::transient(format!("{what}: {error}")))?
                .to_bytes();
            Ok(S3Answer {
                status,
                headers,
                body,
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(DeliveryError::transient(format!(
                    "{what}: no answer within {:?}",
                    self.timeout
                )))
            })
    }

    /// Writes `key` whole; `meta` become `x-amz-meta-*` headers.
    pub(crate) async fn put(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
        meta: &[(&str, String)],
    ) -> Result<(), DeliveryError> {
        let mut extra = vec![("content-type".to_owned(), content_type.to_owned())];
        extra.extend(
            meta.iter()
                .map(|(name, value)| (format!("x-amz-meta-{name}"), value.clone())),
        );
        self.send(Method::PUT, key, &[], &extra, body)
            .await?
            .check(&format!("put {key}"))
    }

    /// `key`'s answer, or `None` when it does not exist.
    pub(crate) async fn get(&self, key: &str) -> Result<Option<S3Answer>, DeliveryError> {
        let answer = self.send(Method::GET, key, &[], &[], Bytes::new()).await?;
        if answer.status == 404 {
            return Ok(None);
        }
        answer.check(&format!("get {key}"))?;
        Ok(Some(answer))
    }

    /// Removes `key` (absent already is fine, as S3 answers 204 either way).
    pub(crate) async fn delete(&self, key: &str) -> Result<(), DeliveryError> {
        let answer = self
            .send(Method::DELETE, key, &[], &[], Bytes::new())
            .await?;
        if answer.status == 404 {
            return Ok(());
        }
        answer.check(&format!("delete {key}"))
    }

    /// Every key under `prefix` after `start_after`, in S3's (byte) order, across pages.
    pub(crate) async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
    ) -> Result<Vec<String>, DeliveryError> {
        Ok(self.list_pages(prefix, start_after, false).await?.0)
    }

    /// The "folders" right under `prefix` (`prefix` + a name + `/`), as S3 groups keys on `/`.
    pub(crate) async fn list_folders(&self, prefix: &str) -> Result<Vec<String>, DeliveryError> {
        Ok(self.list_pages(prefix, None, true).await?.1)
    }

    /// Keys and, with `folders`, common prefixes on `/`.
    async fn list_pages(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        folders: bool,
    ) -> Result<(Vec<String>, Vec<String>), DeliveryError> {
        let mut keys = Vec::new();
        let mut prefixes = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![("list-type", "2"), ("prefix", prefix)];
            if folders {
                query.push(("delimiter", "/"));
            }
            if let Some(token) = token.as_deref() {
                query.push(("continuation-token", token));
            } else if let Some(after) = start_after {
                query.push(("start-after", after));
            }
            let answer = self
                .send(Method::GET, "", &query, &[], Bytes::new())
                .await?;
            answer.check(&format!("list {prefix}"))?;
            let text = String::from_utf8_lossy(&answer.body);
            keys.extend(xml_values(&text, "Key"));
            // `<Prefix>` is also the answer's echo of the request's prefix.
            prefixes.extend(
                xml_values(&text, "Prefix")
                    .into_iter()
                    .filter(|found| found != prefix),
            );
            token = xml_values(&text, "NextContinuationToken")
                .into_iter()
                .next();
            let truncated =
                xml_values(&text, "IsTruncated").first().map(String::as_str) == Some("true");
            if !truncated || token.is_none() {
                return Ok((keys, prefixes));
            }
        }
    }
}

/// The text of every `<tag>...</tag>`, XML entities decoded (ListObjectsV2's answer is flat
/// enough that no XML parser is needed).
fn xml_values(text: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut values = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else {
            break;
        };
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
    use super::*;

    #[test]
    fn list_answers_are_read_with_entities_decoded() {
        let text = "<ListBucketResult><IsTruncated>true</IsTruncated>\
            <Contents><Key>a/b&amp;c.gz</Key></Contents><Contents><Key>a/d.gz</Key></Contents>\
            <NextContinuationToken>tok</NextContinuationToken></ListBucketResult>";
        assert_eq!(xml_values(text, "Key"), ["a/b&c.gz", "a/d.gz"]);
        assert_eq!(xml_values(text, "IsTruncated"), ["true"]);
    }
}
