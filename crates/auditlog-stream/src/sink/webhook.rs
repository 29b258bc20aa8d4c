//! `webhook`: each batch as one HTTP POST of NDJSON, signed.
//!
//! Headers of every request (documented for receivers in `docs/streaming.md`):
//! - `Content-Type: application/x-ndjson`;
//! - `X-Auditlog-Timestamp` and `X-Auditlog-Signature` (see [`crate::sign_webhook`]), made
//!   anew for each attempt, so a retry is fresh and a replay is stale;
//! - `X-Auditlog-Batch: topic/partition/first-last`, the same for every attempt of a batch:
//!   a receiver that has seen it may answer 2xx and skip it;
//! - `X-Auditlog-Events`: the number of lines;
//! - the configured `headers`.
//!
//! Any 2xx confirms the batch. 408, 429 and 5xx are transient. 400, 413 and 422 refuse what
//! the request holds: the engine sends halves (each with its own narrower range in
//! `X-Auditlog-Batch`) to find the events refused on their own, for the dead-letter topic.
//! Other statuses are refusals, retried as well (nothing is dropped) and reported as such.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use hyper::Uri;
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use serde::Deserialize;

use crate::StreamError;
use crate::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign_webhook};
use crate::sink::http::{HttpClient, TlsSettings, header, parse_url};
use crate::sink::settings::{kind_settings, secret};
use crate::sink::{Batch, DeliveryError, Sink};

/// The header naming a batch's range.
pub const BATCH_HEADER: &str = "x-auditlog-batch";
/// The header counting a batch's events.
pub const EVENTS_HEADER: &str = "x-auditlog-events";

/// The TOML keys of a webhook sink.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookFile {
    url: String,
    secret: Option<String>,
    secret_env: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    timeout_secs: Option<u64>,
    ca_file: Option<std::path::PathBuf>,
}

/// A webhook's checked settings.
#[derive(Clone)]
pub struct WebhookConfig {
    /// Where batches are POSTed.
    pub url: Uri,
    secret: String,
    /// Extra headers on every request.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// How long one request may take.
    pub timeout: Duration,
    /// How servers are verified (`https://` URLs).
    pub tls: TlsSettings,
}

impl fmt::Debug for WebhookConfig {
    // The secret never reaches a log line.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("WebhookConfig")
            .field("url", &self.url)
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(name, _)| name)
                    .collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl WebhookConfig {
    pub(crate) fn from_settings(sink: &str, settings: toml::Value) -> Result<Self, StreamError> {
        let file: WebhookFile = kind_settings(sink, "webhook", settings)?;
        let url = parse_url(sink, "url", &file.url)?;
        let Some(secret) = secret(sink, "secret", file.secret, file.secret_env)? else {
            return Err(StreamError::config(
                sink,
                "a webhook needs `secret` or `secret_env`: receivers check each request's signature with it",
            ));
        };
        if secret.len() < 16 {
            return Err(StreamError::config(
                sink,
                "the webhook secret must be at least 16 bytes",
            ));
        }
        let mut headers = Vec::new();
        for (name, value) in &file.headers {
            let lower = name.to_ascii_lowercase();
            if lower.starts_with("x-auditlog-") || lower == "content-type" {
                return Err(StreamError::config(
                    sink,
                    format!("header {name:?} is set by the sink itself"),
                ));
            }
            headers.push(header(sink, name, value)?);
        }
        Ok(Self {
            url,
            secret,
            headers,
            timeout: Duration::from_secs(file.timeout_secs.unwrap_or(30).max(1)),
            tls: TlsSettings::new(sink, file.ca_file.as_deref())?,
        })
    }
}

/// Delivers batches to a webhook.
#[derive(Debug)]
pub struct WebhookSink {
    config: WebhookConfig,
    client: HttpClient,
}

impl WebhookSink {
    /// A sink with its own connection pool.
    pub fn new(config: WebhookConfig) -> Self {
        let client = HttpClient::new(config.timeout, &config.tls);
        Self { config, client }
    }
}

#[async_trait]
impl Sink for WebhookSink {
    async fn deliver(&self, batch: &Batch) -> Result<(), DeliveryError> {
        if batch.records.is_empty() {
            return Ok(());
        }
        let body = batch.ndjson();
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
        let signature = sign_webhook(self.config.secret.as_bytes(), timestamp, &body);
        let value = |text: String| {
            HeaderValue::from_str(&text)
                .map_err(|_| DeliveryError::rejected(format!("header value {text:?}")))
        };
        let mut headers = vec![
            (
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-ndjson"),
            ),
            (
                HeaderName::from_static(TIMESTAMP_HEADER),
                value(timestamp.to_string())?,
            ),
            (HeaderName::from_static(SIGNATURE_HEADER), value(signature)?),
            (
                HeaderName::from_static(BATCH_HEADER),
                value(batch.range_key())?,
            ),
            (
                HeaderName::from_static(EVENTS_HEADER),
                value(batch.records.len().to_string())?,
            ),
        ];
        headers.extend(self.config.headers.iter().cloned());
        let answer = self
            .client
            .post(&self.config.url, &headers, Bytes::from(body))
            .await?;
        answer.check_content("webhook", batch)
    }
}
