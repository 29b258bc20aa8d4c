//! Reading the integrity evidence out of ClickHouse: digest rows, checkpoints and stored rows
//! by source position. The judging is `auditlog_integrity::verify`'s; this module only
//! fetches.

use std::collections::BTreeMap;

use auditlog_integrity::Envelope;
use auditlog_integrity::verify::LeafRow;
use auditlog_store::{
    CHECKPOINT_COLUMNS, CHECKPOINTS_TABLE, CheckpointRow, ClickHouseConfig, DIGEST_COLUMNS,
    DIGESTS_TABLE, DigestRow, split_stored_prefix, stored_columns,
};
use uuid::Uuid;

use crate::error::{ReadContext as _, VerifyError};

type Result<T, E = VerifyError> = std::result::Result<T, E>;

/// The integrity tables and the audit table of one deployment.
#[derive(Clone)]
pub struct Evidence {
    pub(crate) client: clickhouse::Client,
    pub(crate) table: String,
    pub(crate) topic: String,
    pub(crate) columns: String,
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
    pub(crate) async fn checkpoint_envelopes(&self) -> Result<Vec<Envelope>> {
        let rows: Vec<CheckpointRow> = self
            .client
            .query(&format!(
                "SELECT {CHECKPOINT_COLUMNS} FROM {CHECKPOINTS_TABLE} \
                 WHERE topic = {{topic:String}} ORDER BY signed_at, key_id"
            ))
            .param("topic", &self.topic)
            .fetch_all()
            .await
            .reading(|| "reading the checkpoints from ClickHouse".to_owned())?;
        Ok(rows
            .into_iter()
            .map(|row| Envelope {
                body: row.body,
                signature: row.signature,
            })
            .collect())
    }

    /// The partitions that have digests.
    pub(crate) async fn partitions(&self) -> Result<Vec<i32>> {
        self.client
            .query(&format!(
                "SELECT DISTINCT partition FROM {DIGESTS_TABLE} \
                 WHERE topic = {{topic:String}} ORDER BY partition"
            ))
            .param("topic", &self.topic)
            .fetch_all()
            .await
            .reading(|| "reading the digests' partitions".to_owned())
    }

    /// The offsets of the batches with events in `[from, to)` (µs), if any.
    pub(crate) async fn offset_window(
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
            .reading(|| "reading the digests' window".to_owned())?;
        Ok((window.batches > 0).then_some((window.first, window.last)))
    }

    /// The digest rows of a partition, all or those overlapping `[first, last]`.
    pub(crate) async fn digests(
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
            .reading(|| format!("reading the digests of partition {partition}"))
    }

    /// The rows of `partitions` at offsets `[first, last]`, hashed into leaves as the
    /// answer streams in (only 60 bytes a row are kept), in any order. One read serves
    /// several partitions, since their offsets interleave in the table's granules.
    pub(crate) async fn leaf_rows_of(
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
        while let Some(chunk) = cursor
            .next()
            .await
            .reading(|| "reading stored rows".to_owned())?
        {
            pending.extend_from_slice(&chunk);
            let (rows, used) = split_stored_prefix(&pending)?;
            leaves.extend(rows.iter().map(LeafRow::from));
            pending.drain(..used);
        }
        if !pending.is_empty() {
            return Err(VerifyError::Truncated);
        }
        Ok(leaves)
    }

    /// Rows outside every span (by partition) of the chains, of the partitions asked about
    /// (`None`: all, including rows with no source position), optionally only those with
    /// event times in `[from, to)`: how many, and the first `limit` of them.
    /// Rows above a partition's `tails` (the newest digest read) are left out: they were
    /// written after the digests were read, or are checked by [`Evidence::late_rows`].
    pub(crate) async fn outside_rows(
        &self,
        spans: &BTreeMap<i32, Vec<(i64, i64)>>,
        tails: &BTreeMap<i32, i64>,
        only_partition: Option<i32>,
        window: Option<(i64, i64)>,
        limit: u64,
    ) -> Result<(u64, Vec<u8>)> {
        let predicate = outside_predicate(spans, tails, only_partition, window);
        let count: u64 = self
            .client
            .query(&format!(
                "SELECT count() FROM {} WHERE {predicate}",
                self.table
            ))
            .fetch_one()
            .await
            .reading(|| "counting rows outside every batch".to_owned())?;
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
    pub(crate) async fn late_rows(
        &self,
        tails: &BTreeMap<i32, i64>,
        only_partition: Option<i32>,
        window: Option<(i64, i64)>,
        limit: u64,
    ) -> Result<Vec<(Uuid, i32, i64)>> {
        if tails.is_empty() {
            return Ok(Vec::new());
        }
        let predicate = late_predicate(tails, only_partition, window);
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
            .reading(|| "reading rows past the newest digest".to_owned())?;
        Ok(rows
            .into_iter()
            .map(|row| (row.id, row.source_partition, row.source_offset))
            .collect())
    }

    /// The (first, last) offset ranges of a partition's digests that end after `tail`.
    pub(crate) async fn ranges_after(&self, partition: i32, tail: i64) -> Result<Vec<(i64, i64)>> {
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
            .reading(|| "reading the digests recorded during verification".to_owned())
    }

    /// The column names and types of the stored row, for proofs.
    pub(crate) async fn column_types(&self) -> Result<Vec<String>> {
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
}

/// Rows outside every span of the chains and not above any partition's tail, narrowed to
/// one partition and to event times in `[from, to)`. Rows with no source position
/// (partition -1) are in no span, so they are selected unless one partition is asked about.
fn outside_predicate(
    spans: &BTreeMap<i32, Vec<(i64, i64)>>,
    tails: &BTreeMap<i32, i64>,
    only_partition: Option<i32>,
    window: Option<(i64, i64)>,
) -> String {
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
    scoped(conditions, only_partition, window)
}

/// Rows above each partition's tail (`tails` is not empty), narrowed as above.
fn late_predicate(
    tails: &BTreeMap<i32, i64>,
    only_partition: Option<i32>,
    window: Option<(i64, i64)>,
) -> String {
    let above: Vec<String> = tails
        .iter()
        .map(|(partition, tail)| {
            format!("(source_partition = {partition} AND source_offset > {tail})")
        })
        .collect();
    scoped(
        vec![format!("({})", above.join(" OR "))],
        only_partition,
        window,
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_selects_rows_outside_every_span_and_below_every_tail() {
        let spans = BTreeMap::from([(0, vec![(0, 9), (20, 29)]), (1, vec![])]);
        let tails = BTreeMap::from([(0, 29)]);
        assert_eq!(
            outside_predicate(&spans, &tails, None, None),
            "NOT ((source_partition = 0 AND source_offset BETWEEN 0 AND 9) OR \
             (source_partition = 0 AND source_offset BETWEEN 20 AND 29)) AND \
             NOT (source_partition = 0 AND source_offset > 29)",
            "rows between batches and rows with no source position (-1) stay selected"
        );
        assert_eq!(
            outside_predicate(&BTreeMap::new(), &BTreeMap::new(), Some(2), Some((5, 7))),
            "1 AND source_partition = 2 AND toUnixTimestamp64Micro(time) >= 5 AND \
             toUnixTimestamp64Micro(time) < 7"
        );
    }

    #[test]
    fn rows_past_the_chain_are_those_above_a_partitions_tail() {
        let tails = BTreeMap::from([(0, 29), (3, 4)]);
        assert_eq!(
            late_predicate(&tails, None, None),
            "((source_partition = 0 AND source_offset > 29) OR \
             (source_partition = 3 AND source_offset > 4))"
        );
    }
}
