//! `s3`: an archive in any S3-compatible object store, holding each event exactly once, with
//! a chain of manifests a verifier checks offline.
//!
//! ```text
//!  Batch p/first-last ──gzip NDJSON──▶ PUT YYYY/MM/DD/topic/p/first-last.ndjson.gz  (retry: same key)
//!        │ pending: key, SHA-256, range, events, filtered, malformed
//!        ▼ every manifest_interval_secs, and when the run ends
//!  PUT manifests/topic/p/N.json (objects since N-1, link to N-1) ──▶ PUT manifests/topic/p/HEAD.json
//! ```
//!
//! Why each event is there once: an object's key is its range, so a retried batch overwrites
//! itself. After a crash the batcher may cut the same offsets into other ranges, so the first
//! batch a process sees for a partition first reads the partition's chain head and the
//! objects written since: those before the batch (delivered and committed) are kept for the
//! next manifest, those from the batch on (written, never committed) are deleted, and will be
//! written again. Every offset of the range lands in one object, including batches whose
//! events the filter all left out (an empty object records what was skipped), so the chain
//! accounts for every offset.
//!
//! A manifest lists only objects whose batch was committed before it was written (the
//! pending objects of earlier batches), so a crash never leaves a manifest promising offsets
//! that are delivered again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use hyper::Uri;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::sync::Mutex;

use crate::StreamError;
use crate::manifest::{ArchiveLayout, MANIFEST_VERSION, Manifest, ManifestLink, ManifestObject};
use crate::sink::checkpoints::CheckpointReader;
use crate::sink::gzip::gzip;
use crate::sink::http::{TlsSettings, parse_url};
use crate::sink::s3_client::S3Client;
use crate::sink::settings::{kind_settings, secret};
use crate::sink::sigv4::Credentials;
use crate::sink::{Batch, DeliveryError, Sink};

/// The default time between two manifests of a partition.
pub const DEFAULT_MANIFEST_INTERVAL: Duration = Duration::from_secs(60);
/// The default deflate level of the objects (`gzip_level`): level 1 takes deflate's fast
/// path, about half of level 3's CPU, for objects about a half larger (docs/streaming.md has
/// the figures).
pub const DEFAULT_GZIP_LEVEL: u8 = 1;

/// The TOML keys of an `s3` sink.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct S3File {
    url: String,
    endpoint: Option<String>,
    region: Option<String>,
    path_style: Option<bool>,
    access_key: Option<String>,
    access_key_env: Option<String>,
    secret_key: Option<String>,
    secret_key_env: Option<String>,
    manifest_interval_secs: Option<u64>,
    gzip_level: Option<u8>,
    timeout_secs: Option<u64>,
    ca_file: Option<std::path::PathBuf>,
}

/// An `s3` sink's checked settings.
#[derive(Clone)]
pub struct S3Config {
    /// The bucket.
    pub bucket: String,
    /// The archive's keys under the URL's prefix.
    pub layout: ArchiveLayout,
    /// The endpoint (`https://s3.REGION.amazonaws.com` unless configured).
    pub endpoint: Uri,
    /// Bucket in the path (`endpoint/bucket/key`) rather than in the host name.
    pub path_style: bool,
    credentials: Credentials,
    /// Time between two manifests of a partition.
    pub manifest_interval: Duration,
    /// How long one request may take.
    pub timeout: Duration,
    /// Deflate level of the objects, 1 (fastest) to 9 (smallest).
    pub gzip_level: u8,
    tls: TlsSettings,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("prefix", &self.layout.prefix())
            .field("endpoint", &self.endpoint)
            .field("path_style", &self.path_style)
            .field("credentials", &self.credentials)
            .field("manifest_interval", &self.manifest_interval)
            .field("gzip_level", &self.gzip_level)
            .finish_non_exhaustive()
    }
}

impl S3Config {
    /// A client for the configured bucket.
    pub(crate) fn client(&self) -> S3Client {
        S3Client::new(
            &self.endpoint,
            &self.bucket,
            self.path_style,
            self.credentials.clone(),
            self.timeout,
            &self.tls,
        )
    }
}

/// The first non-empty environment variable of `names`.
fn env_first(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
}

impl S3Config {
    pub(crate) fn from_settings(sink: &str, settings: toml::Value) -> Result<Self, StreamError> {
        let file: S3File = kind_settings(sink, "s3", settings)?;
        let Some((bucket, prefix)) = file
            .url
            .strip_prefix("s3://")
            .map(|rest| rest.split_once('/').unwrap_or((rest, "")))
            .filter(|(bucket, _)| !bucket.is_empty())
        else {
            return Err(StreamError::config(
                sink,
                format!(
                    "url {:?}: expected s3://BUCKET or s3://BUCKET/PREFIX",
                    file.url
                ),
            ));
        };
        // The project's order: AUDITLOG_* variables over the file; the standard AWS
        // variables when neither says.
        let region = env_first(&["AUDITLOG_S3_REGION"])
            .or(file.region)
            .or_else(|| env_first(&["AWS_REGION", "AWS_DEFAULT_REGION"]))
            .unwrap_or_else(|| "us-east-1".to_owned());
        let access_key = match env_first(&["AUDITLOG_S3_ACCESS_KEY"]) {
            Some(key) => Some(key),
            None => secret(sink, "access_key", file.access_key, file.access_key_env)?,
        }
        .or_else(|| env_first(&["AWS_ACCESS_KEY_ID"]));
        let secret_key = match env_first(&["AUDITLOG_S3_SECRET_KEY"]) {
            Some(key) => Some(key),
            None => secret(sink, "secret_key", file.secret_key, file.secret_key_env)?,
        }
        .or_else(|| env_first(&["AWS_SECRET_ACCESS_KEY"]));
        let (Some(access_key), Some(secret_key)) = (access_key, secret_key) else {
            return Err(StreamError::config(
                sink,
                "an s3 sink signs every request: give access_key and secret_key (or their _env \
                 forms), or set AUDITLOG_S3_ACCESS_KEY and AUDITLOG_S3_SECRET_KEY, or \
                 AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            ));
        };
        // A session token only belongs with the AWS key pair it was issued with.
        let session_token = (std::env::var("AWS_ACCESS_KEY_ID").ok().as_deref()
            == Some(access_key.as_str()))
        .then(|| env_first(&["AWS_SESSION_TOKEN"]))
        .flatten();
        let endpoint_text = file
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
        let endpoint = parse_url(sink, "endpoint", &endpoint_text)?;
        let gzip_level = file.gzip_level.unwrap_or(DEFAULT_GZIP_LEVEL);
        if !(1..=9).contains(&gzip_level) {
            return Err(StreamError::config(
                sink,
                format!("gzip_level {gzip_level}: expected 1 (fastest) to 9 (smallest)"),
            ));
        }
        Ok(Self {
            bucket: bucket.to_owned(),
            layout: ArchiveLayout::new(prefix),
            endpoint,
            // Self-hosted stores rarely have wildcard DNS for buckets; AWS prefers hosts.
            path_style: file.path_style.unwrap_or(file.endpoint.is_some()),
            credentials: Credentials {
                access_key,
                secret_key,
                session_token,
                region,
            },
            manifest_interval: file
                .manifest_interval_secs
                .map_or(DEFAULT_MANIFEST_INTERVAL, |secs| {
                    Duration::from_secs(secs.max(1))
                }),
            timeout: Duration::from_secs(file.timeout_secs.unwrap_or(60).max(1)),
            gzip_level,
            tls: TlsSettings::new(sink, file.ca_file.as_deref())?,
        })
    }
}

/// What the sink knows of one partition's archive.
#[derive(Debug)]
struct PartitionState {
    /// The newest manifest of the chain.
    head: Option<ManifestLink>,
    /// Objects written (and committed) since, in offset order.
    pending: Vec<ManifestObject>,
    /// The last offset archived (in a manifest or pending).
    floor: Option<i64>,
    last_manifest: Instant,
    /// The key of the batch being written, so that its retries use the same date folder.
    current: Option<(i64, i64, String)>,
}

/// One partition's state, `None` until its first batch recovers it from the bucket. Held
/// across the partition's requests; other partitions' batches go on meanwhile.
type PartitionSlot = Arc<Mutex<Option<PartitionState>>>;

/// Archives batches in an S3 bucket.
#[derive(Debug)]
pub struct S3Sink {
    config: S3Config,
    client: S3Client,
    partitions: std::sync::Mutex<HashMap<(String, i32), PartitionSlot>>,
    checkpoints: Option<CheckpointReader>,
}

impl S3Sink {
    /// A sink with its own connection pool.
    pub fn new(config: S3Config) -> Self {
        let client = config.client();
        Self {
            config,
            client,
            partitions: std::sync::Mutex::new(HashMap::new()),
            checkpoints: None,
        }
    }

    /// Manifests carry the signed checkpoints `reader` finds.
    pub(crate) fn with_checkpoints(mut self, reader: CheckpointReader) -> Self {
        self.checkpoints = Some(reader);
        self
    }

    async fn read_head(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Option<ManifestLink>, DeliveryError> {
        let key = self.config.layout.head_key(topic, partition);
        match self.client.get(&key).await? {
            None => Ok(None),
            Some(answer) => serde_json::from_slice(&answer.body)
                .map(Some)
                .map_err(|error| DeliveryError::rejected(format!("{key}: {error}"))),
        }
    }

    /// The partition's state from the bucket, for a process whose first batch of it starts
    /// at `first`: the objects since the chain's head that end before `first` are pending;
    /// those from `first` on were never committed and are deleted.
    async fn recover(
        &self,
        topic: &str,
        partition: i32,
        first: i64,
    ) -> Result<PartitionState, DeliveryError> {
        let layout = &self.config.layout;
        let head = self.read_head(topic, partition).await?;
        let manifested = head.as_ref().map(|link| link.last_offset);
        let mut found = Vec::new();
        for day in self.days_since(head.as_ref()).await? {
            // One partition's objects of one day: a listing no larger than that.
            let folder = format!("{day}{topic}/{partition}/");
            for key in self.client.list(&folder, None).await? {
                let Some(name) = layout.parse_object_key(&key) else {
                    continue;
                };
                if manifested.is_none_or(|last| name.first_offset > last) {
                    found.push((name, key));
                }
            }
        }
        found.sort_by_key(|(name, _)| (name.first_offset, name.last_offset));
        let mut pending = Vec::new();
        let mut floor = manifested;
        for (name, key) in found {
            let next = floor.map_or(name.first_offset, |last| last + 1);
            if name.last_offset < first && name.first_offset >= next {
                if name.first_offset > next {
                    tracing::warn!(key, expected_first = next, "archive gap before this object");
                }
                pending.push(
                    self.describe(&key, name.first_offset, name.last_offset)
                        .await?,
                );
                floor = Some(name.last_offset);
            } else {
                tracing::info!(
                    key,
                    "deleting an object written but never committed; its offsets are delivered again"
                );
                self.client.delete(&key).await?;
            }
        }
        Ok(PartitionState {
            head,
            pending,
            floor,
            last_manifest: Instant::now(),
            current: None,
        })
    }

    /// The day folders that can hold objects newer than `head`: its day to tomorrow (clocks
    /// differ), or, with no manifest yet, every day folder there is.
    async fn days_since(&self, head: Option<&ManifestLink>) -> Result<Vec<String>, DeliveryError> {
        let layout = &self.config.layout;
        if let Some(link) = head {
            let mut day = link.created_at.to_offset(time::UtcOffset::UTC);
            let until = OffsetDateTime::now_utc() + time::Duration::days(1);
            let mut days = Vec::new();
            while day.date() <= until.date() {
                days.push(layout.date_folder(day));
                day += time::Duration::days(1);
            }
            return Ok(days);
        }
        let digits = |folder: &str, parent: &str, len: usize| {
            folder
                .strip_prefix(parent)
                .and_then(|name| name.strip_suffix('/'))
                .is_some_and(|name| name.len() == len && name.bytes().all(|b| b.is_ascii_digit()))
        };
        let mut days = Vec::new();
        for year in self.client.list_folders(layout.prefix()).await? {
            if !digits(&year, layout.prefix(), 4) {
                continue;
            }
            for month in self.client.list_folders(&year).await? {
                if !digits(&month, &year, 2) {
                    continue;
                }
                for day in self.client.list_folders(&month).await? {
                    if digits(&day, &month, 2) {
                        days.push(day);
                    }
                }
            }
        }
        Ok(days)
    }

    /// A manifest entry for an object already in the bucket.
    async fn describe(
        &self,
        key: &str,
        first: i64,
        last: i64,
    ) -> Result<ManifestObject, DeliveryError> {
        let answer =
            self.client.get(key).await?.ok_or_else(|| {
                DeliveryError::transient(format!("{key} vanished while recovering"))
            })?;
        let count = |name: &str| answer.meta(name).and_then(|text| text.parse::<u64>().ok());
        let events = count("events").unwrap_or_else(|| {
            crate::sink::gzip::gunzip(&answer.body)
                .map(|text| text.iter().filter(|byte| **byte == b'\n').count() as u64)
                .unwrap_or(0)
        });
        let range = (last - first + 1) as u64;
        let malformed = count("malformed")
            .unwrap_or(0)
            .min(range.saturating_sub(events));
        Ok(ManifestObject {
            key: key.to_owned(),
            sha256: hex::encode(Sha256::digest(&answer.body)),
            bytes: answer.body.len() as u64,
            first_offset: first,
            last_offset: last,
            events,
            filtered: range.saturating_sub(events + malformed),
            malformed,
        })
    }

    /// Writes the partition's next manifest over its pending objects, then moves its head.
    async fn write_manifest(
        &self,
        topic: &str,
        partition: i32,
        state: &mut PartitionState,
    ) -> Result<(), DeliveryError> {
        let (Some(first), Some(last)) = (state.pending.first(), state.pending.last()) else {
            return Ok(());
        };
        let layout = &self.config.layout;
        // Another member may have owned the partition meanwhile and moved the chain on.
        let head_now = self.read_head(topic, partition).await?;
        if head_now != state.head {
            return Err(DeliveryError::transient(format!(
                "the manifest chain of {topic}/{partition} moved under this process; re-reading it"
            )));
        }
        let sequence = state.head.as_ref().map_or(0, |link| link.sequence + 1);
        let checkpoint = match &self.checkpoints {
            Some(reader) => reader.covering(topic, partition, last.last_offset).await,
            None => None,
        };
        let manifest = Manifest {
            version: MANIFEST_VERSION,
            topic: topic.to_owned(),
            partition,
            sequence,
            first_offset: first.first_offset,
            last_offset: last.last_offset,
            created_at: OffsetDateTime::now_utc(),
            previous: state.head.clone(),
            events: state.pending.iter().map(|object| object.events).sum(),
            filtered: state.pending.iter().map(|object| object.filtered).sum(),
            malformed: state.pending.iter().map(|object| object.malformed).sum(),
            objects: state.pending.clone(),
            checkpoint,
        };
        let mut body = serde_json::to_vec_pretty(&manifest)
            .map_err(|error| DeliveryError::rejected(format!("manifest: {error}")))?;
        body.push(b'\n');
        let key = layout.manifest_key(topic, partition, sequence);
        let link = ManifestLink {
            sequence,
            key: key.clone(),
            sha256: hex::encode(Sha256::digest(&body)),
            last_offset: manifest.last_offset,
            created_at: manifest.created_at,
        };
        self.client
            .put(&key, Bytes::from(body), "application/json", &[])
            .await?;
        let head_body = serde_json::to_vec(&link)
            .map_err(|error| DeliveryError::rejected(format!("manifest head: {error}")))?;
        self.client
            .put(
                &layout.head_key(topic, partition),
                Bytes::from(head_body),
                "application/json",
                &[],
            )
            .await?;
        tracing::info!(
            key,
            objects = state.pending.len(),
            last_offset = link.last_offset,
            "archive manifest written"
        );
        state.head = Some(link);
        state.pending.clear();
        state.last_manifest = Instant::now();
        Ok(())
    }

    /// Delivers under the lock; on a moved chain the partition is forgotten, so the retry
    /// starts from what the bucket holds.
    async fn archive(
        &self,
        batch: &Batch,
        state: &mut PartitionState,
    ) -> Result<(), DeliveryError> {
        // Offsets up to `floor` are archived already (a commit that failed before a crash
        // makes a process read them again): skip them.
        let floor = state.floor.unwrap_or(i64::MIN);
        if batch.last_offset <= floor {
            return Ok(());
        }
        let first = batch.first_offset.max(floor.saturating_add(1));
        let records: Vec<_> = batch
            .records
            .iter()
            .filter(|record| record.offset >= first)
            .collect();
        let range = (batch.last_offset - first + 1) as u64;
        let skipped = range - records.len() as u64;
        let malformed = batch.malformed.min(skipped);
        let filtered = skipped - malformed;

        if !state.pending.is_empty()
            && state.last_manifest.elapsed() >= self.config.manifest_interval
        {
            self.write_manifest(&batch.topic, batch.partition, state)
                .await?;
        }
        let key = match &state.current {
            Some((cached_first, cached_last, key))
                if (*cached_first, *cached_last) == (first, batch.last_offset) =>
            {
                key.clone()
            }
            _ => {
                let key = self.config.layout.object_key(
                    OffsetDateTime::now_utc(),
                    &batch.topic,
                    batch.partition,
                    first,
                    batch.last_offset,
                );
                state.current = Some((first, batch.last_offset, key.clone()));
                key
            }
        };
        let mut ndjson =
            Vec::with_capacity(records.iter().map(|record| record.json.len() + 1).sum());
        for record in &records {
            ndjson.extend_from_slice(&record.json);
            ndjson.push(b'\n');
        }
        let body = gzip(&ndjson, self.config.gzip_level);
        let entry = ManifestObject {
            key: key.clone(),
            sha256: hex::encode(Sha256::digest(&body)),
            bytes: body.len() as u64,
            first_offset: first,
            last_offset: batch.last_offset,
            events: records.len() as u64,
            filtered,
            malformed,
        };
        let meta = [
            ("events", entry.events.to_string()),
            ("filtered", entry.filtered.to_string()),
            ("malformed", entry.malformed.to_string()),
            ("format", batch.format.to_string()),
        ];
        self.client
            .put(&key, Bytes::from(body), "application/gzip", &meta)
            .await?;
        state.pending.push(entry);
        state.floor = Some(batch.last_offset);
        state.current = None;
        Ok(())
    }
}

#[async_trait]
impl Sink for S3Sink {
    async fn deliver(&self, batch: &Batch) -> Result<(), DeliveryError> {
        let slot = {
            let mut partitions = self.partitions.lock().unwrap_or_else(|e| e.into_inner());
            let key = (batch.topic.clone(), batch.partition);
            Arc::clone(partitions.entry(key).or_default())
        };
        let mut state = slot.lock().await;
        let known = state.as_ref().is_some_and(|state| {
            state
                .floor
                .is_none_or(|floor| batch.first_offset <= floor + 1)
        });
        if !known {
            *state = Some(
                self.recover(&batch.topic, batch.partition, batch.first_offset)
                    .await?,
            );
        }
        let partition = state.as_mut().expect("recovered above");
        let result = self.archive(batch, partition).await;
        if result.is_err() && partition.current.is_none() {
            // The manifest step failed (perhaps the chain moved): start over from the bucket.
            *state = None;
        }
        result
    }

    async fn finish(&self) -> Result<(), DeliveryError> {
        let slots: Vec<_> = self
            .partitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(key, slot)| (key.clone(), Arc::clone(slot)))
            .collect();
        // Each partition's chain is its own: their closing manifests are written together.
        let written = futures::future::join_all(slots.into_iter().map(
            |((topic, partition), slot)| async move {
                match slot.lock().await.as_mut() {
                    Some(state) => self.write_manifest(&topic, partition, state).await,
                    None => Ok(()),
                }
            },
        ))
        .await;
        written.into_iter().collect()
    }
}

#[cfg(test)]
#[path = "s3_tests.rs"]
mod tests;
