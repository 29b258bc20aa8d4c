//! Batch intents: each batch's offset range and digest, recorded in ClickHouse before its
//! insert.
//!
//! See `batch.rs` for why the range is recorded. The same row carries the batch's digest
//! (`ingest_digests`, migration 0005), so tamper evidence costs no extra round trip.
//! Loading happens once each time a partition is picked up, and also yields the digest the
//! partition's chain continues from. Intents recorded before digests existed
//! (`ingest_batches`) are still replayed, and their digests recorded then.

use auditlog_integrity::{GENESIS, Hash};
use auditlog_store::tables::INGEST_BATCHES;
use auditlog_store::{DIGESTS_TABLE, DigestRow};
use clickhouse::Client;
use serde::Deserialize;

use crate::batch::PlannedRange;

/// Where intents live: `{database}.ingest_digests`, and the older `ingest_batches`.
#[derive(Clone)]
pub(crate) struct IntentStore {
    client: Client,
}

impl std::fmt::Debug for IntentStore {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("IntentStore")
            .finish_non_exhaustive()
    }
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct RangeRow {
    first_offset: i64,
    last_offset: i64,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct RecordedRow {
    first_offset: i64,
    last_offset: i64,
    digest: [u8; 32],
}

/// What a partition resumes from: the ranges to replay and the digest to chain after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResumePoint {
    pub(crate) plans: Vec<PlannedRange>,
    /// The digest of the batch that ends just before the resume offset ([`GENESIS`] when
    /// there is none: the partition's first batch, or the first since digests began).
    pub(crate) chain_head: Hash,
}

impl IntentStore {
    /// `client` must have the audit database selected: the table name is used unqualified
    /// because the client quotes an insert's table name as one identifier.
    pub(crate) fn new(client: Client) -> Self {
        Self { client }
    }

    /// Records a batch's range and digest. Must be acknowledged before the batch's insert
    /// starts; `token` makes a retried record a no-op.
    pub(crate) async fn record(
        &self,
        row: &DigestRow,
        token: &str,
    ) -> Result<(), clickhouse::error::Error> {
        let mut insert = self
            .client
            .insert::<DigestRow>(DIGESTS_TABLE)
            .await?
            .with_setting("async_insert", "0")
            .with_setting("insert_deduplicate", "1")
            .with_setting("insert_deduplication_token", format!("digest:{token}"));
        insert.write(row).await?;
        insert.end().await
    }

    /// The recorded ranges that end at or after `from_offset`, earliest first, with
    /// overlapping ones dropped (two owners racing through a rebalance can record ranges
    /// that overlap, and a replay must follow one consistent chain), and the chain head.
    pub(crate) async fn load(
        &self,
        topic: &str,
        partition: i32,
        from_offset: i64,
    ) -> Result<ResumePoint, clickhouse::error::Error> {
        // The two reads are independent: asked together, a restart waits for one round
        // trip per partition instead of two (a partition's load took about 2 s in a loaded
        // suite run, while the coordinator waited).
        let recorded = self
            .client
            .query(&format!(
                "SELECT first_offset, last_offset, digest FROM {DIGESTS_TABLE} \
                 WHERE topic = {{topic:String}} AND partition = {{partition:Int32}} \
                   AND last_offset >= {{from_offset:Int64}} - 1 \
                 ORDER BY first_offset, last_offset"
            ))
            .param("topic", topic)
            .param("partition", partition)
            .param("from_offset", from_offset)
            .fetch_all::<RecordedRow>();
        let legacy = self
            .client
            .query(&format!(
                "SELECT DISTINCT first_offset, last_offset FROM {INGEST_BATCHES} \
                 WHERE topic = {{topic:String}} AND partition = {{partition:Int32}} \
                   AND last_offset >= {{from_offset:Int64}} \
                 ORDER BY first_offset, last_offset"
            ))
            .param("topic", topic)
            .param("partition", partition)
            .param("from_offset", from_offset)
            .fetch_all::<RangeRow>();
        let (recorded, legacy) = tokio::try_join!(recorded, legacy)?;
        Ok(resume_point(&recorded, &legacy, from_offset))
    }
}

fn resume_point(recorded: &[RecordedRow], legacy: &[RangeRow], from_offset: i64) -> ResumePoint {
    let chain_head = recorded
        .iter()
        .filter(|row| row.last_offset == from_offset - 1)
        .min_by_key(|row| row.first_offset)
        .map_or(GENESIS, |row| row.digest);
    let mut ranges: Vec<PlannedRange> = recorded
        .iter()
        .filter(|row| row.last_offset >= from_offset)
        .map(|row| PlannedRange {
            first_offset: row.first_offset,
            last_offset: row.last_offset,
            digest: Some(row.digest),
        })
        .collect();
    for row in legacy {
        // A range recorded in both tables replays with its digest.
        if !ranges.iter().any(|range| {
            (range.first_offset, range.last_offset) == (row.first_offset, row.last_offset)
        }) {
            ranges.push(PlannedRange {
                first_offset: row.first_offset,
                last_offset: row.last_offset,
                digest: None,
            });
        }
    }
    ranges.sort_by_key(|range| {
        (
            range.first_offset,
            range.last_offset,
            range.digest.is_none(),
        )
    });
    ResumePoint {
        plans: non_overlapping(ranges.into_iter()),
        chain_head,
    }
}

fn non_overlapping(ranges: impl Iterator<Item = PlannedRange>) -> Vec<PlannedRange> {
    let mut chain: Vec<PlannedRange> = Vec::new();
    for range in ranges {
        if chain
            .last()
            .is_none_or(|last| range.first_offset > last.last_offset)
        {
            chain.push(range);
        }
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(first_offset: i64, last_offset: i64) -> PlannedRange {
        PlannedRange {
            first_offset,
            last_offset,
            digest: None,
        }
    }

    #[test]
    fn overlapping_ranges_keep_the_earliest_chain() {
        let chain = non_overlapping(
            [range(10, 20), range(10, 35), range(21, 30), range(31, 40)].into_iter(),
        );
        assert_eq!(chain, vec![range(10, 20), range(21, 30), range(31, 40)]);
    }

    #[test]
    fn a_resume_chains_after_the_batch_before_it_and_prefers_recorded_digests() {
        let recorded = [
            RecordedRow {
                first_offset: 0,
                last_offset: 9,
                digest: [1; 32],
            },
            RecordedRow {
                first_offset: 10,
                last_offset: 19,
                digest: [2; 32],
            },
        ];
        let legacy = [
            RangeRow {
                first_offset: 10,
                last_offset: 19,
            },
            RangeRow {
                first_offset: 20,
                last_offset: 29,
            },
        ];
        let resume = resume_point(&recorded, &legacy, 10);
        assert_eq!(resume.chain_head, [1; 32]);
        assert_eq!(
            resume.plans,
            vec![
                PlannedRange {
                    digest: Some([2; 32]),
                    ..range(10, 19)
                },
                range(20, 29)
            ]
        );
        assert_eq!(resume_point(&recorded, &[], 0).chain_head, GENESIS);
    }
}
