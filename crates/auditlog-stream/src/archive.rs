//! Checking an S3 archive offline: `auditlog verify --archive s3://BUCKET/PREFIX`.
//!
//! ```text
//!  list PREFIX/ ─▶ each manifests/TOPIC/P/HEAD.json ─▶ walk `previous` links to manifest 0
//!                      │ each link: the manifest's SHA-256      │ each object: present, SHA-256,
//!                      ▼                                        ▼ lines = events, offsets counted
//!                 ArchiveReport { chains, problems, unmanifested }
//! ```
//!
//! Every problem names what is wrong: a missing or altered object, a line removed or added, a
//! manifest taken out or altered, offsets not accounted for, an object in no manifest inside
//! a manifested range. Objects written after a chain's newest manifest are listed apart (a
//! running sink's next manifest will list them), not counted as problems.
//!
//! Backfill runs (`PREFIX/backfill/RUN/`, written by `auditlog stream backfill`) are no part
//! of any chain: each is checked against its own `manifest.json` (objects present, SHA-256,
//! line counts, totals, no object of the folder unlisted); a run without one is unmanifested.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::StreamError;
use crate::backfill::archive as backfill;
use auditlog_integrity::{Envelope, TrustedKeys};

use crate::manifest::{ArchiveLayout, Manifest, ManifestCheckpoint, ManifestLink};
use crate::sink::DeliveryError;
use crate::sink::gzip::gunzip;
use crate::sink::s3::S3Config;
use crate::sink::s3_client::S3Client;

/// One partition's chain, as checked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// Manifests read.
    pub manifests: u64,
    /// Objects checked.
    pub objects: u64,
    /// The first offset the chain covers.
    pub first_offset: i64,
    /// The last offset the chain covers.
    pub last_offset: i64,
    /// Events in its objects.
    pub events: u64,
    /// Offsets the filter left out.
    pub filtered: u64,
    /// Offsets that were not valid events.
    pub malformed: u64,
    /// Manifests that carry a signed checkpoint.
    pub checkpoints: u64,
    /// The furthest offset of the partition a carried checkpoint signs.
    pub signed_through: Option<i64>,
}

/// What `verify --archive` found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ArchiveReport {
    /// One per partition chain.
    pub chains: Vec<ChainReport>,
    /// Objects after a chain's newest manifest (its next manifest will list them).
    pub unmanifested: Vec<String>,
    /// Everything that does not hold, each naming its object or manifest.
    pub problems: Vec<String>,
    /// Whether the carried checkpoints' signatures were checked (trusted keys were given).
    pub signatures_checked: bool,
    /// Backfill runs (`PREFIX/backfill/RUN/`) checked against their own manifests.
    pub backfill_runs: Vec<BackfillRunReport>,
}

/// One backfill run (`auditlog stream backfill` into an `s3` sink), as checked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BackfillRunReport {
    /// Its folder.
    pub folder: String,
    /// What it re-sent, as its command line said.
    pub range: String,
    /// Objects checked.
    pub objects: u64,
    /// Events in them.
    pub events: u64,
    /// Events the sink's filter left out.
    pub filtered: u64,
}

impl ArchiveReport {
    /// Whether the archive is complete and unaltered.
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks the archive at `url` (`s3://BUCKET[/PREFIX]`) through `endpoint` (AWS when absent),
/// with the credentials the `s3` sink would use (`AUDITLOG_S3_*` or `AWS_*` variables).
/// With `trusted` keys, every checkpoint a manifest carries must be signed by one of them.
pub async fn verify_archive(
    url: &str,
    endpoint: Option<&str>,
    trusted: Option<&TrustedKeys>,
) -> Result<ArchiveReport, StreamError> {
    let mut settings = toml::Table::new();
    settings.insert("url".into(), url.into());
    if let Some(endpoint) = endpoint {
        settings.insert("endpoint".into(), endpoint.into());
    }
    let config = S3Config::from_settings("verify --archive", toml::Value::Table(settings))?;
    let client = config.client();
    Checker {
        client: &client,
        layout: &config.layout,
        trusted,
        report: ArchiveReport {
            signatures_checked: trusted.is_some(),
            ..ArchiveReport::default()
        },
    }
    .run()
    .await
    .map_err(|error| StreamError::Archive(error.message))
}

struct Checker<'a> {
    client: &'a S3Client,
    layout: &'a ArchiveLayout,
    trusted: Option<&'a TrustedKeys>,
    report: ArchiveReport,
}

impl Checker<'_> {
    async fn run(mut self) -> Result<ArchiveReport, DeliveryError> {
        let keys = self.client.list(self.layout.prefix(), None).await?;
        // Objects by (topic, partition), and every manifest key present.
        let mut objects: BTreeMap<(String, i32), BTreeMap<String, (i64, i64)>> = BTreeMap::new();
        let mut manifests_present = BTreeSet::new();
        let mut heads = Vec::new();
        let mut backfills: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for key in &keys {
            if let Some(run) = backfill::run_of_key(self.layout, key) {
                backfills
                    .entry(run.to_owned())
                    .or_default()
                    .insert(key.to_string());
            } else if let Some(name) = self.layout.parse_object_key(key) {
                objects
                    .entry((name.topic, name.partition))
                    .or_default()
                    .insert(key.to_string(), (name.first_offset, name.last_offset));
            } else if key.ends_with("/HEAD.json") {
                heads.push(key.to_string());
            } else if key.ends_with(".json") {
                manifests_present.insert(key.to_string());
            }
        }
        let mut listed = BTreeSet::new();
        let mut chained: BTreeMap<(String, i32), i64> = BTreeMap::new();
        for head_key in heads {
            if let Some(chain) = self.chain(&head_key, &mut listed).await? {
                chained.insert((chain.topic.clone(), chain.partition), chain.last_offset);
                self.report.chains.push(chain);
            }
        }
        for manifest in manifests_present.difference(&listed) {
            self.report.problems.push(format!(
                "manifest {manifest} is not reachable from its chain's HEAD.json"
            ));
        }
        for ((topic, partition), found) in objects {
            let manifested = chained.get(&(topic.clone(), partition)).copied();
            for (key, (first, _)) in found {
                if listed.contains(&key) {
                    continue;
                }
                if manifested.is_some_and(|last| first <= last) {
                    self.report.problems.push(format!(
                        "object {key} lies inside the manifested offsets of {topic}/{partition} but no manifest lists it"
                    ));
                } else {
                    self.report.unmanifested.push(key);
                }
            }
        }
        for (folder, keys) in backfills {
            self.backfill_run(&folder, &keys).await?;
        }
        Ok(self.report)
    }

    /// A backfill run: its manifest, and each object against it. A run without a manifest
    /// is still being written (or was interrupted; a rerun of its range replaces it): its
    /// objects are listed as unmanifested.
    async fn backfill_run(
        &mut self,
        folder: &str,
        keys: &BTreeSet<String>,
    ) -> Result<(), DeliveryError> {
        let manifest_key = format!("{folder}{}", backfill::MANIFEST_NAME);
        if !keys.contains(&manifest_key) {
            self.report.unmanifested.extend(keys.iter().cloned());
            return Ok(());
        }
        let Some(answer) = self.client.get(&manifest_key).await? else {
            self.report.problems.push(format!(
                "backfill manifest {manifest_key} vanished while checking"
            ));
            return Ok(());
        };
        let manifest: backfill::BackfillManifest = match serde_json::from_slice(&answer.body) {
            Ok(manifest) => manifest,
            Err(error) => {
                self.report.problems.push(format!(
                    "backfill manifest {manifest_key} is unreadable: {error}"
                ));
                return Ok(());
            }
        };
        let mut run = BackfillRunReport {
            folder: folder.to_owned(),
            range: manifest.range.clone(),
            ..BackfillRunReport::default()
        };
        let mut listed = BTreeSet::new();
        for object in &manifest.objects {
            listed.insert(object.key.clone());
            run.objects += 1;
            run.events += object.events;
            run.filtered += object.filtered;
            if !self
                .object_lines(&object.key, &object.sha256, object.events)
                .await?
            {
                self.report.problems.push(format!(
                    "object {} of backfill run {folder} ({} events) is missing",
                    object.key, object.events
                ));
            }
        }
        let sum = |count: fn(&backfill::BackfillObject) -> u64| -> u64 {
            manifest.objects.iter().map(count).sum()
        };
        let totals = (
            sum(|object| object.events),
            sum(|object| object.filtered),
            sum(|object| object.malformed),
        );
        if totals != (manifest.events, manifest.filtered, manifest.malformed) {
            self.report.problems.push(format!(
                "backfill manifest {manifest_key}: its totals are not the sums of its objects"
            ));
        }
        for key in keys {
            if *key != manifest_key && !listed.contains(key) {
                self.report.problems.push(format!(
                    "object {key} lies in backfill run {folder} but its manifest does not list it"
                ));
            }
        }
        self.report.backfill_runs.push(run);
        Ok(())
    }

    /// Walks one chain from its head; `None` when the head itself is unreadable.
    async fn chain(
        &mut self,
        head_key: &str,
        listed: &mut BTreeSet<String>,
    ) -> Result<Option<ChainReport>, DeliveryError> {
        let Some(answer) = self.client.get(head_key).await? else {
            return Ok(None);
        };
        let head: ManifestLink = match serde_json::from_slice(&answer.body) {
            Ok(head) => head,
            Err(error) => {
                self.report
                    .problems
                    .push(format!("{head_key} is not a manifest link: {error}"));
                return Ok(None);
            }
        };
        let folder = head_key.trim_end_matches("HEAD.json");
        let mut manifests: Vec<Manifest> = Vec::new();
        let mut next: Option<ManifestLink> = Some(head);
        while let Some(link) = next.take() {
            listed.insert(link.key.clone());
            let body = match self.client.get(&link.key).await? {
                Some(answer) => answer.body,
                None => {
                    self.report.problems.push(format!(
                        "manifest {} (sequence {}) is missing",
                        link.key, link.sequence
                    ));
                    // Go on from the one before it, whose link is lost with it.
                    if link.sequence > 0 {
                        let key = format!("{folder}{:010}.json", link.sequence - 1);
                        if let Some(answer) = self.client.get(&key).await? {
                            next = Some(ManifestLink {
                                sequence: link.sequence - 1,
                                sha256: hex::encode(Sha256::digest(&answer.body)),
                                key,
                                last_offset: -1,
                                created_at: link.created_at,
                            });
                        }
                    }
                    continue;
                }
            };
            if hex::encode(Sha256::digest(&body)) != link.sha256 {
                self.report.problems.push(format!(
                    "manifest {} is altered: its SHA-256 is not the one its successor records",
                    link.key
                ));
            }
            let manifest: Manifest = match serde_json::from_slice(&body) {
                Ok(manifest) => manifest,
                Err(error) => {
                    self.report
                        .problems
                        .push(format!("manifest {} is unreadable: {error}", link.key));
                    break;
                }
            };
            if manifest.sequence != link.sequence {
                self.report.problems.push(format!(
                    "manifest {} says sequence {}, its link {}",
                    link.key, manifest.sequence, link.sequence
                ));
            }
            next = manifest.previous.clone();
            manifests.push(manifest);
        }
        manifests.reverse();
        let Some(first) = manifests.first() else {
            return Ok(None);
        };
        let mut chain = ChainReport {
            topic: first.topic.clone(),
            partition: first.partition,
            first_offset: first.first_offset,
            last_offset: first.first_offset - 1,
            ..ChainReport::default()
        };
        if first.sequence != 0 {
            self.report.problems.push(format!(
                "the chain of {}/{} starts at manifest {}, not 0",
                chain.topic, chain.partition, first.sequence
            ));
        }
        for manifest in &manifests {
            chain.manifests += 1;
            if let Some(checkpoint) = &manifest.checkpoint {
                chain.checkpoints += 1;
                self.checkpoint(manifest, checkpoint);
                chain.signed_through = chain.signed_through.max(Some(checkpoint.signed_through));
            }
            if manifest.first_offset != chain.last_offset + 1 {
                self.report.problems.push(format!(
                    "manifest {} of {}/{} starts at offset {}, expected {}: offsets {}..{} are not accounted for",
                    manifest.sequence,
                    chain.topic,
                    chain.partition,
                    manifest.first_offset,
                    chain.last_offset + 1,
                    chain.last_offset + 1,
                    manifest.first_offset - 1
                ));
            }
            let mut expected = manifest.first_offset;
            for object in &manifest.objects {
                listed.insert(object.key.clone());
                chain.objects += 1;
                chain.events += object.events;
                chain.filtered += object.filtered;
                chain.malformed += object.malformed;
                if object.first_offset != expected {
                    self.report.problems.push(format!(
                        "object {} starts at offset {}, expected {}",
                        object.key, object.first_offset, expected
                    ));
                }
                if !object.is_complete() {
                    self.report.problems.push(format!(
                        "object {}: events, filtered and malformed do not add up to its {} offsets",
                        object.key,
                        object.last_offset - object.first_offset + 1
                    ));
                }
                expected = object.last_offset + 1;
                self.object(object).await?;
            }
            if manifest.last_offset != expected - 1 {
                self.report.problems.push(format!(
                    "manifest {} of {}/{} ends at {}, its objects at {}",
                    manifest.sequence,
                    chain.topic,
                    chain.partition,
                    manifest.last_offset,
                    expected - 1
                ));
            }
            chain.last_offset = manifest.last_offset;
        }
        Ok(Some(chain))
    }

    /// The checkpoint a manifest carries: readable, naming the partition as far as the
    /// manifest says, and signed by a trusted key (when keys were given).
    fn checkpoint(&mut self, manifest: &Manifest, checkpoint: &ManifestCheckpoint) {
        let name = format!(
            "the checkpoint of manifest {} of {}/{}",
            manifest.sequence, manifest.topic, manifest.partition
        );
        let envelope = Envelope {
            body: checkpoint.body.clone(),
            signature: checkpoint.signature.clone(),
        };
        let signed = match envelope.open() {
            Ok(signed) => signed,
            Err(error) => {
                self.report
                    .problems
                    .push(format!("{name} is unreadable: {error}"));
                return;
            }
        };
        let head = signed
            .checkpoint
            .heads
            .iter()
            .find(|head| head.topic == manifest.topic && head.partition == manifest.partition);
        if head.map(|head| head.last_offset) != Some(checkpoint.signed_through) {
            self.report.problems.push(format!(
                "{name} does not sign offset {} of the partition, as the manifest says",
                checkpoint.signed_through
            ));
        }
        if let Some(trusted) = self.trusted
            && let Err(error) = trusted.verify(&signed)
        {
            self.report
                .problems
                .push(format!("{name} does not verify: {error}"));
        }
    }

    async fn object(
        &mut self,
        object: &crate::manifest::ManifestObject,
    ) -> Result<(), DeliveryError> {
        if !self
            .object_lines(&object.key, &object.sha256, object.events)
            .await?
        {
            self.report.problems.push(format!(
                "object {} (offsets {}-{}, {} events) is missing",
                object.key, object.first_offset, object.last_offset, object.events
            ));
        }
        Ok(())
    }

    /// Checks an object a manifest lists: its SHA-256 and its line count. `false` when it
    /// is missing (the caller names what it held).
    async fn object_lines(
        &mut self,
        key: &str,
        sha256: &str,
        events: u64,
    ) -> Result<bool, DeliveryError> {
        let Some(answer) = self.client.get(key).await? else {
            return Ok(false);
        };
        if hex::encode(Sha256::digest(&answer.body)) != sha256 {
            self.report.problems.push(format!(
                "object {key} is altered: its SHA-256 is not the manifest's"
            ));
        }
        match gunzip(&answer.body) {
            Ok(text) => {
                let lines = text.iter().filter(|byte| **byte == b'\n').count() as u64;
                if lines != events {
                    self.report.problems.push(format!(
                        "object {key} holds {lines} lines, its manifest says {events} events: lines were {}",
                        if lines < events { "removed" } else { "added" }
                    ));
                }
            }
            Err(error) => self
                .report
                .problems
                .push(format!("object {key} is not readable gzip: {error}")),
        }
        Ok(true)
    }
}
