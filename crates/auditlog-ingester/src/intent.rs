//! Batch intents: each batch's offset range, recorded in ClickHouse before its insert.
//!
//! See `batch.rs` for why. Recording costs one tiny insert per batch; loading happens once
//! each time a partition is picked up.

use clickhouse::Client;
use serde::{Deserialize, Serialize};

use crate::batch::PlannedRange;

/// Where intents live: `{database}.ingest_batches` (migration 0002).
#[derive(Clone)]
pub(crate) struct IntentStore {
    client: Client,
    table: String,
}

impl std::fmt::Debug for IntentStore {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("IntentStore")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, clickhouse::Row, Serialize)]
struct IntentRow<'a> {
    topic: &'a str,
    partition: i32,
    first_offset: i64,
    last_offset: i64,
    num_messages: u32,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct RangeRow {
    first_offset: i64,
    last_offset: i64,
}

impl IntentStore {
    /// `client` must have the audit database selected: the table name is used unqualified
    /// because the client quotes an insert's table name as one identifier.
    pub(crate) fn new(client: Client) -> Self {
        Self {
            client,
            table: "ingest_batches".to_owned(),
        }
    }

    /// Records a batch's range. Must be acknowledged before the batch's insert starts.
    pub(crate) async fn record(
        &self,
        topic: &str,
        partition: i32,
        range: PlannedRange,
        num_messages: usize,
    ) -> Result<(), clickhouse::error::Error> {
        let mut insert = self
            .client
            .insert::<IntentRow<'_>>(&self.table)
            .await?
            .with_setting("async_insert", "0");
        insert
            .write(&IntentRow {
                topic,
                partition,
                first_offset: range.first_offset,
                last_offset: range.last_offset,
                num_messages: u32::try_from(num_messages).unwrap_or(u32::MAX),
            })
            .await?;
        insert.end().await
    }

    /// The recorded ranges that end at or after `from_offset`, earliest first, with
    /// overlapping ones dropped: two owners racing through a rebalance can record ranges
    /// that overlap, and a replay must follow one consistent chain.
    pub(crate) async fn load(
        &self,
        topic: &str,
        partition: i32,
        from_offset: i64,
    ) -> Result<Vec<PlannedRange>, clickhouse::error::Error> {
        let rows: Vec<RangeRow> = self
            .client
            .query(&format!(
                "SELECT DISTINCT first_offset, last_offset FROM {} \
                 WHERE topic = {{topic:String}} AND partition = {{partition:Int32}} \
                   AND last_offset >= {{from_offset:Int64}} \
                 ORDER BY first_offset, last_offset",
                self.table
            ))
            .param("topic", topic)
            .param("partition", partition)
            .param("from_offset", from_offset)
            .fetch_all()
            .await?;
        Ok(non_overlapping(rows.into_iter().map(|row| PlannedRange {
            first_offset: row.first_offset,
            last_offset: row.last_offset,
        })))
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
        }
    }

    #[test]
    fn overlapping_ranges_keep_the_earliest_chain() {
        let chain = non_overlapping(
            [range(10, 20), range(10, 35), range(21, 30), range(31, 40)].into_iter(),
        );
        assert_eq!(chain, vec![range(10, 20), range(21, 30), range(31, 40)]);
    }
}
