//! The bench's data: a year of generated events, inserted in the ingester's batches as
//! continuous ingest writes them, and what those inserts cost beside the table itself.
//!
//! ```text
//!  TrafficGenerator(seed) ─► RowBinary batches (BatchLimits) ─► audit_bench.audit_logs ─► MVs
//!  the first batches again ─► a table alone / the full schema ─► rows, bytes, time per event
//! ```

use std::io::Write as _;
use std::time::{Duration, Instant};

use auditlog_store::{COLUMNS, RowEncoder, SchemaTarget};
use auditlog_traffic::TrafficGenerator;
use bytes::Bytes;
use time::macros::datetime;

use crate::{SEED, TABLE};

pub fn generator(num_events: u64) -> TrafficGenerator {
    TrafficGenerator::new(SEED).with_time_span(
        datetime!(2025-01-01 00:00 UTC),
        datetime!(2026-01-01 00:00 UTC),
        num_events,
    )
}

/// Active parts, partitions and rows of the bench table (continuous ingest leaves several
/// parts per month), and the storage of everything the inserts feed beside it.
pub async fn describe_table(client: &clickhouse::Client) -> Result<String, String> {
    let (parts, partitions, rows) = client
        .query(
            "SELECT count(), uniqExact(partition), sum(rows) FROM system.parts \
             WHERE active AND database = currentDatabase() AND table = ?",
        )
        .bind(TABLE)
        .fetch_one::<(u64, u64, u64)>()
        .await
        .map_err(|error| format!("system.parts: {error}"))?;
    let (base_bytes, all_bytes) = client
        .query(
            "SELECT sumIf(bytes_on_disk, table = ?), sum(bytes_on_disk) FROM system.parts \
             WHERE active AND database = currentDatabase()",
        )
        .bind(TABLE)
        .fetch_one::<(u64, u64)>()
        .await
        .map_err(|error| format!("system.parts: {error}"))?;
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    Ok(format!(
        "{rows} rows in {parts} active parts over {partitions} partitions (no OPTIMIZE ... FINAL; \
         merges capped at {} MiB parts); storage: the table {:.0} MiB, everything fed at insert \
         {:.0} MiB ({:.2}x the table)",
        MERGE_CAP_BYTES / (1024 * 1024),
        mib(base_bytes),
        mib(all_bytes),
        all_bytes as f64 / base_bytes.max(1) as f64
    ))
}

/// The largest part merges may build in the bench's table. A year of 10M events fits in a
/// dozen parts once merges settle, while a large deployment's months hold many parts each
/// (ClickHouse stops merging at 150 GiB); the cap keeps the part count of such a table, which
/// is what the read path pays for. The tables its inserts feed merge as they would.
const MERGE_CAP_BYTES: u64 = 24 * 1024 * 1024;

async fn cap_merges(client: &clickhouse::Client) -> Result<(), String> {
    for table in [TABLE] {
        client
            .query(&format!(
                "ALTER TABLE `{table}` MODIFY SETTING max_bytes_to_merge_at_max_space_in_pool = {MERGE_CAP_BYTES}"
            ))
            .execute()
            .await
            .map_err(|error| format!("cap merges of {table}: {error}"))?;
    }
    Ok(())
}

/// Loads the events unless the table already holds at least that many.
pub async fn ensure_loaded(
    root: &clickhouse::Client,
    client: &clickhouse::Client,
    database: &str,
    num_events: u64,
) -> Result<(), String> {
    let target = SchemaTarget {
        database: database.to_owned(),
        table: TABLE.to_owned(),
        retention_days: None,
        cluster: None,
    };
    auditlog_store::migrate(&root.clone().with_database("default"), &target)
        .await
        .map_err(|error| format!("migrate: {error}"))?;
    let existing = client
        .query("SELECT count() FROM audit_logs")
        .fetch_one::<u64>()
        .await
        .map_err(|error| error.to_string())?;
    if existing >= num_events {
        println!("reusing {existing} rows already loaded");
        return Ok(());
    }
    if existing > 0 {
        // A partial load (an interrupted run): start over, the generator is deterministic,
        // and the tables the inserts feed start over with it.
        root.query(&format!("DROP DATABASE IF EXISTS `{database}` SYNC"))
            .execute()
            .await
            .map_err(|error| error.to_string())?;
        auditlog_store::migrate(&root.clone().with_database("default"), &target)
            .await
            .map_err(|error| format!("migrate: {error}"))?;
    }
    cap_merges(client).await?;
    let started = Instant::now();
    // Encoding runs on its own thread, one chunk ahead of the insert.
    let (chunk_tx, mut chunk_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(2);
    let encoder = std::thread::spawn(move || {
        let generator = generator(num_events);
        let mut encoder = RowEncoder::default();
        // Inserts as the ingester seals its batches: at most this many rows or bytes.
        let limits = auditlog_ingester::BatchLimits::default();
        let mut rows = Vec::new();
        let mut in_chunk = 0;
        for event in generator {
            encoder.encode(&event, &mut rows);
            in_chunk += 1;
            if in_chunk == limits.max_rows || rows.len() >= limits.max_bytes {
                if chunk_tx.blocking_send(std::mem::take(&mut rows)).is_err() {
                    return;
                }
                in_chunk = 0;
            }
        }
        if in_chunk > 0 {
            let _ = chunk_tx.blocking_send(rows);
        }
    });
    let statement = format!(
        "INSERT INTO {TABLE} ({}) FORMAT RowBinary",
        COLUMNS.join(", ")
    );
    let mut inserts = 0_u64;
    while let Some(rows) = chunk_rx.recv().await {
        inserts += 1;
        let mut insert = client.insert_formatted_with(statement.clone());
        insert
            .send(Bytes::from(rows))
            .await
            .map_err(|error| format!("insert: {error}"))?;
        insert
            .end()
            .await
            .map_err(|error| format!("insert: {error}"))?;
        print!("\r  {inserts} inserts");
        let _ = std::io::stdout().flush();
    }
    encoder
        .join()
        .map_err(|_| "encoder thread panicked".to_owned())?;
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "\rloaded {num_events} events over 12 months in {elapsed:.1} s, {inserts} inserts of the ingester's batch size ({:.0} events/s: generate + RowBinary + insert)",
        num_events as f64 / elapsed
    );
    Ok(())
}

/// Batches the write comparison inserts on each side.
const WRITE_BATCHES: usize = 10;

/// The events of the first batches, encoded as the ingester's batches.
fn first_batches(num_events: u64, batches: usize) -> Vec<Vec<u8>> {
    let limits = auditlog_ingester::BatchLimits::default();
    let mut encoder = RowEncoder::default();
    let mut out = Vec::new();
    let mut rows = Vec::new();
    let mut in_batch = 0;
    for event in generator(num_events) {
        encoder.encode(&event, &mut rows);
        in_batch += 1;
        if in_batch == limits.max_rows || rows.len() >= limits.max_bytes {
            out.push(std::mem::take(&mut rows));
            in_batch = 0;
            if out.len() == batches {
                break;
            }
        }
    }
    out
}

/// Rows and bytes ClickHouse writes per inserted event, and the insert time, for the full
/// schema (the table and everything its inserts feed) against the table alone, on the same
/// batches in a scratch database with merges stopped (so each figure is what the inserts
/// themselves wrote).
pub async fn write_amplification(
    root: &clickhouse::Client,
    database: &str,
    num_events: u64,
) -> Result<String, String> {
    let scratch = format!("{database}_writes");
    let run = |sql: String| {
        let root = root.clone();
        async move {
            root.query(&sql)
                .execute()
                .await
                .map_err(|error| format!("{sql}: {error}"))
        }
    };
    run(format!("DROP DATABASE IF EXISTS `{scratch}` SYNC")).await?;
    let target = SchemaTarget {
        database: scratch.clone(),
        table: TABLE.to_owned(),
        retention_days: None,
        cluster: None,
    };
    auditlog_store::migrate(&root.clone().with_database("default"), &target)
        .await
        .map_err(|error| format!("migrate {scratch}: {error}"))?;
    // The same table without the views that hang off `audit_logs`.
    run(format!(
        "CREATE TABLE `{scratch}`.table_alone AS `{scratch}`.`{TABLE}`"
    ))
    .await?;
    run(format!("SYSTEM STOP MERGES `{scratch}`.table_alone")).await?;
    let client = root.clone().with_database(&scratch);
    let tables: Vec<String> = client
        .query("SELECT name FROM system.tables WHERE database = currentDatabase() AND engine LIKE '%MergeTree'")
        .fetch_all()
        .await
        .map_err(|error| error.to_string())?;
    for table in &tables {
        run(format!("SYSTEM STOP MERGES `{scratch}`.`{table}`")).await?;
    }
    let batches = first_batches(num_events, WRITE_BATCHES);
    let (mut alone, mut full) = (Duration::ZERO, Duration::ZERO);
    let mut events = 0_u64;
    for batch in &batches {
        events += count_rows(batch);
        for (table, spent) in [("table_alone", &mut alone), (TABLE, &mut full)] {
            let mut insert = client.insert_formatted_with(format!(
                "INSERT INTO `{table}` ({}) FORMAT RowBinary",
                COLUMNS.join(", ")
            ));
            let started = Instant::now();
            insert
                .send(Bytes::from(batch.clone()))
                .await
                .map_err(|error| format!("insert: {error}"))?;
            insert
                .end()
                .await
                .map_err(|error| format!("insert: {error}"))?;
            *spent += started.elapsed();
        }
    }
    let (alone_rows, alone_bytes, all_rows, all_bytes) = client
        .query(
            "SELECT sumIf(rows, table = 'table_alone'), sumIf(bytes_on_disk, table = 'table_alone'), \
             sumIf(rows, table != 'table_alone'), sumIf(bytes_on_disk, table != 'table_alone') \
             FROM system.parts WHERE active AND database = currentDatabase()",
        )
        .fetch_one::<(u64, u64, u64, u64)>()
        .await
        .map_err(|error| format!("system.parts: {error}"))?;
    run(format!("DROP DATABASE IF EXISTS `{scratch}` SYNC")).await?;
    let per = |value: u64| value as f64 / events.max(1) as f64;
    let micros = |spent: Duration| spent.as_secs_f64() * 1e6 / events.max(1) as f64;
    Ok(format!(
        "writes per inserted event ({events} events in {} batches, merges stopped): the table alone \
         {:.2} rows, {:.0} bytes, {:.1} us; the full schema {:.2} rows, {:.0} bytes, {:.1} us \
         ({:.2}x the rows, {:.2}x the bytes, {:.2}x the time; target <= 1.5x)",
        batches.len(),
        per(alone_rows),
        per(alone_bytes),
        micros(alone),
        per(all_rows),
        per(all_bytes),
        micros(full),
        all_rows as f64 / alone_rows.max(1) as f64,
        all_bytes as f64 / alone_bytes.max(1) as f64,
        full.as_secs_f64() / alone.as_secs_f64().max(1e-9),
    ))
}

/// Rows in a RowBinary batch, by decoding it.
fn count_rows(batch: &[u8]) -> u64 {
    auditlog_store::decode_rows(batch).map_or(0, |rows| rows.len() as u64)
}
