//! The whole run of `auditlog verify`: read every source, walk every partition's chain,
//! check every chain batch against its rows, sweep for rows no batch covers, and the proof
//! of one event for `--event`.

use std::collections::BTreeMap;

use auditlog_integrity::Envelope;
use auditlog_integrity::TrustedKeys;
use auditlog_integrity::verify::{
    self, NO_DIGEST_RECORDS_IT, PartitionChain, Problem, Report, SignedHead,
};
use auditlog_query::Visibility;
use auditlog_store::{ClickHouseConfig, DigestRow, split_stored_rows};
use uuid::Uuid;

use crate::checkpoints::{self, CheckpointSource, KafkaCheckpoints};
use crate::error::VerifyError;
use crate::evidence::Evidence;
use crate::proof::{CheckedProof, ProofOutcome};

/// Leaves read from ClickHouse in one request (60 bytes each are kept while it is checked).
const CHUNK_LEAVES: u32 = 2_000_000;

/// Chunks fetched ahead of the one being checked.
const PREFETCH_CHUNKS: usize = 2;

/// Uncovered events listed one by one; the rest are counted.
const MAX_LISTED_UNCOVERED: u64 = 1_000;

/// Rows past the newest digest read that are placed one by one.
const MAX_LATE_ROWS: u64 = 100_000;

/// What to verify, against what: the binary fills it from its flags and configuration.
#[derive(Debug, Clone)]
pub struct Options {
    /// The database and audit table.
    pub clickhouse: ClickHouseConfig,
    /// The audit event topic the digests are about.
    pub topic: String,
    /// The checkpoint topic, for [`CheckpointSource::Kafka`].
    pub kafka: KafkaCheckpoints,
    /// Where to read the checkpoints from; each one must be in every source.
    pub sources: Vec<CheckpointSource>,
    /// The public keys whose checkpoints count.
    pub trusted: TrustedKeys,
    /// Only batches with events in `[from, to)`, µs since the epoch.
    pub window: Option<(i64, i64)>,
    /// Only this partition.
    pub partition: Option<i32>,
    /// Rows older than this many days are expired, not deleted.
    pub retention_days: Option<u32>,
}

/// Verifies one deployment's evidence.
#[derive(Debug)]
pub struct Verifier {
    options: Options,
    evidence: Evidence,
}

impl Verifier {
    /// A verifier of `options`; nothing is read until asked.
    pub fn new(options: Options) -> Self {
        let evidence = Evidence::new(&options.clickhouse, &options.topic);
        Self { options, evidence }
    }

    /// Every checkpoint copy, by source name, in the order of [`Options::sources`];
    /// copies that are no envelope at all go into `report`.
    pub async fn read_checkpoints(
        &self,
        report: &mut Report,
    ) -> Result<Vec<(String, Vec<Envelope>)>, VerifyError> {
        let mut copies = Vec::new();
        for source in &self.options.sources {
            let envelopes =
                checkpoints::read(source, &self.evidence, &self.options.kafka, report).await?;
            copies.push((source.to_string(), envelopes));
        }
        Ok(copies)
    }

    /// Verifies everything `options` selects. `progress` is called after each chunk of
    /// batches is checked, with the report so far and the events of the chunk.
    pub async fn verify(
        &self,
        mut progress: impl FnMut(&Report, u64),
    ) -> Result<Report, VerifyError> {
        let options = &self.options;
        let evidence = &self.evidence;
        let mut report = Report::default();
        let copies = self.read_checkpoints(&mut report).await?;
        let expired_before = options.retention_days.map(|days| {
            auditlog_event::unix_micros_saturating(time::OffsetDateTime::now_utc())
                .saturating_sub(i64::from(days) * 86_400 * 1_000_000)
        });
        let heads =
            verify::check_checkpoints(&copies, &options.trusted, &options.topic, &mut report);

        let partitions: Vec<i32> = match options.partition {
            Some(partition) => vec![partition],
            None => {
                let mut partitions = evidence.partitions().await?;
                partitions.extend(heads.keys().copied());
                partitions.sort_unstable();
                partitions.dedup();
                partitions
            }
        };
        let mut spans = BTreeMap::new();
        // The newest digest read per partition: rows past it are checked at the end, against
        // the digests recorded meanwhile.
        let mut tails = BTreeMap::new();
        let mut chains = Vec::new();
        for partition in partitions {
            let partition_heads = heads.get(&partition).map_or(&[][..], Vec::as_slice);
            let Some(bounds) = self.bounds(partition, partition_heads).await? else {
                continue;
            };
            let digests = evidence.digests(partition, bounds).await?;
            let chain = PartitionChain::walk(
                partition,
                digests,
                partition_heads,
                bounds.map(|(first, _)| first),
                &mut report,
            );
            report.unsigned_batches += chain.unsigned_batches();
            if let Some(tail) = chain.tail() {
                tails.insert(partition, tail);
            }
            spans.insert(partition, chain.spans());
            chains.push(chain);
        }
        check_rows(
            evidence,
            &chains,
            expired_before,
            &mut report,
            &mut progress,
        )
        .await?;

        let (outside, bytes) = evidence
            .outside_rows(
                &spans,
                &tails,
                options.partition,
                options.window,
                MAX_LISTED_UNCOVERED,
            )
            .await?;
        let listed = split_stored_rows(&bytes)?;
        verify::uncovered(&listed, NO_DIGEST_RECORDS_IT, &mut report);
        if outside > listed.len() as u64 {
            report.problems.push(Problem::MoreUncoveredEvents {
                count: outside - listed.len() as u64,
            });
        }
        self.check_late_rows(&tails, &mut report).await?;
        report.require_signatures(heads.len());
        Ok(report)
    }

    /// The offsets of `partition` to read digests for: all (`Some(None)`), those of the
    /// window's batches (`Some(Some(..))`), or none when no batch lies in the window.
    async fn bounds(
        &self,
        partition: i32,
        heads: &[SignedHead],
    ) -> Result<Option<Option<(i64, i64)>>, VerifyError> {
        let Some((from, to)) = self.options.window else {
            return Ok(Some(None));
        };
        let Some((first, last)) = self.evidence.offset_window(partition, from, to).await? else {
            return Ok(None);
        };
        // Reach up to the first signed head at or after the window, so that the window's
        // batches are walked from a signature.
        let reach = heads
            .iter()
            .map(|head| head.last_offset)
            .filter(|offset| *offset >= last)
            .min()
            .unwrap_or(last);
        Ok(Some(Some((first, reach))))
    }

    /// Rows past the newest digest read: their position is checked here against the
    /// digests recorded since; their contents are the next run's to check.
    async fn check_late_rows(
        &self,
        tails: &BTreeMap<i32, i64>,
        report: &mut Report,
    ) -> Result<(), VerifyError> {
        let late = self
            .evidence
            .late_rows(
                tails,
                self.options.partition,
                self.options.window,
                MAX_LATE_ROWS,
            )
            .await?;
        let mut recorded_since: BTreeMap<i32, Vec<(i64, i64)>> = BTreeMap::new();
        for (_, partition, _) in &late {
            if !recorded_since.contains_key(partition) {
                let tail = tails.get(partition).copied().unwrap_or(i64::MAX);
                let ranges = self.evidence.ranges_after(*partition, tail).await?;
                recorded_since.insert(*partition, ranges);
            }
        }
        verify::late_rows(&late, &recorded_since, report);
        Ok(())
    }

    /// `verify --event`: the proof of event `id` with a checkpoint from any source, checked
    /// against the trusted keys.
    pub async fn prove(&self, id: Uuid) -> Result<CheckedProof, VerifyError> {
        let mut ignored = Report::default();
        let envelopes = self
            .read_checkpoints(&mut ignored)
            .await?
            .into_iter()
            .flat_map(|(_, list)| list)
            .collect();
        let proof = match self
            .evidence
            .proof(id, &Visibility::All, Some(envelopes))
            .await?
        {
            ProofOutcome::Proof(proof) => proof,
            ProofOutcome::NotFound => return Err(VerifyError::NoSuchEvent { id }),
            ProofOutcome::Unprovable(reason) => {
                return Err(VerifyError::Unprovable { id, reason });
            }
        };
        let verdict = proof.check(&self.options.trusted);
        Ok(CheckedProof { proof, verdict })
    }
}

/// Reads the chains' rows in windows of offsets and checks each batch against its rows.
///
/// A window spans every partition: the partitions' offsets interleave in the table's
/// granules, so reading them together reads each granule once. The next windows are
/// fetched while one is hashed, so ClickHouse and verify work at once. Rows at offsets
/// between two batches of a chain are outside its spans and found by the final sweep.
async fn check_rows(
    evidence: &Evidence,
    chains: &[PartitionChain],
    expired_before: Option<i64>,
    report: &mut Report,
    progress: &mut impl FnMut(&Report, u64),
) -> Result<(), VerifyError> {
    use futures::StreamExt as _;

    let mut fetched =
        futures::stream::iter(windows(chains).into_iter().map(|mut window| async move {
            window.sort_by_key(|batch| (batch.partition, batch.first_offset));
            let mut partitions: Vec<i32> = window.iter().map(|batch| batch.partition).collect();
            partitions.dedup();
            let first = window
                .iter()
                .map(|batch| batch.first_offset)
                .min()
                .unwrap_or(0);
            let last = window
                .iter()
                .map(|batch| batch.last_offset)
                .max()
                .unwrap_or(0);
            let rows = evidence.leaf_rows_of(&partitions, first, last).await;
            (window, rows)
        }))
        .buffered(PREFETCH_CHUNKS);
    while let Some((window, rows)) = fetched.next().await {
        let mut rows = rows?;
        rows.sort_unstable_by_key(|row| (row.partition, row.offset));
        for batch in &window {
            let key = |offset| (batch.partition, offset);
            let low =
                rows.partition_point(|row| (row.partition, row.offset) < key(batch.first_offset));
            let high =
                rows.partition_point(|row| (row.partition, row.offset) <= key(batch.last_offset));
            verify::check_batch(batch, &rows[low..high], expired_before, report);
        }
        progress(
            report,
            window.iter().map(|batch| u64::from(batch.num_events)).sum(),
        );
    }
    Ok(())
}

/// The chains' batches in windows of at most [`CHUNK_LEAVES`] leaves (a bigger batch is a
/// window of its own), by first offset across partitions.
fn windows(chains: &[PartitionChain]) -> Vec<Vec<&DigestRow>> {
    let mut batches: Vec<&DigestRow> = chains.iter().flat_map(PartitionChain::batches).collect();
    batches.sort_by_key(|batch| (batch.first_offset, batch.partition));
    let mut windows: Vec<Vec<&DigestRow>> = Vec::new();
    let mut leaves = 0;
    for batch in batches {
        match windows.last_mut() {
            Some(window) if leaves + batch.num_messages <= CHUNK_LEAVES => window.push(batch),
            _ => {
                leaves = 0;
                windows.push(vec![batch]);
            }
        }
        leaves += batch.num_messages;
    }
    windows
}
