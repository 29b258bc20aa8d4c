//! `[stream]` and `[[stream.sinks]]`: the TOML shape, and the checked configuration a run is
//! given.
//!
//! ```text
//!  [[stream.sinks]] ──serde──▶ SinkFile (common keys + the kind's own keys, untyped)
//!                                  │ SinkConfig::from_file: kind, format, filter, settings
//!                                  ▼
//!                               SinkConfig { name, destination, format, filter, batch }
//! ```
//!
//! The common keys are typed here; the destination's keys are checked by the kind's own
//! struct (`deny_unknown_fields`), so a typo in either is an error naming the sink.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use auditlog_query::{Error as QueryError, ResolvedFilter, Resolver};
use serde::Deserialize;

use crate::StreamError;
use crate::format::Format;
use crate::sink::opensearch::OpenSearchConfig;
use crate::sink::s3::S3Config;
use crate::sink::splunk_hec::SplunkHecConfig;
use crate::sink::webhook::WebhookConfig;

/// The default address of `auditlog stream`'s `/metrics`, `/healthz` and `/readyz`.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9465";

/// Consumer groups are this prefix and the sink's name.
pub const GROUP_PREFIX: &str = "auditlog-stream-";

/// `[stream]` in the TOML file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamFile {
    /// Address of the operational endpoints.
    pub metrics_listen: Option<SocketAddr>,
    /// The sinks, each `[[stream.sinks]]`.
    #[serde(default)]
    pub sinks: Vec<SinkFile>,
}

/// One `[[stream.sinks]]` entry as written: the common keys, and the rest for its kind.
#[derive(Debug, Clone, Deserialize)]
pub struct SinkFile {
    /// Unique among the sinks; names the consumer group (`auditlog-stream-<name>`).
    pub name: String,
    /// `webhook`, `splunk_hec`, `s3` or `opensearch`.
    pub kind: String,
    /// `coder` (the default) or `ocsf`.
    pub format: Option<String>,
    /// Coder's filter language; absent or blank streams every event.
    pub filter: Option<String>,
    /// Events per delivered batch at most [default: the kind's,
    /// [`Destination::batch_defaults`]].
    pub batch_events: Option<usize>,
    /// Formatted bytes per batch at most [default: the kind's].
    pub batch_bytes: Option<usize>,
    /// A batch is delivered at the latest this long after its first message [default: the
    /// kind's].
    pub batch_max_age_ms: Option<u64>,
    /// Where events the destination refuses for good go (default:
    /// `<topic>-stream-<name>-dlq`).
    pub dead_letter_topic: Option<String>,
    /// The destination's settings, checked by the kind.
    #[serde(flatten)]
    pub settings: BTreeMap<String, toml::Value>,
}

/// When a partition's batch is sealed and delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Events (after the filter) per batch at most.
    pub max_events: usize,
    /// Formatted bytes per batch at most (one event over it is a batch of its own).
    pub max_bytes: usize,
    /// Delivered at the latest this long after the batch's first message.
    pub max_age: Duration,
}

impl Default for BatchLimits {
    /// 500 events, 4 MiB, one second: under Splunk's default 1 MB-per-event and Datadog's
    /// 5 MB-per-request limits, and a SIEM sees an event within about a second.
    fn default() -> Self {
        Self {
            max_events: 500,
            max_bytes: 4 * 1024 * 1024,
            max_age: Duration::from_secs(1),
        }
    }
}

/// Where a sink delivers, with the kind's settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Destination {
    /// HTTP(S) POST of signed NDJSON batches.
    Webhook(WebhookConfig),
    /// Splunk's HTTP Event Collector.
    SplunkHec(SplunkHecConfig),
    /// An archive in an S3-compatible object store, with manifests.
    S3(S3Config),
    /// OpenSearch's (or Elasticsearch's) bulk API.
    OpenSearch(OpenSearchConfig),
}

impl Destination {
    /// The kind's name, as `kind =` spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            Destination::Webhook(_) => "webhook",
            Destination::SplunkHec(_) => "splunk_hec",
            Destination::S3(_) => "s3",
            Destination::OpenSearch(_) => "opensearch",
        }
    }

    /// The batch limits a sink of this kind takes unless its settings say otherwise:
    /// - `s3`: 10,000 events, 32 MiB, 60 s. Each batch is an object, and an archive of
    ///   one-second objects is one object per partition per second at any traffic (86,400 a
    ///   day each, most of them a few events, each a PUT to pay for and a key to list); the
    ///   stream bench's 50,000 events/s needs objects of thousands of events.
    /// - `opensearch`: 2,000 events, 8 MiB, one second: OpenSearch indexes a few MB per
    ///   `_bulk` request best, and the stream bench measures its rate at 2,000.
    /// - `webhook` and `splunk_hec`: [`BatchLimits::default`].
    pub fn batch_defaults(&self) -> BatchLimits {
        match self {
            Destination::S3(_) => BatchLimits {
                max_events: 10_000,
                max_bytes: 32 * 1024 * 1024,
                max_age: Duration::from_secs(60),
            },
            Destination::OpenSearch(_) => BatchLimits {
                max_events: 2_000,
                max_bytes: 8 * 1024 * 1024,
                max_age: Duration::from_secs(1),
            },
            Destination::Webhook(_) | Destination::SplunkHec(_) => BatchLimits::default(),
        }
    }

    /// Whether the destination can refuse single events, so that the sink needs a
    /// dead-letter topic: every kind but `s3`, since an object store takes any bytes.
    pub fn refuses_events(&self) -> bool {
        !matches!(self, Destination::S3(_))
    }
}

/// One sink, checked.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    /// Its unique name.
    pub name: String,
    /// Where it delivers.
    pub destination: Destination,
    /// How events are written.
    pub format: Format,
    /// The filter as written (empty: every event).
    pub filter_text: String,
    /// The filter, resolved; the default matches every event.
    pub filter: ResolvedFilter,
    /// When batches are sealed.
    pub batch: BatchLimits,
    /// The dead-letter topic as configured; `None`: the default for the topic read (see
    /// [`SinkConfig::dead_letter_topic`]).
    pub dead_letter_topic: Option<String>,
}

impl SinkConfig {
    /// Checks one entry: kind, format, filter (Coder's grammar and errors), settings.
    pub fn from_file(file: &SinkFile) -> Result<Self, StreamError> {
        let name = file.name.trim();
        check_name(name)?;
        let format = match file.format.as_deref() {
            None => Format::Coder,
            Some(text) => text
                .parse()
                .map_err(|message| StreamError::config(name, format!("format: {message}")))?,
        };
        let settings = toml::Value::Table(file.settings.clone().into_iter().collect());
        let destination = match file.kind.as_str() {
            "webhook" => Destination::Webhook(WebhookConfig::from_settings(name, settings)?),
            "splunk_hec" => Destination::SplunkHec(SplunkHecConfig::from_settings(name, settings)?),
            "s3" => Destination::S3(S3Config::from_settings(name, settings)?),
            "opensearch" => {
                Destination::OpenSearch(OpenSearchConfig::from_settings(name, settings)?)
            }
            kind => {
                return Err(StreamError::config(
                    name,
                    format!(
                        "unknown kind {kind:?} (expected one of: webhook, splunk_hec, s3, opensearch)"
                    ),
                ));
            }
        };
        let filter_text = file.filter.clone().unwrap_or_default();
        let filter = resolve_filter(name, &filter_text)?;
        let defaults = destination.batch_defaults();
        let batch = BatchLimits {
            max_events: file.batch_events.unwrap_or(defaults.max_events),
            max_bytes: file.batch_bytes.unwrap_or(defaults.max_bytes),
            max_age: file
                .batch_max_age_ms
                .map_or(defaults.max_age, Duration::from_millis),
        };
        if batch.max_events == 0 || batch.max_bytes == 0 {
            return Err(StreamError::config(
                name,
                "batch_events and batch_bytes must be at least 1",
            ));
        }
        let dead_letter_topic = match file.dead_letter_topic.as_deref().map(str::trim) {
            None => None,
            Some(topic) if valid_topic(topic) => Some(topic.to_owned()),
            Some(topic) => {
                return Err(StreamError::config(
                    name,
                    format!(
                        "dead_letter_topic {topic:?}: a Kafka topic is 1 to 249 characters of A-Z, a-z, 0-9, '-', '_' and '.'"
                    ),
                ));
            }
        };
        Ok(Self {
            name: name.to_owned(),
            destination,
            format,
            filter_text,
            filter,
            batch,
            dead_letter_topic,
        })
    }

    /// The sink's consumer group.
    pub fn group(&self) -> String {
        format!("{GROUP_PREFIX}{}", self.name)
    }

    /// The sink's dead-letter topic when it reads `topic`: as configured, or
    /// `<topic>-stream-<name>-dlq`.
    pub fn dead_letter_topic(&self, topic: &str) -> String {
        self.dead_letter_topic
            .clone()
            .unwrap_or_else(|| default_dead_letter_topic(topic, &self.name))
    }
}

/// The dead-letter topic of sink `sink` reading `topic` when none is configured:
/// `<topic>-stream-<sink>-dlq` (`audit-events-stream-siem-dlq`).
pub fn default_dead_letter_topic(topic: &str, sink: &str) -> String {
    format!("{topic}-stream-{sink}-dlq")
}

/// Checks every entry and that names are unique; `only` keeps the named sinks (all when
/// empty), each of which must exist.
pub fn sinks_from_file(file: &StreamFile, only: &[String]) -> Result<Vec<SinkConfig>, StreamError> {
    let mut seen = HashSet::new();
    let mut sinks = Vec::new();
    for entry in &file.sinks {
        let sink = SinkConfig::from_file(entry)?;
        if !seen.insert(sink.name.clone()) {
            return Err(StreamError::config(
                &sink.name,
                "the name is used by two sinks; each sink needs its own (it names the consumer group)",
            ));
        }
        sinks.push(sink);
    }
    if sinks.is_empty() {
        return Err(StreamError::NoSinks(
            "no sink is configured: add [[stream.sinks]] entries to the configuration file"
                .to_owned(),
        ));
    }
    if let Some(unknown) = only.iter().find(|name| !seen.contains(*name)) {
        let mut known: Vec<&String> = seen.iter().collect();
        known.sort();
        return Err(StreamError::NoSinks(format!(
            "--sink {unknown:?} is not configured (configured: {known:?})"
        )));
    }
    if !only.is_empty() {
        sinks.retain(|sink| only.contains(&sink.name));
    }
    Ok(sinks)
}

fn valid_topic(topic: &str) -> bool {
    !topic.is_empty()
        && topic.len() <= 249
        && topic != "."
        && topic != ".."
        && topic
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || "-_.".contains(character))
}

fn check_name(name: &str) -> Result<(), StreamError> {
    let valid = !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || "-_.".contains(character));
    if valid {
        Ok(())
    } else {
        Err(StreamError::config(
            name,
            "a name is 1 to 100 characters of A-Z, a-z, 0-9, '-', '_' and '.' (it names the consumer group and the metrics' label)",
        ))
    }
}

/// Parses and resolves a filter exactly as the API does; there is no caller, so `me` is an
/// error, and organizations are named by id (no directory is consulted).
pub fn resolve_filter(sink: &str, text: &str) -> Result<ResolvedFilter, StreamError> {
    match Resolver::new().parse_and_resolve(text) {
        Ok(filter) => Ok(filter),
        Err(QueryError::InvalidQuery(invalid)) => Err(StreamError::Filter {
            sink: sink.to_owned(),
            filter: text.to_owned(),
            message: invalid
                .validations()
                .iter()
                .map(|validation| format!("{}: {}", validation.field, validation.detail))
                .collect::<Vec<_>>()
                .join("; "),
        }),
        Err(other) => Err(StreamError::Filter {
            sink: sink.to_owned(),
            filter: text.to_owned(),
            message: other.to_string(),
        }),
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
