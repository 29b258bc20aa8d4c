//! Reading the integrity evidence out of ClickHouse: digest rows, checkpoints and stored rows
//! by source position, for `auditlog verify` and the proof endpoint. The judging is
//! `auditlog_integrity::verify`'s; this module only fetches.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use auditlog_integrity::proof::{EventProof, ProofBatch, ProofParts, proof_batch};
use auditlog_integrity::verify::{self, LeafRow, Report, leaf_offsets, range_of};
use auditlog_integrity::{Envelope, Hash};
use auditlog_query::Visibility;
use auditlog_store::{
    CHECKPOINT_COLUMNS, CHECKPOINTS_TABLE, CheckpointRow, ClickHouseConfig, DIGEST_COLUMNS,
    DIGESTS_TABLE, DigestRow, split_stored_prefix, split_stored_rows, stored_columns,
};
use uuid::Uuid;

/// The integrity tables and the audit table of one deployment.
#[derive(Clone)]
pub struct Evidence {
    client: clickhouse::Client,
    table: String,
    topic: String,
    columns: String,
}

impl std::fmt::Debug for Evidence {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Evidence")
            .field("table", &self.table)
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

/// Why a proof could not be built.
#[derive(Debug)]
pub enum ProofOutcome {
    /// The proof.
    Proof(Box<EventProof>),
    /// No such event, or not one the caller may see.
    NotFound,
    /// The event exists but cannot be proven (written before digests, or tampered with).
    Unprovable(String),
}

impl Evidence {
    /// Reads from `config`'s database; `topic` is the audit event topic.
    pub fn new(config: &ClickHouseConfig, topic: &str) -> Self {
        Self {
            client: config.client(),
            table: config.table.clone(),
            topic: topic.to_owned(),
            columns: stored_columns().join(", "),
        }
    }

    /// The audit event topic the evidence is about.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Every checkpoint stored in ClickHouse for the topic, oldest first.
    pub async fn checkpoint_envelopes(&self) -> Result<Vec<Envelope>> {
        let rows: Vec<CheckpointRow> = self
            .client
            .query(&format!(
                "SELECT {CHECKPOINT_COLUMNS} FROM {CHECKPOINTS_TABLE} \
                 WHERE topic = {{topic:String}} ORDER BY signed_at, key_id"
            ))
            .param("topic", &self.topic)
            .fetch_all()
            .await
            .context("reading the checkpoints from ClickHouse")?;
        Ok(rows
            .into_iter()
            .map(|row| Envelope {
                body: row.body,
                signature: row.signature,
            })
            .collect())
    }

    /// The partitions that have digests.
    pub async fn partitions(&self) -> Result<Vec<i32>> {
        self.client
            .query(&format!(
                "SELECT DISTINCT partition FROM {DIGESTS_TABLE} \
                 WHERE topic = {{topic:String}} ORDER BY partition"
            ))
            .param("topic", &self.topic)
            .fetch_all()
            .await
            .context("reading the digests' partitions")
    }

    /// The offsets of the batches with events in `[from, to)` (µs), if any.
    pub async fn offset_window(
        &self,
        partition: i32,
        from_micros: i64,
        to_micros: i64,
    ) -> Result<Option<(i64, i64)>> {
        #[derive(clickhouse::Row, serde::Deserialize)]
        struct Window {
            batches: u64,
            first: i64,
            last: i64,
        }
        let window: Window = self
            .client
            .query(&format!(
                "SELECT count() AS batches, min(first_offset) AS first, max(last_offset) AS last \
                 FROM {DIGESTS_TABLE} \
                 WHERE topic = {{topic:String}} AND partition = {{partition:Int32}} \
                   AND toUnixTimestamp64Micro(max_time) >= {{from:Int64}} \
                   AND toUnixTimestamp64Micro(min_time) < {{to:Int64}}"
            ))
            .param("topic", &self.topic)
            .param("partition", partition)
            .param("from", from_micros)
            .param("to", to_micros)
            .fetch_one()
            .await
            .context("reading the digests' window")?;
        Ok((window.batches > 0).then_some((window.first, window.last)))
    }

    /// The digest rows of a partition, all or those overlapping `[first, last]`.
    pub async fn digests(
        &self,
        partition: i32,
        bounds: Option<(i64, i64)>,
    ) -> Result<Vec<DigestRow>> {
        let (first, last) = bounds.unwrap_or((i64::MIN, i64::MAX));
        self.client
            .query(&format!(
                "SELECT {DIGEST_COLUMNS} FROM {DIGESTS_TABLE} \
                 WHERE topic = {{topic:String}} AND partition = {{partition:Int32}} \
                   AND last_offset >= {{first:Int64}} AND first_offset <= {{last:Int64}} \
                 ORDER BY first_offset, last_offset"
            ))
            .param("topic", &self.topic)
            .param("partition", partition)
            .param("first", first)
            .param("last", last)
            .fetch_all()
            .await
            .with_context(|| format!("reading the digests of partition {partition}"))
    }

    /// The rows of `partitions` at offsets `[first, last]`, hashed into leaves as the
    /// answer streams in (only 60 bytes a row are kept), in any order. One read serves
    /// several partitions, since their offsets interleave in the table's granules.
    pub async fn leaf_rows_of(
        &self,
        partitions: &[i32],
        first: i64,
        last: i64,
    ) -> Result<Vec<LeafRow>> {
        let list: Vec<String> = partitions.iter().map(ToString::to_string).collect();
        let sql = format!(
            "SELECT {} FROM {} WHERE source_partition IN ({}) \
             AND source_offset BETWEEN {{first:Int64}} AND {{last:Int64}}",
            self.columns,
            self.table,
            list.join(", ")
        );
        let mut cursor = self
            .client
            .query(&sql)
            .param("first", first)
            .param("last", last)
            .fetch_bytes("RowBinary")?;
        let mut pending: Vec<u8> = Vec::new();
        let mut leaves = Vec::new();
        while let Some(chunk) = cursor.next().await.context("reading stored rows")? {
            pending.extend_from_slice(&chunk);
            let (rows, used) = split_stored_prefix(&pending)?;
            leaves.extend(rows.iter().map(LeafRow::from));
            pending.drain(..used);
        }
        if !pending.is_empty() {
            bail!("the answer of ClickHouse ends inside a row");
        }
        Ok(leaves)
    }

    /// Rows outside every span (by partition) of the chains, of the partitions asked about
    /// (`None`: all, including rows with no source position), optionally only those with
    /// event times in `[from, to)`: how many, and the first `limit` of them.
    /// Rows above a partition's `tails` (the newest digest read) are left out: they were
    /// written after the digests were read, or are checked by [`Evidence::late_rows`].
    pub async fn outside_rows(
        &self,
        spans: &BTreeMap<i32, Vec<(i64, i64)>>,
        tails: &BTreeMap<i32, i64>,
        only_partition: Option<i32>,
        window: Option<(i64, i64)>,
        limit: u64,
    ) -> Result<(u64, Vec<u8>)> {
        // Every number is an integer the verifier computed: nothing here comes from a user
        // as text, so the predicate is built inline.
        let mut covered: Vec<String> = Vec::new();
        for (partition, list) in spans {
            for (first, last) in list {
                covered.push(format!(
                    "(source_partition = {partition} AND source_offset BETWEEN {first} AND {last})"
                ));
            }
        }
        let mut conditions = vec![if covered.is_empty() {
            "1".to_owned()
        } else {
            format!("NOT ({})", covered.join(" OR "))
        }];
        for (partition, tail) in tails {
            conditions.push(format!(
                "NOT (source_partition = {partition} AND source_offset > {tail})"
            ));
        }
        let predicate = scoped(conditions, only_partition, window);
        let count: u64 = self
            .client
            .query(&format!(
                "SELECT count() FROM {} WHERE {predicate}",
                self.table
            ))
            .fetch_one()
            .await
            .context("counting rows outside every batch")?;
        if count == 0 {
            return Ok((0, Vec::new()));
        }
        let mut cursor = self
            .client
            .query(&format!(
                "SELECT {} FROM {} WHERE {predicate} ORDER BY source_partition, source_offset \
                 LIMIT {limit}",
                self.columns, self.table
            ))
            .fetch_bytes("RowBinary")?;
        let bytes = cursor.collect().await?;
        Ok((count, bytes.to_vec()))
    }

    /// Rows above each partition's tail, as (id, partition, offset), at most `limit`: rows
    /// that arrived while verify ran, or forged past the end of the chain.
    pub async fn late_rows(
        &self,
        tails: &BTreeMap<i32, i64>,
        only_partition: Option<i32>,
        window: Option<(i64, i64)>,
        limit: u64,
    ) -> Result<Vec<(Uuid, i32, i64)>> {
        if tails.is_empty() {
            return Ok(Vec::new());
        }
        let above: Vec<String> = tails
            .iter()
            .map(|(partition, tail)| {
                format!("(source_partition = {partition} AND source_offset > {tail})")
            })
            .collect();
        let predicate = scoped(
            vec![format!("({})", above.join(" OR "))],
            only_partition,
            window,
        );
        #[derive(clickhouse::Row, serde::Deserialize)]
        struct Position {
            #[serde(with = "clickhouse::serde::uuid")]
            id: Uuid,
            source_partition: i32,
            source_offset: i64,
        }
        let rows: Vec<Position> = self
            .client
            .query(&format!(
                "SELECT id, source_partition, source_offset FROM {} WHERE {predicate} \
                 ORDER BY source_partition, source_offset LIMIT {limit}",
                self.table
            ))
            .fetch_all()
            .await
            .context("reading rows past the newest digest")?;
        Ok(rows
            .into_iter()
            .map(|row| (row.id, row.source_partition, row.source_offset))
            .collect())
    }

    /// The (first, last) offset ranges of a partition's digests that end after `tail`.
    pub async fn ranges_after(&self, partition: i32, tail: i64) -> Result<Vec<(i64, i64)>> {
        self.client
            .query(&format!(
                "SELECT first_offset, last_offset FROM {DIGESTS_TABLE} \
                 WHERE topic = {{topic:String}} AND partition = {{partition:Int32}} \
                   AND last_offset > {{tail:Int64}} ORDER BY first_offset"
            ))
            .param("topic", &self.topic)
            .param("partition", partition)
            .param("tail", tail)
            .fetch_all()
            .await
            .context("reading the digests recorded during verification")
    }

    /// The column names and types of the stored row, for proofs.
    async fn column_types(&self) -> Result<Vec<String>> {
        #[derive(clickhouse::Row, serde::Deserialize)]
        struct Column {
            name: String,
            r#type: String,
        }
        let columns: Vec<Column> = self
            .client
            .query(
                "SELECT name, type FROM system.columns \
                 WHERE database = currentDatabase() AND table = {table:String}",
            )
            .param("table", &self.table)
            .fetch_all()
            .await?;
        let types: BTreeMap<String, String> = columns
            .into_iter()
            .map(|column| (column.name, column.r#type))
            .collect();
        Ok(stored_columns()
            .into_iter()
            .map(|name| match types.get(name) {
                Some(kind) => format!("{name} {kind}"),
                None => name.to_owned(),
            })
            .collect())
    }

    /// The proof of event `id`, if `visibility` may see it, with a checkpoint from
    /// `checkpoints` (default: those stored in ClickHouse).
    pub async fn proof(
        &self,
        id: Uuid,
        visibility: &Visibility,
        checkpoints: Option<Vec<Envelope>>,
    ) -> Result<ProofOutcome> {
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
            None => bail!("the proof could not be assembled"),
        }
    }

    /// The batches after `batch` up to the first checkpoint whose head covers it, and that
    /// checkpoint; no links and no checkpoint while none covers it yet.
    async fn links_to_checkpoint(
        &self,
        batch: &DigestRow,
        mut checkpoints: Vec<Envelope>,
    ) -> Result<(Vec<ProofBatch>, Option<Envelope>)> {
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

/// `conditions` joined, narrowed to one partition and to event times in `[from, to)`.
fn scoped(
    mut conditions: Vec<String>,
    only_partition: Option<i32>,
    window: Option<(i64, i64)>,
) -> String {
    if let Some(partition) = only_partition {
        conditions.push(format!("source_partition = {partition}"));
    }
    if let Some((from, to)) = window {
        conditions.push(format!(
            "toUnixTimestamp64Micro(time) >= {from} AND toUnixTimestamp64Micro(time) < {to}"
        ));
    }
    conditions.join(" AND ")
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
