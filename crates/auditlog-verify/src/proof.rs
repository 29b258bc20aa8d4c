//! The proof of one stored event: its row, the leaves of its batch, the links from its
//! batch to the first checkpoint that covers it. The proof route serves it as it is;
//! `auditlog verify --event` checks it against the trusted keys too.

use auditlog_integrity::proof::{EventProof, ProofBatch, ProofParts, proof_batch};
use auditlog_integrity::verify::{self, Report, leaf_offsets, range_of};
use auditlog_integrity::{Envelope, Hash, IntegrityError, SignedCheckpoint};
use auditlog_query::Visibility;
use auditlog_store::{DigestRow, split_stored_rows};
use uuid::Uuid;

use crate::error::VerifyError;
use crate::evidence::Evidence;

/// What asking for an event's proof found.
#[derive(Debug)]
pub enum ProofOutcome {
    /// The proof.
    Proof(Box<EventProof>),
    /// No such event, or not one the caller may see.
    NotFound,
    /// The event exists but cannot be proven (written before digests, or tampered with).
    Unprovable(String),
}

/// A proof and what checking it against the trusted keys found.
#[derive(Debug)]
pub struct CheckedProof {
    /// The proof, as the proof route would serve it.
    pub proof: Box<EventProof>,
    /// The checkpoint that signs it, or the first step that does not hold.
    pub verdict: Result<SignedCheckpoint, IntegrityError>,
}

impl Evidence {
    /// The proof of event `id`, if `visibility` may see it, with a checkpoint from
    /// `checkpoints` (default: those stored in ClickHouse).
    pub async fn proof(
        &self,
        id: Uuid,
        visibility: &Visibility,
        checkpoints: Option<Vec<Envelope>>,
    ) -> Result<ProofOutcome, VerifyError> {
        let sql = format!(
            "SELECT {} FROM {} WHERE id = {{id:UUID}} ORDER BY source_partition, source_offset",
            self.columns, self.table
        );
        let mut cursor = self
            .client
            .query(&sql)
            .param("id", id)
            .fetch_bytes("RowBinary")?;
        let bytes = cursor.collect().await?;
        let rows = split_stored_rows(&bytes)?;
        let Some(row) = rows
            .iter()
            .find(|row| visibility.allows(row.organization_id))
            .copied()
        else {
            return Ok(ProofOutcome::NotFound);
        };
        let (partition, offset) = (row.source.partition, row.source.offset);
        if partition < 0 {
            return Ok(ProofOutcome::Unprovable(
                "the event was stored before source positions were recorded (migration 5): \
                 no batch digest covers it"
                    .to_owned(),
            ));
        }
        let candidates = self.digests(partition, Some((offset, offset))).await?;
        let Some(batch) = candidates.into_iter().next() else {
            return Ok(ProofOutcome::Unprovable(format!(
                "no batch digest covers partition {partition} offset {offset}"
            )));
        };
        let batch_rows = self
            .leaf_rows_of(&[partition], batch.first_offset, batch.last_offset)
            .await?;
        let mut scratch = Report::default();
        let check = verify::check_batch(&batch, &batch_rows, None, &mut scratch);
        let Some(leaves) = check.leaves else {
            let problems: Vec<String> = scratch.problems.iter().map(ToString::to_string).collect();
            return Ok(ProofOutcome::Unprovable(format!(
                "the event's batch does not verify: {}",
                problems.join("; ")
            )));
        };
        let Some(leaf_index) = leaf_offsets(&batch).iter().position(|o| *o == offset) else {
            return Ok(ProofOutcome::Unprovable(
                "the offset is not a leaf".to_owned(),
            ));
        };
        if auditlog_integrity::event_leaf(row.bytes) != leaves[leaf_index] {
            return Ok(ProofOutcome::Unprovable(
                "this copy of the event is not the one its batch recorded".to_owned(),
            ));
        }
        let checkpoints = match checkpoints {
            Some(checkpoints) => checkpoints,
            None => self.checkpoint_envelopes().await?,
        };
        let (links, checkpoint) = self.links_to_checkpoint(&batch, checkpoints).await?;
        let mut batches = vec![proof_batch(
            &range_of(&batch),
            &batch.root,
            &batch.previous_digest,
            &batch.digest,
        )];
        batches.extend(links);
        let proof = EventProof::build(ProofParts {
            event_id: row.id,
            topic: &self.topic,
            partition,
            offset,
            columns: self.column_types().await?,
            row: row.bytes,
            leaves: &leaves,
            leaf_index,
            batches,
            checkpoint,
        });
        match proof {
            Some(proof) => Ok(ProofOutcome::Proof(Box::new(proof))),
            None => Err(VerifyError::ProofAssembly),
        }
    }

    /// The batches after `batch` up to the first checkpoint whose head covers it, and that
    /// checkpoint; no links and no checkpoint while none covers it yet.
    async fn links_to_checkpoint(
        &self,
        batch: &DigestRow,
        mut checkpoints: Vec<Envelope>,
    ) -> Result<(Vec<ProofBatch>, Option<Envelope>), VerifyError> {
        let partition = batch.partition;
        // The earliest covering checkpoint gives the shortest chain of links.
        checkpoints.sort_by_key(|envelope| {
            envelope
                .open()
                .map_or(i64::MAX, |signed| signed.checkpoint.time_micros)
        });
        checkpoints.dedup();
        for envelope in checkpoints {
            let Ok(signed) = envelope.open() else {
                continue;
            };
            let Some(head) = signed.checkpoint.heads.iter().find(|head| {
                head.topic == self.topic
                    && head.partition == partition
                    && head.last_offset >= batch.last_offset
            }) else {
                continue;
            };
            let later = self
                .digests(partition, Some((batch.last_offset + 1, head.last_offset)))
                .await?;
            if let Some(links) = walk_forward(batch.digest, &later, &head.digest) {
                return Ok((links, Some(envelope)));
            }
        }
        Ok((Vec::new(), None))
    }
}

/// The batches from the one after `from` to the one whose digest is `to`, following each
/// batch's previous digest; `None` when the links do not reach.
fn walk_forward(from: Hash, rows: &[DigestRow], to: &Hash) -> Option<Vec<ProofBatch>> {
    let mut links = Vec::new();
    let mut tip = from;
    while tip != *to {
        let next = rows.iter().find(|row| row.previous_digest == tip)?;
        links.push(proof_batch(
            &range_of(next),
            &next.root,
            &next.previous_digest,
            &next.digest,
        ));
        tip = next.digest;
    }
    Some(links)
}
