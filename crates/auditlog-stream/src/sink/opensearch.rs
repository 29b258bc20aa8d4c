//! `opensearch`: OpenSearch's (and Elasticsearch's) bulk API, one document per event with the
//! event id as its `_id`, so a retried or re-read batch overwrites instead of duplicating.
//!
//! ```text
//!  first batch ──POST _index_template/NAME──▶ template for PREFIX-* (mappings below)
//!  Batch ──POST _bulk: {"index":{"_index":"PREFIX-YYYY.MM","_id":ID}}\n{event}\n ...──▶ items
//!                          every item 2xx ─▶ Ok;  any 429/5xx/no-index item ─▶ transient;
//!                          some 4xx, others 2xx ─▶ permanent (those dead-lettered);
//!                          every item 4xx ─▶ invalid (narrowed down, or retried)
//! ```
//!
//! The index is monthly, by the event's own time (UTC), so an index holds one month and can
//! be dropped or snapshotted whole. A bulk answer of 200 can still carry failed items: each
//! item is checked, and a batch with any item to try again is delivered again whole (the ids
//! make that harmless) and its failures named in the error, never dropped. An item refused
//! for good (a 4xx such as `mapper_parsing_exception`) beside items that were indexed goes
//! to the sink's dead-letter topic instead of blocking the partition.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use bytes::Bytes;
use hyper::Uri;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::StreamError;
use crate::sink::http::{HttpClient, TlsSettings, parse_url};
use crate::sink::settings::{kind_settings, secret};
use crate::sink::{Batch, DeliveryError, FailureClass, Rejection, Sink};

/// The default index prefix: indices are `audit-events-YYYY.MM`.
pub const DEFAULT_INDEX_PREFIX: &str = "audit-events";

/// The TOML keys of an `opensearch` sink.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenSearchFile {
    url: String,
    index_prefix: Option<String>,
    username: Option<String>,
    password: Option<String>,
    password_env: Option<String>,
    timeout_secs: Option<u64>,
    ca_file: Option<std::path::PathBuf>,
    index_settings: Option<toml::Table>,
}

/// An `opensearch` sink's checked settings.
#[derive(Clone)]
pub struct OpenSearchConfig {
    /// The cluster's base URL.
    pub url: Uri,
    /// Indices are `PREFIX-YYYY.MM`; the template is named `PREFIX`.
    pub index_prefix: String,
    authorization: Option<HeaderValue>,
    /// How long one request may take.
    pub timeout: Duration,
    /// Index settings of the template, by their full names (`index.number_of_shards`);
    /// they override [`default_index_settings`].
    pub index_settings: Map<String, Value>,
    tls: TlsSettings,
}

impl std::fmt::Debug for OpenSearchConfig {
    // The credentials never reach a log line.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("OpenSearchConfig")
            .field("url", &self.url)
            .field("index_prefix", &self.index_prefix)
            .field("authenticated", &self.authorization.is_some())
            .field("timeout", &self.timeout)
            .field("index_settings", &self.index_settings)
            .finish_non_exhaustive()
    }
}

impl OpenSearchConfig {
    pub(crate) fn from_settings(sink: &str, settings: toml::Value) -> Result<Self, StreamError> {
        let file: OpenSearchFile = kind_settings(sink, "opensearch", settings)?;
        let url = parse_url(sink, "url", file.url.trim_end_matches('/'))?;
        let index_prefix = file
            .index_prefix
            .unwrap_or_else(|| DEFAULT_INDEX_PREFIX.to_owned());
        // OpenSearch's own rules for index names, as far as a prefix can break them.
        let valid = !index_prefix.is_empty()
            && index_prefix.len() <= 200
            && !index_prefix.starts_with(['-', '_', '+'])
            && index_prefix.chars().all(|character| {
                character.is_ascii_lowercase()
                    || character.is_ascii_digit()
                    || "-_.".contains(character)
            });
        if !valid {
            return Err(StreamError::config(
                sink,
                format!(
                    "index_prefix {index_prefix:?}: lower-case letters, digits, '-', '_' and '.', not starting with '-' or '_'"
                ),
            ));
        }
        let password = secret(sink, "password", file.password, file.password_env)?;
        let authorization = match (file.username, password) {
            (None, None) => None,
            (Some(username), Some(password)) => {
                let token = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{password}"));
                let mut value = HeaderValue::from_str(&format!("Basic {token}")).map_err(|_| {
                    StreamError::config(sink, "username or password is not valid in a header")
                })?;
                value.set_sensitive(true);
                Some(value)
            }
            _ => {
                return Err(StreamError::config(
                    sink,
                    "give username and password (or password_env) together",
                ));
            }
        };
        let mut index_settings = Map::new();
        if let Some(table) = file.index_settings {
            flatten_settings(sink, "", table, &mut index_settings)?;
        }
        Ok(Self {
            url,
            index_prefix,
            authorization,
            timeout: Duration::from_secs(file.timeout_secs.unwrap_or(30).max(1)),
            index_settings,
            tls: TlsSettings::new(sink, file.ca_file.as_deref())?,
        })
    }

    /// The index an event of `time` goes to: `PREFIX-YYYY.MM`.
    pub fn index_for(&self, time: time::OffsetDateTime) -> String {
        let time = time.to_offset(time::UtcOffset::UTC);
        format!(
            "{}-{:04}.{:02}",
            self.index_prefix,
            time.year(),
            u8::from(time.month())
        )
    }

    /// The index template the sink installs for `PREFIX-*`: [`index_mappings`], and as
    /// settings `defaults` (see [`default_index_settings`]) overridden by the sink's own
    /// `index_settings`.
    pub fn template(&self, defaults: &Map<String, Value>) -> Value {
        let mut settings = defaults.clone();
        settings.extend(self.index_settings.clone());
        let mut template = json!({ "mappings": index_mappings() });
        if !settings.is_empty() {
            template["settings"] = Value::Object(settings);
        }
        json!({
            "index_patterns": [format!("{}-*", self.index_prefix)],
            "priority": 100,
            "template": template,
            "_meta": { "managed_by": "auditlog stream" }
        })
    }
}

/// The sink's `index_settings` table as OpenSearch's flat setting names: nested tables
/// join with dots, and a name without the `index.` prefix gets it (OpenSearch takes both,
/// and one spelling lets a sink's setting replace a default of the same name).
fn flatten_settings(
    sink: &str,
    prefix: &str,
    table: toml::Table,
    out: &mut Map<String, Value>,
) -> Result<(), StreamError> {
    for (key, value) in table {
        let name = match prefix {
            "" if key.starts_with("index.") => key,
            "" => format!("index.{key}"),
            _ => format!("{prefix}.{key}"),
        };
        let value = match value {
            toml::Value::Table(table) => {
                flatten_settings(sink, &name, table, out)?;
                continue;
            }
            toml::Value::String(text) => Value::String(text),
            toml::Value::Integer(number) => Value::from(number),
            toml::Value::Float(number) => Value::from(number),
            toml::Value::Boolean(flag) => Value::Bool(flag),
            toml::Value::Datetime(_) | toml::Value::Array(_) => {
                return Err(StreamError::config(
                    sink,
                    format!(
                        "index_settings: {name}: give a string, number or boolean (a list may be written as a comma-separated string)"
                    ),
                ));
            }
        };
        out.insert(name, value);
    }
    Ok(())
}

/// The setting that gives each segment a Bloom filter over its document ids. The sink sets
/// it only on OpenSearch 2.13 or later (a cautious cut: it may have come with 2.12), since a
/// cluster refuses settings it does not know.
pub const ID_BLOOM_FILTER: &str = "index.optimize_doc_id_lookup.fuzzy_set.enabled";

/// Settings the template carries unless the sink's `index_settings` say otherwise, for the
/// cluster whose `GET /` answered `root`. Every event is indexed under its own id, so before
/// adding a document the node looks its id up in every segment to find a version to
/// replace; nearly always there is none. On OpenSearch 2.13 or later the Bloom filter
/// answers "not here" for most segments without reading their terms: on this project's
/// bench documents the node's CPU per document fell from 93 to 80 µs, and the id lookup
/// from 21 % of the node's profile to 7 %. Elasticsearch and older OpenSearch get nothing.
pub fn default_index_settings(root: &Value) -> Map<String, Value> {
    let mut settings = Map::new();
    let version = &root["version"];
    let release = version["number"]
        .as_str()
        .unwrap_or("")
        .split(['.', '-'])
        .map(|part| part.parse::<u32>().unwrap_or(0))
        .take(2)
        .collect::<Vec<_>>();
    if version["distribution"] == "opensearch" && release.as_slice() >= [2, 13].as_slice() {
        settings.insert(ID_BLOOM_FILTER.to_owned(), Value::Bool(true));
    }
    settings
}

/// The mappings of the sink's indices: the fields of [`SEARCHABLE`] indexed with their
/// types, and nothing else. Every other field is kept in `_source` (returned whole with
/// each hit) but not indexed: `dynamic: false`, so a value of a new shape never has a
/// document refused for a mapping conflict, and the free-form maps (`diff`,
/// `additional_fields`) are not even parsed.
pub fn index_mappings() -> Value {
    let opaque = json!({ "type": "object", "enabled": false });
    let mut properties = json!({
        "diff": opaque,
        "additional_fields": opaque,
        "unmapped": { "properties": { "diff": opaque, "additional_fields": opaque } }
    });
    for (path, field) in SEARCHABLE {
        insert_field(&mut properties, path, field.mapping());
    }
    json!({ "dynamic": false, "properties": properties })
}

/// How a searchable field is indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// Exact values (terms, aggregations); values over 1,024 characters stay unindexed.
    Keyword,
    /// Analysed full text: the sentences.
    Text,
    /// A time: OCSF's epoch milliseconds or Coder's RFC 3339.
    Date,
    /// A number: ids of OCSF's enumerations, and the HTTP status.
    Integer,
    /// An address, searchable by CIDR range; Coder's `""` for an unknown one is skipped.
    Ip,
}

impl FieldType {
    fn mapping(self) -> Value {
        match self {
            FieldType::Keyword => json!({ "type": "keyword", "ignore_above": 1024 }),
            FieldType::Text => json!({ "type": "text" }),
            FieldType::Date => json!({ "type": "date" }),
            FieldType::Integer => json!({ "type": "integer" }),
            FieldType::Ip => json!({ "type": "ip", "ignore_malformed": true }),
        }
    }
}

/// The fields the index template makes searchable, for both formats (their names do not
/// clash, and the two they share, `time` and `status_code`, take both formats' values).
/// Each field indexed costs the cluster CPU at every document: in stream bench runs back to
/// back, with every string indexed as a keyword (about 45 fields per OCSF event) the local
/// node spent 180 µs of CPU per document, with these 109 µs. Fields that only repeat an id in words
/// (`class_name`, `severity`, `status`), constants (`metadata.product`, `metadata.version`)
/// and Coder's zero-valued user fields are left to `_source`. `docs/streaming.md` lists
/// them for operators.
pub const SEARCHABLE: &[(&str, FieldType)] = &[
    // Both formats.
    ("time", FieldType::Date),
    ("status_code", FieldType::Integer),
    // `coder`.
    ("id", FieldType::Keyword),
    ("request_id", FieldType::Keyword),
    ("ip", FieldType::Ip),
    ("user_agent", FieldType::Keyword),
    ("resource_type", FieldType::Keyword),
    ("resource_id", FieldType::Keyword),
    ("resource_target", FieldType::Keyword),
    ("action", FieldType::Keyword),
    ("description", FieldType::Text),
    ("organization_id", FieldType::Keyword),
    ("organization.name", FieldType::Keyword),
    ("user.id", FieldType::Keyword),
    ("user.username", FieldType::Keyword),
    ("user.email", FieldType::Keyword),
    // `ocsf` (`user.name` and `user.uid` are also Authentication's and Account Change's).
    ("class_uid", FieldType::Integer),
    ("category_uid", FieldType::Integer),
    ("activity_id", FieldType::Integer),
    ("type_uid", FieldType::Integer),
    ("severity_id", FieldType::Integer),
    ("status_id", FieldType::Integer),
    ("message", FieldType::Text),
    ("metadata.uid", FieldType::Keyword),
    ("metadata.correlation_uid", FieldType::Keyword),
    ("metadata.tenant_uid", FieldType::Keyword),
    ("actor.user.uid", FieldType::Keyword),
    ("actor.user.name", FieldType::Keyword),
    ("actor.user.email_addr", FieldType::Keyword),
    ("src_endpoint.ip", FieldType::Ip),
    ("http_request.user_agent", FieldType::Keyword),
    ("api.operation", FieldType::Keyword),
    ("resources.uid", FieldType::Keyword),
    ("resources.name", FieldType::Keyword),
    ("resources.type", FieldType::Keyword),
    ("user.uid", FieldType::Keyword),
    ("user.name", FieldType::Keyword),
    ("unmapped.resource_type", FieldType::Keyword),
    ("unmapped.action", FieldType::Keyword),
    ("unmapped.build_reason", FieldType::Keyword),
];

/// Puts `mapping` at the dotted `path` of a mapping's `properties`, making the objects on
/// the way.
fn insert_field(properties: &mut Value, path: &str, mapping: Value) {
    let (parent, leaf) = match path.rsplit_once('.') {
        Some((parent, leaf)) => (Some(parent), leaf),
        None => (None, path),
    };
    let mut node = properties;
    for name in parent.into_iter().flat_map(|parent| parent.split('.')) {
        node = &mut node[name]["properties"];
    }
    node[leaf] = mapping;
}

/// Indexes batches in OpenSearch.
#[derive(Debug)]
pub struct OpenSearchSink {
    config: OpenSearchConfig,
    client: HttpClient,
    template_installed: AtomicBool,
}

impl OpenSearchSink {
    /// A sink with its own connection pool.
    pub fn new(config: OpenSearchConfig) -> Self {
        let client = HttpClient::new(config.timeout, &config.tls);
        Self {
            config,
            client,
            template_installed: AtomicBool::new(false),
        }
    }

    fn uri(&self, path: &str) -> Result<Uri, DeliveryError> {
        let base = self.config.url.to_string();
        format!("{}/{path}", base.trim_end_matches('/'))
            .parse()
            .map_err(|error| DeliveryError::rejected(format!("{path}: {error}")))
    }

    fn headers(&self, content_type: &'static str) -> Vec<(HeaderName, HeaderValue)> {
        let mut headers = vec![(CONTENT_TYPE, HeaderValue::from_static(content_type))];
        if let Some(value) = &self.config.authorization {
            headers.push((AUTHORIZATION, value.clone()));
        }
        headers
    }

    async fn install_template(&self) -> Result<(), DeliveryError> {
        if self.template_installed.load(Ordering::Acquire) {
            return Ok(());
        }
        let defaults = self.cluster_defaults().await?;
        let path = format!("_index_template/{}", self.config.index_prefix);
        let answer = self
            .client
            .post(
                &self.uri(&path)?,
                &self.headers("application/json"),
                Bytes::from(self.config.template(&defaults).to_string()),
            )
            .await?;
        answer.check(&format!("opensearch {path}"))?;
        self.template_installed.store(true, Ordering::Release);
        tracing::info!(template = %self.config.index_prefix, "opensearch index template installed");
        Ok(())
    }

    /// [`default_index_settings`] for the cluster. A cluster that will not say what it is
    /// (a user allowed to index but not to read `GET /`) gets none rather than no stream.
    async fn cluster_defaults(&self) -> Result<Map<String, Value>, DeliveryError> {
        let answer = self
            .client
            .get(&self.uri("")?, &self.headers("application/json"))
            .await?;
        match answer.check("opensearch GET /") {
            Ok(()) => Ok(default_index_settings(
                &serde_json::from_slice(&answer.body).unwrap_or(Value::Null),
            )),
            Err(error) if error.class == FailureClass::Transient => Err(error),
            Err(error) => {
                tracing::warn!(%error, "the cluster's version is unknown: the index template gets only the sink's own index_settings");
                Ok(Map::new())
            }
        }
    }
}

/// The bulk body: an `index` action with the event id, then the event, per record.
pub(crate) fn bulk_body(config: &OpenSearchConfig, batch: &Batch) -> Vec<u8> {
    let mut body = Vec::with_capacity(
        batch
            .records
            .iter()
            .map(|record| record.json.len() + 96)
            .sum(),
    );
    // Consecutive events mostly share a month: its index name is made once per change.
    let mut index: Option<((i32, u8), String)> = None;
    for record in &batch.records {
        let time = record.time.to_offset(time::UtcOffset::UTC);
        let month = (time.year(), u8::from(time.month()));
        let name = match &mut index {
            Some((cached, name)) if *cached == month => name,
            slot => &mut slot.insert((month, config.index_for(time))).1,
        };
        // Index names are checked to need no escaping; ids are UUIDs.
        body.extend_from_slice(b"{\"index\":{\"_index\":\"");
        body.extend_from_slice(name.as_bytes());
        body.extend_from_slice(b"\",\"_id\":\"");
        body.extend_from_slice(
            record
                .id
                .hyphenated()
                .encode_lower(&mut uuid::Uuid::encode_buffer())
                .as_bytes(),
        );
        body.extend_from_slice(b"\"}}\n");
        body.extend_from_slice(&record.json);
        body.push(b'\n');
    }
    body
}

/// The one field of a bulk answer read when every item was taken: `items` is skipped over,
/// not built into a tree (it is a few hundred bytes per event).
#[derive(Deserialize)]
struct BulkSummary {
    #[serde(default)]
    errors: bool,
}

/// Judges a bulk answer item by item: any item to try again (429, 5xx) sends the batch
/// again whole; items refused (other 4xx) while others of the batch were taken are about
/// those events, and [`DeliveryError::permanent`] names them for the dead-letter topic;
/// every item refused may say more about the index than the events (a wrong mapping):
/// [`FailureClass::Invalid`], which the engine narrows down by sending parts of the batch,
/// and retries and reports when no part is taken.
pub(crate) fn check_bulk_answer(batch: &Batch, body: &[u8]) -> Result<(), DeliveryError> {
    let summary: BulkSummary = serde_json::from_slice(body).map_err(|error| {
        DeliveryError::transient(format!("opensearch _bulk: unreadable answer: {error}"))
    })?;
    if !summary.errors {
        return Ok(());
    }
    let answer: Value = serde_json::from_slice(body).map_err(|error| {
        DeliveryError::transient(format!("opensearch _bulk: unreadable answer: {error}"))
    })?;
    if answer["errors"] != Value::Bool(true) {
        return Ok(());
    }
    let mut transient = false;
    let mut accepted = 0_usize;
    let mut failures = Vec::new();
    let mut refused = Vec::new();
    for item in answer["items"].as_array().into_iter().flatten() {
        let Some(result) = item.as_object().and_then(|object| object.values().next()) else {
            continue;
        };
        let status = result["status"].as_u64().unwrap_or(0);
        if (200..300).contains(&status) {
            accepted += 1;
            continue;
        }
        let kind = result["error"]["type"].as_str().unwrap_or("?");
        // A missing index says nothing about the event: it was deleted while the bulk ran
        // (the next request creates it again from the template) or creating indices is
        // switched off, a set-up fault that is retried and reported, never dead-lettered.
        transient |= status == 408
            || status == 429
            || !(400..500).contains(&status)
            || kind == "index_not_found_exception";
        let id = result["_id"].as_str().unwrap_or("?");
        let reason = result["error"]["reason"].as_str().unwrap_or("?");
        failures.push(format!("{id} {status} {kind}: {reason}"));
        let record = batch
            .records
            .iter()
            .find(|record| record.id.to_string() == id);
        match record {
            Some(record) => refused.push(Rejection {
                offset: record.offset,
                kind: kind.to_owned(),
                reason: format!("opensearch {status} {kind}: {reason}"),
            }),
            // An item that names no record of the batch: nothing certain to dead-letter.
            None => transient = true,
        }
    }
    let summary = failures
        .iter()
        .take(3)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if transient || failures.is_empty() {
        return Err(DeliveryError::transient(format!(
            "opensearch _bulk: {} item(s) failed, the batch is sent again: {summary}",
            failures.len()
        )));
    }
    if accepted == 0 {
        // Which of them the index refuses for what they hold, and which for a mapping
        // that refuses everything, only parts of the batch can tell.
        return Err(DeliveryError {
            class: FailureClass::Invalid,
            message: format!(
                "opensearch _bulk: every item ({}) refused: {summary}",
                failures.len()
            ),
            rejected: refused,
        });
    }
    Err(DeliveryError::permanent(
        format!(
            "opensearch _bulk: {} item(s) refused for good, {accepted} indexed: {summary}",
            refused.len()
        ),
        refused,
    ))
}

#[async_trait]
impl Sink for OpenSearchSink {
    async fn deliver(&self, batch: &Batch) -> Result<(), DeliveryError> {
        self.install_template().await?;
        if batch.records.is_empty() {
            return Ok(());
        }
        let answer = self
            .client
            .post(
                &self.uri("_bulk")?,
                &self.headers("application/x-ndjson"),
                Bytes::from(bulk_body(&self.config, batch)),
            )
            .await?;
        answer.check("opensearch _bulk")?;
        check_bulk_answer(batch, &answer.body)
    }
}

#[cfg(test)]
#[path = "opensearch_tests.rs"]
mod tests;
