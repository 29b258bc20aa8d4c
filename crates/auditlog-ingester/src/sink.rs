//! Writes sealed batches into ClickHouse, retrying transient failures with the same bytes.
//!
//! A batch is sent as pre-encoded RowBinary, LZ4-framed by the client unless the insert
//! compression setting says `none`, with `insert_deduplication_token` derived from its
//! offset range and `async_insert=0`: the acknowledgement means the rows are in a part on disk, and a re-send of the same range
//! (a retry, or a replay after a crash) is dropped by ClickHouse's insert deduplication.

use std::time::Instant;

use bytes::Bytes;
use clickhouse::Client;

use crate::stages::StageTimer;

/// Chunks handed to the client; each becomes one LZ4 frame on the wire when compressed.
const SEND_CHUNK_BYTES: usize = 1024 * 1024;

/// A ClickHouse table that takes RowBinary batches.
#[derive(Clone)]
pub(crate) struct ClickHouseSink {
    client: Client,
    insert_sql: String,
}

impl std::fmt::Debug for ClickHouseSink {
    // The client holds credentials: never print it.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ClickHouseSink")
            .field("insert_sql", &self.insert_sql)
            .finish_non_exhaustive()
    }
}

impl ClickHouseSink {
    /// `columns` is the RowBinary column order the rows are encoded in.
    pub(crate) fn new(client: Client, database: &str, table: &str, columns: &[&str]) -> Self {
        let insert_sql = format!(
            "INSERT INTO {database}.{table} ({}) FORMAT RowBinary",
            columns.join(", ")
        );
        Self { client, insert_sql }
    }

    /// One attempt: sends the rows with the batch's deduplication token.
    pub(crate) async fn insert_once(
        &self,
        rows: &Bytes,
        token: &str,
    ) -> Result<(), clickhouse::error::Error> {
        let mut insert = self
            .client
            .insert_formatted_with(self.insert_sql.clone())
            .with_setting("insert_deduplicate", "1")
            .with_setting("insert_deduplication_token", token)
            // Synchronous: the 200 means the part is written, not merely buffered.
            .with_setting("async_insert", "0");
        // The client compresses each chunk as it is handed over, before any wait for the
        // network: timed together, as the stage the bench reports.
        let mut compress_time = StageTimer::new("compress");
        let mut start = 0;
        while start < rows.len() {
            let end = (start + SEND_CHUNK_BYTES).min(rows.len());
            let started = Instant::now();
            insert.send(rows.slice(start..end)).await?;
            compress_time.add_since(started);
            start = end;
        }
        insert.end().await
    }
}
