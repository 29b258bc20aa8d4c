//! Writes sealed batches into ClickHouse, retrying transient failures with the same bytes.
//!
//! A batch is sent as pre-encoded RowBinary, in LZ4 blocks built once per batch
//! ([`crate::insert_body`]) unless the insert compression setting says `none`, with
//! `insert_deduplication_token` derived from its offset range and `async_insert=0`: the
//! acknowledgement means the rows are in a part on disk, and a re-send of the same range (a
//! retry, or a replay after a crash) is dropped by ClickHouse's insert deduplication.

use std::time::Instant;

use bytes::Bytes;
use clickhouse::Client;

use crate::InsertCompression;
use crate::insert_body::{BLOCK_BYTES, InsertBodies};
use crate::stages::StageTimer;

/// A ClickHouse table that takes RowBinary batches.
#[derive(Clone)]
pub(crate) struct ClickHouseSink {
    client: Client,
    insert_sql: String,
    bodies: InsertBodies,
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
    pub(crate) fn new(
        client: Client,
        compression: InsertCompression,
        database: &str,
        table: &str,
        columns: &[&str],
    ) -> Self {
        let insert_sql = format!(
            "INSERT INTO {database}.{table} ({}) FORMAT RowBinary",
            columns.join(", ")
        );
        Self {
            // The bodies arrive framed already: the client must not frame them again.
            client: client.with_compression(clickhouse::Compression::None),
            insert_sql,
            bodies: InsertBodies::new(compression),
        }
    }

    /// The insert body of a batch's rows, built once for every attempt to send.
    pub(crate) fn body(&self, rows: Bytes) -> Bytes {
        let mut compress_time = StageTimer::new("compress");
        let started = Instant::now();
        let body = self.bodies.build(rows);
        compress_time.add_since(started);
        body
    }

    /// One attempt: sends a [`Self::body`] with the batch's deduplication token.
    pub(crate) async fn insert_once(
        &self,
        body: &Bytes,
        token: &str,
    ) -> Result<(), clickhouse::error::Error> {
        let mut insert = self
            .client
            .insert_formatted_with(self.insert_sql.clone())
            .with_setting("insert_deduplicate", "1")
            .with_setting("insert_deduplication_token", token)
            // Synchronous: the 200 means the part is written, not merely buffered.
            .with_setting("async_insert", "0");
        if self.bodies.compressed() {
            insert = insert.with_setting("decompress", "1");
        }
        // In pieces, so that the first bytes are on their way while the client takes the rest.
        let mut start = 0;
        while start < body.len() {
            let end = (start + BLOCK_BYTES).min(body.len());
            insert.send(body.slice(start..end)).await?;
            start = end;
        }
        insert.end().await
    }
}
