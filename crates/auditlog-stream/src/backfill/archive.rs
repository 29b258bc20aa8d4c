//! Backfills into an `s3` sink's archive: a key space of their own, beside the live chain.
//!
//! ```text
//!  PREFIX/backfill/RUN/0000000000.ndjson.gz   one object per delivered batch, in order
//!  PREFIX/backfill/RUN/0000000001.ndjson.gz
//!  PREFIX/backfill/RUN/manifest.json          written last: every object, its SHA-256 and counts
//! ```
//!
//! `RUN` names the range (`time-20261201T000000Z-20261202T000000Z`, or
//! `offsets-TOPIC-P-A-B`), so a retried backfill of the same range replaces its own run: it
//! deletes what the folder holds first, then writes it again. Events read from ClickHouse have
//! no offsets of the live stream, and offsets re-read from Kafka are already in the live
//! chain, so a backfill never touches the chain's objects or manifests (the live sink's
//! recovery would delete objects it did not commit). `verify --archive` checks each run by its
//! manifest: objects present, unaltered, line counts, and every object of the folder listed.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::sync::Mutex;

use crate::manifest::ArchiveLayout;
use crate::sink::gzip::gzip;
use crate::sink::s3::S3Config;
use crate::sink::s3_client::S3Client;
use crate::sink::{Batch, DeliveryError};

/// The backfill manifest format this build writes.
pub(crate) const BACKFILL_MANIFEST_VERSION: u32 = 1;
/// The folder of backfill runs, under the archive's prefix.
pub(crate) const BACKFILL_FOLDER: &str = "backfill/";
/// A run's manifest, in its folder.
pub(crate) const MANIFEST_NAME: &str = "manifest.json";

/// One object of a backfill run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BackfillObject {
    pub(crate) key: String,
    pub(crate) sha256: String,
    pub(crate) bytes: u64,
    /// NDJSON lines: the events of the batch the filter selected.
    pub(crate) events: u64,
    /// Events (or messages) of the batch the filter left out.
    pub(crate) filtered: u64,
    /// Messages that were not valid events (offset ranges only).
    pub(crate) malformed: u64,
}

/// What a run holds; written after its last object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BackfillManifest {
    pub(crate) version: u32,
    /// The sink that wrote it.
    pub(crate) sink: String,
    /// What was re-sent, as the command line says it.
    pub(crate) range: String,
    /// `coder` or `ocsf`.
    pub(crate) format: String,
    /// The sink's filter as written.
    pub(crate) filter: String,
    #[serde(with = "time::serde::rfc3339")]
    pub(crate) created_at: OffsetDateTime,
    pub(crate) objects: Vec<BackfillObject>,
    pub(crate) events: u64,
    pub(crate) filtered: u64,
    pub(crate) malformed: u64,
}

/// `PREFIX/backfill/RUN/`.
pub(crate) fn run_folder(layout: &ArchiveLayout, run: &str) -> String {
    format!("{}{BACKFILL_FOLDER}{run}/", layout.prefix())
}

/// The run folder a key lies in (`PREFIX/backfill/RUN/`), if it lies in one.
pub(crate) fn run_of_key<'a>(layout: &ArchiveLayout, key: &'a str) -> Option<&'a str> {
    let rest = key.strip_prefix(layout.prefix())?;
    let run = rest.strip_prefix(BACKFILL_FOLDER)?;
    let end = run.find('/')?;
    Some(&key[..layout.prefix().len() + BACKFILL_FOLDER.len() + end + 1])
}

/// Writes one run.
#[derive(Debug)]
pub(crate) struct BackfillArchive {
    client: S3Client,
    folder: String,
    gzip_level: u8,
    manifest: Mutex<BackfillManifest>,
}

impl BackfillArchive {
    /// A writer of run `run` (a name of the range: letters, digits, `-`, `_`, `.`).
    pub(crate) fn new(
        config: &S3Config,
        sink: &str,
        run: &str,
        range: String,
        format: String,
        filter: String,
    ) -> Self {
        Self {
            client: config.client(),
            folder: run_folder(&config.layout, run),
            gzip_level: config.gzip_level,
            manifest: Mutex::new(BackfillManifest {
                version: BACKFILL_MANIFEST_VERSION,
                sink: sink.to_owned(),
                range,
                format,
                filter,
                created_at: OffsetDateTime::now_utc(),
                objects: Vec::new(),
                events: 0,
                filtered: 0,
                malformed: 0,
            }),
        }
    }

    /// The run's folder.
    pub(crate) fn folder(&self) -> &str {
        &self.folder
    }

    /// Empties the run's folder: what an earlier attempt of the same range left.
    pub(crate) async fn clear(&self) -> Result<u64, DeliveryError> {
        let keys = self.client.list(&self.folder, None).await?;
        for key in &keys {
            self.client.delete(key).await?;
        }
        Ok(keys.len() as u64)
    }

    /// Writes `batch` as the run's next object (a retry of the same batch rewrites it).
    pub(crate) async fn put(&self, batch: &Batch) -> Result<(), DeliveryError> {
        let mut manifest = self.manifest.lock().await;
        let key = format!("{}{:010}.ndjson.gz", self.folder, manifest.objects.len());
        let body = gzip(&batch.ndjson(), self.gzip_level);
        let object = BackfillObject {
            key: key.clone(),
            sha256: hex::encode(Sha256::digest(&body)),
            bytes: body.len() as u64,
            events: batch.records.len() as u64,
            filtered: batch.filtered,
            malformed: batch.malformed,
        };
        self.client
            .put(&key, Bytes::from(body), "application/gzip", &[])
            .await?;
        manifest.events += object.events;
        manifest.filtered += object.filtered;
        manifest.malformed += object.malformed;
        manifest.objects.push(object);
        Ok(())
    }

    /// Writes the manifest: the run is complete.
    pub(crate) async fn finish(&self) -> Result<(), DeliveryError> {
        let manifest = self.manifest.lock().await;
        let mut body = serde_json::to_vec_pretty(&*manifest)
            .map_err(|error| DeliveryError::rejected(format!("backfill manifest: {error}")))?;
        body.push(b'\n');
        let key = format!("{}{MANIFEST_NAME}", self.folder);
        self.client
            .put(&key, Bytes::from(body), "application/json", &[])
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_told_apart_from_the_live_archive() {
        let layout = ArchiveLayout::new("prod");
        let folder = run_folder(&layout, "time-20261201T000000Z-20261202T000000Z");
        assert_eq!(
            folder,
            "prod/backfill/time-20261201T000000Z-20261202T000000Z/"
        );
        let object = format!("{folder}0000000003.ndjson.gz");
        assert_eq!(run_of_key(&layout, &object), Some(folder.as_str()));
        assert_eq!(layout.parse_object_key(&object), None, "not a live object");
        assert_eq!(run_of_key(&layout, "prod/manifests/t/0/HEAD.json"), None);
        assert_eq!(run_of_key(&layout, "prod/backfill/loose"), None);
    }
}
