//! `auditlog verify`: fills the verifier's options from flags and configuration, runs
//! `auditlog_verify`, and prints its report (or one event's proof) and progress. Exit code
//! 0 when everything holds, 1 on any problem.
//!
//! ```text
//!  flags, [integrity], [retention] ─▶ auditlog_verify::Options ─▶ Verifier ─▶ report ─▶ stdout
//!                                                  progress callback ─▶ stderr
//! ```

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use auditlog_integrity::verify::{self, Report};
use auditlog_verify::{KafkaCheckpoints, Options, Verifier};
use time::format_description::well_known::Rfc3339;

use crate::cli::{CheckpointSource, VerifyArgs, VerifyFormat};
use crate::config::{FileConfig, Settings, trusted_keys};

pub async fn run(settings: &Settings, args: &VerifyArgs, file: &FileConfig) -> Result<ExitCode> {
    if let Some(url) = &args.archive {
        let endpoint = args.archive_endpoint.as_deref();
        let keys_given = !args.public_keys.is_empty() || !file.integrity.public_keys.is_empty();
        let trusted = keys_given
            .then(|| trusted_keys(&args.public_keys, file))
            .transpose()?;
        return super::verify_archive::run(url, endpoint, trusted.as_ref(), args.format).await;
    }
    let trusted = trusted_keys(&args.public_keys, file)?;
    let sources = if args.checkpoints.is_empty() {
        vec![CheckpointSource::ClickHouse, CheckpointSource::Kafka]
    } else {
        args.checkpoints.clone()
    };
    let window = match (&args.event, &args.from, &args.to) {
        (Some(_), _, _) | (None, None, None) => None,
        (None, from, to) => Some((
            from.as_deref().map_or(Ok(i64::MIN), parse_time)?,
            to.as_deref().map_or(Ok(i64::MAX), parse_time)?,
        )),
    };
    let retention_days = args
        .retention_days
        .or(file.retention.days)
        .filter(|days| *days > 0);
    let verifier = Verifier::new(Options {
        clickhouse: settings.clickhouse(),
        topic: settings.kafka_topic.clone(),
        kafka: KafkaCheckpoints {
            client: settings.kafka_client_config(),
            topic: settings.kafka_checkpoint_topic.clone(),
        },
        sources: sources.iter().map(source).collect(),
        trusted,
        window,
        partition: args.partition,
        retention_days,
    });
    if let Some(id) = args.event {
        return prove(&verifier, id, args.format).await;
    }
    let mut progress = Progress::new(!args.no_progress);
    let report = verifier
        .verify(|report, events| progress.tick(report, events))
        .await?;
    progress.finish(&report);
    print_report(&report, args.format, retention_days)?;
    Ok(if report.is_valid() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The command line's source, as the verifier names it.
fn source(source: &CheckpointSource) -> auditlog_verify::CheckpointSource {
    match source {
        CheckpointSource::ClickHouse => auditlog_verify::CheckpointSource::ClickHouse,
        CheckpointSource::Kafka => auditlog_verify::CheckpointSource::Kafka,
        CheckpointSource::File(path) => auditlog_verify::CheckpointSource::File(path.clone()),
    }
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

/// `verify --event ID`: the proof, checked against the trusted keys.
async fn prove(verifier: &Verifier, id: uuid::Uuid, format: VerifyFormat) -> Result<ExitCode> {
    let checked = verifier.prove(id).await?;
    let proof = &checked.proof;
    match format {
        VerifyFormat::Json => println!("{}", serde_json::to_string_pretty(proof)?),
        VerifyFormat::Text => match &checked.verdict {
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
    Ok(match checked.verdict {
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
