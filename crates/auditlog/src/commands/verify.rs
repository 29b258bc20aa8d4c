//! `auditlog verify`: recompute every batch digest from the stored rows, walk each
//! partition's chain back from the newest signed checkpoint, and name whatever does not hold.
//!
//! ```text
//!  checkpoints (clickhouse, kafka, files) ─┐
//!  ingest_digests, by partition ───────────┼─▶ auditlog_integrity::verify ─▶ report, exit 0/1
//!  audit_logs, by partition and offset ────┘
//! ```

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use auditlog_integrity::verify::{self, PartitionChain, Problem, Report};
use auditlog_integrity::{Envelope, TrustedKeys};
use auditlog_query::Visibility;
use auditlog_store::{DigestRow, split_stored_rows};
use time::format_description::well_known::Rfc3339;

use crate::cli::{CheckpointSource, VerifyArgs, VerifyFormat};
use crate::config::{FileConfig, Settings, trusted_keys};
use crate::evidence::{Evidence, ProofOutcome};

/// Leaves read from ClickHouse in one request (60 bytes each are kept while it is checked).
const CHUNK_LEAVES: u32 = 2_000_000;

/// Chunks fetched ahead of the one being checked.
const PREFETCH_CHUNKS: usize = 2;

/// Uncovered events listed one by one; the rest are counted.
const MAX_LISTED_UNCOVERED: u64 = 1_000;

pub async fn run(settings: &Settings, args: &VerifyArgs, file: &FileConfig) -> Result<ExitCode> {
    let trusted = trusted_keys(&args.public_keys, file)?;
    let evidence = Evidence::new(&settings.clickhouse(), &settings.kafka_topic);
    let sources = if args.checkpoints.is_empty() {
        vec![CheckpointSource::ClickHouse, CheckpointSource::Kafka]
    } else {
        args.checkpoints.clone()
    };
    let mut report = Report::default();
    let mut copies = Vec::new();
    for source in &sources {
        copies.push((
            source.to_string(),
            read_checkpoints(settings, &evidence, source, &mut report).await?,
        ));
    }
    if let Some(id) = args.event {
        let envelopes = copies.into_iter().flat_map(|(_, list)| list).collect();
        return prove(&evidence, &trusted, id, envelopes, args.format).await;
    }
    let window = match (&args.from, &args.to) {
        (None, None) => None,
        (from, to) => Some((
            from.as_deref().map_or(Ok(i64::MIN), parse_time)?,
            to.as_deref().map_or(Ok(i64::MAX), parse_time)?,
        )),
    };
    let retention_days = args
        .retention_days
        .or(file.retention.days)
        .filter(|days| *days > 0);
    let expired_before = retention_days.map(|days| {
        auditlog_event::unix_micros_saturating(time::OffsetDateTime::now_utc())
            .saturating_sub(i64::from(days) * 86_400 * 1_000_000)
    });

    let heads = verify::check_checkpoints(&copies, &trusted, evidence.topic(), &mut report);

    let partitions: Vec<i32> = match args.partition {
        Some(partition) => vec![partition],
        None => {
            let mut partitions = evidence.partitions().await?;
            partitions.extend(heads.keys().copied());
            partitions.sort_unstable();
            partitions.dedup();
            partitions
        }
    };
    let mut progress = Progress::new(!args.no_progress);
    let mut spans = BTreeMap::new();
    // The newest digest read per partition: rows past it are checked at the end, against
    // the digests recorded meanwhile.
    let mut tails = BTreeMap::new();
    let mut chains = Vec::new();
    for partition in partitions {
        let partition_heads = heads.get(&partition).map_or(&[][..], Vec::as_slice);
        let bounds = match window {
            None => None,
            Some((from, to)) => match evidence.offset_window(partition, from, to).await? {
                // Reach up to the first signed head at or after the window, so that the
                // window's batches are walked from a signature.
                Some((first, last)) => Some((
                    first,
                    partition_heads
                        .iter()
                        .map(|head| head.last_offset)
                        .filter(|offset| *offset >= last)
                        .min()
                        .unwrap_or(last),
                )),
                None => continue,
            },
        };
        let digests = evidence.digests(partition, bounds).await?;
        let chain = PartitionChain::walk(
            partition,
            digests,
            partition_heads,
            bounds.map(|(first, _)| first),
            &mut report,
        );
        report.unsigned_batches += chain
            .batches()
            .filter(|batch| {
                chain
                    .signed_up_to
                    .is_none_or(|signed| batch.last_offset > signed)
            })
            .count() as u64;
        if let Some(tail) = chain.rows.iter().map(|row| row.last_offset).max() {
            tails.insert(partition, tail);
        }
        spans.insert(partition, chain.spans());
        chains.push(chain);
    }
    check_rows(
        &evidence,
        &chains,
        expired_before,
        &mut report,
        &mut progress,
    )
    .await?;

    let (outside, bytes) = evidence
        .outside_rows(&spans, &tails, args.partition, window, MAX_LISTED_UNCOVERED)
        .await?;
    let listed = split_stored_rows(&bytes)?;
    verify::uncovered(
        &listed,
        "is covered by no batch on the chain: no digest records its partition and offset",
        &mut report,
    );
    if outside > listed.len() as u64 {
        report.problems.push(Problem::MoreUncoveredEvents {
            count: outside - listed.len() as u64,
        });
    }
    check_late_rows(&evidence, &tails, args.partition, window, &mut report).await?;
    if report.batches.total > 0 && heads.is_empty() {
        report.problems.push(Problem::NothingSigned {
            batches: report.batches.total,
        });
    }
    progress.finish(&report);
    print_report(&report, args.format, retention_days)?;
    Ok(if report.is_valid() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
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
    progress: &mut Progress,
) -> Result<()> {
    use futures::StreamExt as _;

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
    let mut fetched = futures::stream::iter(windows.into_iter().map(|mut window| async move {
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
        progress.tick(
            report,
            window.iter().map(|batch| u64::from(batch.num_events)).sum(),
        );
    }
    Ok(())
}

/// Rows past the newest digest read: an ingester records a batch's digest before inserting
/// its rows, so each such row that is real lies in a digest recorded by now. Their contents
/// are the next run's to check; their position is checked here.
async fn check_late_rows(
    evidence: &Evidence,
    tails: &BTreeMap<i32, i64>,
    only_partition: Option<i32>,
    window: Option<(i64, i64)>,
    report: &mut Report,
) -> Result<()> {
    let late = evidence
        .late_rows(tails, only_partition, window, 100_000)
        .await?;
    let mut ranges: BTreeMap<i32, Vec<(i64, i64)>> = BTreeMap::new();
    for (id, partition, offset) in late {
        if let std::collections::btree_map::Entry::Vacant(entry) = ranges.entry(partition) {
            let tail = tails.get(&partition).copied().unwrap_or(i64::MAX);
            entry.insert(evidence.ranges_after(partition, tail).await?);
        }
        let covered = ranges[&partition]
            .iter()
            .any(|(first, last)| (*first..=*last).contains(&offset));
        if covered {
            report.unchecked_late_events += 1;
        } else {
            report.problems.push(Problem::UncoveredEvent {
                id,
                partition,
                offset,
                reason: "lies past the end of the chain, where no digest records it".to_owned(),
            });
        }
    }
    Ok(())
}

async fn read_checkpoints(
    settings: &Settings,
    evidence: &Evidence,
    source: &CheckpointSource,
    report: &mut Report,
) -> Result<Vec<Envelope>> {
    let raw: Vec<Vec<u8>> = match source {
        CheckpointSource::ClickHouse => return evidence.checkpoint_envelopes().await,
        CheckpointSource::Kafka => {
            let kafka = settings.kafka_client_config();
            let topic = settings.kafka_checkpoint_topic.clone();
            tokio::task::spawn_blocking(move || {
                auditlog_ingester::read_checkpoint_topic(&kafka, &topic)
            })
            .await?
            .with_context(|| {
                format!(
                    "reading the checkpoints from kafka topic {:?}",
                    settings.kafka_checkpoint_topic
                )
            })?
        }
        CheckpointSource::File(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading checkpoints from {}", path.display()))?
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| line.as_bytes().to_vec())
            .collect(),
    };
    let mut envelopes = Vec::new();
    for bytes in raw {
        match serde_json::from_slice::<Envelope>(&bytes) {
            Ok(envelope) => envelopes.push(envelope),
            Err(error) => report.problems.push(Problem::MalformedCheckpoint {
                source: source.to_string(),
                reason: format!("not a checkpoint envelope: {error}"),
            }),
        }
    }
    Ok(envelopes)
}

fn print_report(report: &Report, format: VerifyFormat, retention_days: Option<u32>) -> Result<()> {
    if format == VerifyFormat::Json {
        #[derive(serde::Serialize)]
        struct Document<'a> {
            valid: bool,
            summary: String,
            #[serde(flatten)]
            report: &'a Report,
            problem_texts: Vec<String>,
        }
        let document = Document {
            valid: report.is_valid(),
            summary: report.summary(),
            report,
            problem_texts: report.problems.iter().map(ToString::to_string).collect(),
        };
        println!("{}", serde_json::to_string_pretty(&document)?);
        return Ok(());
    }
    println!("{}", report.summary());
    if report.expired_events > 0 {
        println!(
            "{} event(s) expired: their batches lie wholly before the retention boundary ({} days)",
            report.expired_events,
            retention_days.unwrap_or_default()
        );
    }
    if report.unsigned_batches > 0 {
        println!(
            "{} batch(es) after the newest checkpoint: checked, but not yet signed",
            report.unsigned_batches
        );
    }
    if report.unchecked_late_events > 0 {
        println!(
            "{} event(s) arrived while verify ran: their batches were recorded meanwhile, \
             the next run checks them",
            report.unchecked_late_events
        );
    }
    if report.off_chain_batches > 0 {
        println!(
            "{} digest row(s) on no chain (a replaced ingester's branch): ignored",
            report.off_chain_batches
        );
    }
    if report.is_valid() {
        println!("valid");
    } else {
        println!("INVALID: {} problem(s)", report.problems.len());
        for problem in &report.problems {
            println!("  {problem}");
        }
    }
    Ok(())
}

/// `verify --event ID`: the proof, checked here too.
async fn prove(
    evidence: &Evidence,
    trusted: &TrustedKeys,
    id: uuid::Uuid,
    checkpoints: Vec<Envelope>,
    format: VerifyFormat,
) -> Result<ExitCode> {
    let proof = match evidence
        .proof(id, &Visibility::All, Some(checkpoints))
        .await?
    {
        ProofOutcome::Proof(proof) => proof,
        ProofOutcome::NotFound => bail!("no event {id} is stored"),
        ProofOutcome::Unprovable(reason) => bail!("event {id} cannot be proven: {reason}"),
    };
    let checked = proof.check(trusted);
    match format {
        VerifyFormat::Json => println!("{}", serde_json::to_string_pretty(&proof)?),
        VerifyFormat::Text => match &checked {
            Ok(signed) => println!(
                "event {id}: valid\n  partition {} offset {}, leaf {} of batch {}..={} (root {})\n  \
                 {} link(s) to the checkpoint signed at {} by key {}",
                proof.partition,
                proof.offset,
                proof.leaf_index,
                proof.batch.first_offset,
                proof.batch.last_offset,
                proof.batch.root,
                proof.links.len(),
                verify::format_micros(signed.checkpoint.time_micros),
                signed.checkpoint.key_id
            ),
            Err(error) => println!("event {id}: INVALID: {error}"),
        },
    }
    Ok(match checked {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            if format == VerifyFormat::Json {
                eprintln!("error: event {id}: {error}");
            }
            ExitCode::FAILURE
        }
    })
}

/// RFC 3339, or a bare date (midnight UTC), as µs since the epoch.
fn parse_time(text: &str) -> Result<i64> {
    let time = time::OffsetDateTime::parse(text, &Rfc3339)
        .or_else(|_| {
            time::Date::parse(
                text,
                time::macros::format_description!("[year]-[month]-[day]"),
            )
            .map(|date| date.midnight().assume_utc())
        })
        .with_context(|| format!("{text:?} is neither RFC 3339 nor a date (YYYY-MM-DD)"))?;
    Ok(auditlog_event::unix_micros_saturating(time))
}

/// Progress on stderr every two seconds, for runs long enough to need it.
struct Progress {
    enabled: bool,
    started: Instant,
    last: Instant,
    rows: u64,
    printed: bool,
}

impl Progress {
    fn new(enabled: bool) -> Self {
        let now = Instant::now();
        Self {
            enabled,
            started: now,
            last: now,
            rows: 0,
            printed: false,
        }
    }

    fn tick(&mut self, report: &Report, rows: u64) {
        self.rows += rows;
        if !self.enabled || self.last.elapsed() < Duration::from_secs(2) {
            return;
        }
        self.last = Instant::now();
        self.printed = true;
        let rate = self.rows as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        let line = format!(
            "verify: {} batches, {} events checked ({rate:.0} events/s)",
            report.batches.total, self.rows
        );
        if std::io::stderr().is_terminal() {
            eprint!("\r{line}");
        } else {
            eprintln!("{line}");
        }
    }

    fn finish(&self, report: &Report) {
        if self.printed {
            if std::io::stderr().is_terminal() {
                eprintln!();
            }
            eprintln!(
                "verify: {} events in {:.1} s, {} problem(s)",
                self.rows,
                self.started.elapsed().as_secs_f64(),
                report.problems.len()
            );
        }
    }
}
