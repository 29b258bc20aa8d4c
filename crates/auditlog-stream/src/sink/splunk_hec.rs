//! `splunk_hec`: Splunk's HTTP Event Collector, batched, with indexer acknowledgement when
//! the token has it enabled.
//!
//! ```text
//!  POST {url}/services/collector/event      Authorization: Splunk <token>
//!       {"time":..,"source":..,"sourcetype":..,"event":{..}} {"time":..,"event":{..}} ...
//!   ◀── 200 {"text":"Success","code":0}                      without ack: confirmed
//!   ◀── 200 {"text":"Success","code":0,"ackId":7}            with ack (X-Splunk-Request-Channel)
//!  POST {url}/services/collector/ack        {"acks":[7]}   polled until {"acks":{"7":true}}
//! ```
//!
//! Without acknowledgement a 200 means the events "appear valid", as Splunk documents; with
//! it the batch counts as delivered only once Splunk says it is indexed, and one that is not
//! acknowledged within `ack_timeout_secs` is sent again (its events carry their ids, so a
//! search can deduplicate on `id` or `metadata.uid`). A 400 that names the data (codes 6,
//! 12, 13) or a 413 is narrowed down by the engine to the events refused on their own,
//! which go to the dead-letter topic; other refusals are retried and reported.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use hyper::Uri;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::StreamError;
use crate::sink::http::{Answer, HttpClient, TlsSettings, parse_url};
use crate::sink::settings::{kind_settings, secret};
use crate::sink::{Batch, DeliveryError, Sink};

/// The path events are sent to.
pub const EVENT_PATH: &str = "/services/collector/event";
/// The path acknowledgements are polled at.
pub const ACK_PATH: &str = "/services/collector/ack";
/// The header naming the acknowledgement channel.
pub const CHANNEL_HEADER: &str = "x-splunk-request-channel";

/// The TOML keys of a Splunk HEC sink.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SplunkHecFile {
    url: String,
    token: Option<String>,
    token_env: Option<String>,
    #[serde(default)]
    ack: bool,
    ack_timeout_secs: Option<u64>,
    ack_poll_ms: Option<u64>,
    index: Option<String>,
    source: Option<String>,
    sourcetype: Option<String>,
    host: Option<String>,
    timeout_secs: Option<u64>,
    ca_file: Option<std::path::PathBuf>,
}

/// A Splunk HEC sink's checked settings.
#[derive(Clone)]
pub struct SplunkHecConfig {
    /// `{url}/services/collector/event`.
    pub event_url: Uri,
    /// `{url}/services/collector/ack`.
    pub ack_url: Uri,
    token: String,
    /// Whether to use indexer acknowledgement.
    pub ack: bool,
    /// How long to wait for a batch's acknowledgement before sending it again.
    pub ack_timeout: Duration,
    /// How often to ask.
    pub ack_poll: Duration,
    /// The metadata sent with each event (`index`, `source`, `sourcetype`, `host`).
    pub metadata: serde_json::Map<String, Value>,
    /// How long one request may take.
    pub timeout: Duration,
    /// How servers are verified (`https://` URLs).
    pub tls: TlsSettings,
}

impl fmt::Debug for SplunkHecConfig {
    // The token never reaches a log line.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("SplunkHecConfig")
            .field("event_url", &self.event_url)
            .field("ack", &self.ack)
            .field("ack_timeout", &self.ack_timeout)
            .field("metadata", &self.metadata)
            .finish_non_exhaustive()
    }
}

impl SplunkHecConfig {
    pub(crate) fn from_settings(sink: &str, settings: toml::Value) -> Result<Self, StreamError> {
        let file: SplunkHecFile = kind_settings(sink, "splunk_hec", settings)?;
        let base = file.url.trim_end_matches('/');
        let base = base.strip_suffix(EVENT_PATH).unwrap_or(base);
        let event_url = parse_url(sink, "url", &format!("{base}{EVENT_PATH}"))?;
        let ack_url = parse_url(sink, "url", &format!("{base}{ACK_PATH}"))?;
        let Some(token) = secret(sink, "token", file.token, file.token_env)? else {
            return Err(StreamError::config(
                sink,
                "a splunk_hec sink needs `token` or `token_env` (the HEC token)",
            ));
        };
        let mut metadata = serde_json::Map::new();
        metadata.insert(
            "source".into(),
            file.source.unwrap_or_else(|| "auditlog".into()).into(),
        );
        if let Some(sourcetype) = file.sourcetype {
            metadata.insert("sourcetype".into(), sourcetype.into());
        }
        if let Some(index) = file.index {
            metadata.insert("index".into(), index.into());
        }
        if let Some(host) = file.host {
            metadata.insert("host".into(), host.into());
        }
        Ok(Self {
            event_url,
            ack_url,
            token,
            ack: file.ack,
            ack_timeout: Duration::from_secs(file.ack_timeout_secs.unwrap_or(60).max(1)),
            ack_poll: Duration::from_millis(file.ack_poll_ms.unwrap_or(250).max(10)),
            metadata,
            timeout: Duration::from_secs(file.timeout_secs.unwrap_or(30).max(1)),
            tls: TlsSettings::new(sink, file.ca_file.as_deref())?,
        })
    }
}

/// Delivers batches to a Splunk HTTP Event Collector.
#[derive(Debug)]
pub struct SplunkHecSink {
    config: SplunkHecConfig,
    client: HttpClient,
    /// This process's acknowledgement channel: ack ids are per channel.
    channel: Uuid,
}

impl SplunkHecSink {
    /// A sink with its own connection pool and acknowledgement channel.
    pub fn new(config: SplunkHecConfig) -> Self {
        let client = HttpClient::new(config.timeout, &config.tls);
        Self {
            config,
            client,
            channel: Uuid::new_v4(),
        }
    }

    /// The request body: one HEC event object per record, newline-separated.
    fn body(&self, batch: &Batch) -> Vec<u8> {
        let mut metadata = self.config.metadata.clone();
        metadata
            .entry("sourcetype")
            .or_insert_with(|| format!("auditlog:{}", batch.format.as_str()).into());
        let mut body = Vec::new();
        for record in &batch.records {
            let nanos = record.time.unix_timestamp_nanos();
            let seconds = nanos.div_euclid(1_000_000_000);
            let micros = nanos.rem_euclid(1_000_000_000) / 1_000;
            body.extend_from_slice(format!("{{\"time\":{seconds}.{micros:06}").as_bytes());
            for (key, value) in &metadata {
                body.push(b',');
                // Keys and strings from configuration: serde writes them escaped.
                let _ = serde_json::to_writer(&mut body, key);
                body.push(b':');
                let _ = serde_json::to_writer(&mut body, value);
            }
            body.extend_from_slice(b",\"event\":");
            body.extend_from_slice(&record.json);
            body.extend_from_slice(b"}\n");
        }
        body
    }

    fn headers(&self) -> Result<Vec<(HeaderName, HeaderValue)>, DeliveryError> {
        let authorization = HeaderValue::from_str(&format!("Splunk {}", self.config.token))
            .map_err(|_| DeliveryError::rejected("the token is not a valid header value"))?;
        let mut headers = vec![
            (AUTHORIZATION, authorization),
            (CONTENT_TYPE, HeaderValue::from_static("application/json")),
        ];
        if self.config.ack {
            headers.push((
                HeaderName::from_static(CHANNEL_HEADER),
                HeaderValue::from_str(&self.channel.to_string())
                    .map_err(|_| DeliveryError::rejected("channel header"))?,
            ));
        }
        Ok(headers)
    }

    /// Polls until `ack_id` is acknowledged, or the acknowledgement timeout passes.
    async fn wait_for_ack(
        &self,
        ack_id: u64,
        headers: &[(HeaderName, HeaderValue)],
    ) -> Result<(), DeliveryError> {
        let deadline = tokio::time::Instant::now() + self.config.ack_timeout;
        let body = Bytes::from(format!("{{\"acks\":[{ack_id}]}}"));
        loop {
            tokio::time::sleep(self.config.ack_poll).await;
            let answer = self
                .client
                .post(&self.config.ack_url, headers, body.clone())
                .await?;
            answer.check("splunk_hec ack")?;
            let value: Value = serde_json::from_slice(&answer.body).map_err(|error| {
                DeliveryError::transient(format!(
                    "splunk_hec ack: the answer is not JSON ({error}): {}",
                    answer.body_excerpt()
                ))
            })?;
            if value["acks"][ack_id.to_string()] == Value::Bool(true) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(DeliveryError::transient(format!(
                    "splunk_hec: ackId {ack_id} was not acknowledged within {:?}; the batch is sent again",
                    self.config.ack_timeout
                )));
            }
        }
    }
}

/// HEC's answer to events: a 400 with code 6 (invalid data format), 12 (event field is
/// required) or 13 (event field cannot be blank), or a 413, is about what the request holds
/// ([`crate::FailureClass::Invalid`]); any other 400 code (a missing channel, an index the
/// token may not write) is about the settings, retried and reported like any refusal.
fn check_event_answer(answer: &Answer, batch: &Batch) -> Result<(), DeliveryError> {
    let code = serde_json::from_slice::<Value>(&answer.body)
        .ok()
        .and_then(|value| value["code"].as_u64());
    match (answer.status, code) {
        (400, Some(code @ (6 | 12 | 13))) => Err(DeliveryError::invalid(
            batch,
            &format!("hec_code_{code}"),
            format!("splunk_hec: HTTP 400: {}", answer.body_excerpt()),
        )),
        (413, _) => answer.check_content("splunk_hec", batch),
        _ => answer.check("splunk_hec"),
    }
}

#[async_trait]
impl Sink for SplunkHecSink {
    async fn deliver(&self, batch: &Batch) -> Result<(), DeliveryError> {
        if batch.records.is_empty() {
            return Ok(());
        }
        let headers = self.headers()?;
        let answer = self
            .client
            .post(
                &self.config.event_url,
                &headers,
                Bytes::from(self.body(batch)),
            )
            .await?;
        check_event_answer(&answer, batch)?;
        if !self.config.ack {
            return Ok(());
        }
        let value: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        let Some(ack_id) = value["ackId"].as_u64() else {
            return Err(DeliveryError::rejected(format!(
                "splunk_hec: ack is configured, but the answer has no ackId (is indexer acknowledgement enabled on the token?): {}",
                answer.body_excerpt()
            )));
        };
        self.wait_for_ack(ack_id, &headers).await
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::format::Format;
    use crate::sink::Record;

    #[test]
    fn events_carry_time_metadata_and_the_formatted_event() {
        let settings: toml::Value =
            toml::from_str("url = \"http://127.0.0.1:8088/\"\ntoken = \"t\"\nindex = \"audit\"\n")
                .unwrap();
        let config = SplunkHecConfig::from_settings("s", settings).unwrap();
        assert_eq!(
            config.event_url.to_string(),
            "http://127.0.0.1:8088/services/collector/event"
        );
        let sink = SplunkHecSink::new(config);
        let batch = Batch {
            topic: "t".into(),
            partition: 0,
            first_offset: 0,
            last_offset: 1,
            records: vec![Record {
                offset: 1,
                id: Uuid::from_u128(1),
                time: datetime!(2026-01-01 00:00:00.000042 UTC),
                json: br#"{"id":"x"}"#.to_vec(),
            }],
            filtered: 1,
            malformed: 0,
            format: Format::Ocsf,
        };
        let body = String::from_utf8(sink.body(&batch)).unwrap();
        let value: Value = serde_json::from_str(body.trim_end()).unwrap();
        assert_eq!(value["time"].as_f64().unwrap(), 1_767_225_600.000042);
        assert_eq!(value["index"], "audit");
        assert_eq!(value["source"], "auditlog");
        assert_eq!(value["sourcetype"], "auditlog:ocsf");
        assert_eq!(value["event"]["id"], "x");
    }
    #[test]
    fn only_refusals_of_the_data_are_narrowed_down_to_events() {
        let batch = Batch {
            topic: "t".into(),
            partition: 0,
            first_offset: 4,
            last_offset: 5,
            records: vec![Record {
                offset: 5,
                id: Uuid::from_u128(5),
                time: datetime!(2026-01-01 00:00:00 UTC),
                json: b"{}".to_vec(),
            }],
            filtered: 1,
            malformed: 0,
            format: Format::Coder,
        };
        let answer = |status: u16, body: &str| Answer {
            status,
            body: Bytes::from(body.to_owned()),
        };
        let invalid = check_event_answer(
            &answer(400, r#"{"text":"Invalid data format","code":6}"#),
            &batch,
        )
        .unwrap_err();
        assert_eq!(invalid.class, crate::FailureClass::Invalid);
        assert_eq!(invalid.rejected.len(), 1);
        assert_eq!(invalid.rejected[0].offset, 5);
        assert_eq!(invalid.rejected[0].kind, "hec_code_6");
        assert!(invalid.rejected[0].reason.contains("Invalid data format"));
        let too_big = check_event_answer(&answer(413, ""), &batch).unwrap_err();
        assert_eq!(too_big.class, crate::FailureClass::Invalid);
        // A missing channel or a forbidden index is about the settings, not the events.
        for body in [
            r#"{"text":"Data channel is missing","code":10}"#,
            r#"{"text":"Incorrect index","code":7}"#,
        ] {
            let error = check_event_answer(&answer(400, body), &batch).unwrap_err();
            assert_eq!(error.class, crate::FailureClass::Rejected, "{body}");
        }
        let busy = check_event_answer(&answer(503, r#"{"code":9}"#), &batch).unwrap_err();
        assert_eq!(busy.class, crate::FailureClass::Transient);
        assert!(check_event_answer(&answer(200, r#"{"code":0}"#), &batch).is_ok());
    }
}
