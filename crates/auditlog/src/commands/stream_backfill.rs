//! `auditlog stream backfill`: one sink, one range, a summary, and a non-zero exit when the
//! range could not be re-sent.
//!
//! ```text
//!  --sink + [[stream.sinks]] ─▶ SinkConfig ─┐
//!  --from/--to (ClickHouse) or              ├─▶ auditlog_stream::backfill ─▶ summary on stdout
//!  --partition/--from-offset/--to-offset ───┘
//! ```

use std::process::ExitCode;

use anyhow::{Context, Result};
use auditlog_query::QueryRunner;
use auditlog_stream::{BackfillConfig, BackfillRange, BackfillReport};

use crate::cli::BackfillArgs;
use crate::config::{FileConfig, Settings};
use crate::telemetry;

/// Reads from the store may take a while on a large range: each page is bounded, but a busy
/// server answers late.
const PAGE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

pub async fn run(settings: &Settings, args: &BackfillArgs, file: &FileConfig) -> Result<ExitCode> {
    let range = range_of(args)?;
    let sink = auditlog_stream::sinks_from_file(&file.stream, std::slice::from_ref(&args.sink))?
        .into_iter()
        .next()
        .context("the sink was not found")?;
    let store = match range {
        BackfillRange::Time { .. } => {
            Some(QueryRunner::for_config(&settings.clickhouse())?.with_query_timeout(PAGE_TIMEOUT))
        }
        BackfillRange::Offsets { .. } => None,
    };
    let config = BackfillConfig {
        brokers: settings.kafka_brokers.clone(),
        topic: settings.kafka_topic.clone(),
        kafka_properties: settings.kafka_properties.clone(),
        sink,
        retry: auditlog_ingester::RetryPolicy::default(),
    };
    tracing::info!(sink = %config.sink.name, %range, "backfill starting");
    let shutdown = telemetry::shutdown_signal();
    let report = auditlog_stream::backfill(&config, &range, store.as_ref(), shutdown).await?;
    println!("{}", summary(&range, &report));
    if report.refused > 0 {
        eprintln!(
            "error: the destination refused {} event(s) for good (each is in the log with its reason); \
             fix the cause and run the same range again",
            report.refused
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// The range the flags give (clap already made sure one form is complete).
fn range_of(args: &BackfillArgs) -> Result<BackfillRange> {
    let range = match (&args.from, &args.to, args.partition) {
        (Some(from), Some(to), None) => BackfillRange::time(
            BackfillRange::parse_time("--from", from)?,
            BackfillRange::parse_time("--to", to)?,
        )?,
        (None, None, Some(partition)) => BackfillRange::offsets(
            partition,
            args.from_offset.context("--from-offset is required")?,
            args.to_offset.context("--to-offset is required")?,
        )?,
        _ => anyhow::bail!(
            "give either --from TIME --to TIME, or --partition P --from-offset A --to-offset B"
        ),
    };
    Ok(range)
}

fn summary(range: &BackfillRange, report: &BackfillReport) -> String {
    let mut text = format!(
        "backfill to sink {} ({range}): {} read, {} delivered in {} batch(es), {} skipped by the filter, {} malformed, {} refused for good, {} failed attempt(s)",
        report.sink,
        report.read,
        report.delivered,
        report.batches,
        report.filtered,
        report.malformed,
        report.refused,
        report.failures
    );
    if let Some(folder) = &report.archive_folder {
        text.push_str(&format!("; archived under {folder}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command, StreamCommand};

    fn parse(args: &[&str]) -> Result<BackfillArgs, clap::Error> {
        let cli = Cli::try_parse_from(["auditlog", "stream", "backfill"].iter().chain(args))?;
        let Command::Stream(stream) = cli.command else {
            panic!("not the stream command");
        };
        let Some(StreamCommand::Backfill(backfill)) = stream.command else {
            panic!("not backfill");
        };
        Ok(backfill)
    }

    #[test]
    fn one_range_form_is_required_and_complete() {
        let time = parse(&["--sink", "s", "--from", "2026-12-01", "--to", "2026-12-02"]).unwrap();
        assert!(matches!(
            range_of(&time).unwrap(),
            BackfillRange::Time { .. }
        ));
        let offsets = parse(&[
            "--sink",
            "s",
            "--partition",
            "2",
            "--from-offset",
            "10",
            "--to-offset",
            "20",
        ])
        .unwrap();
        assert_eq!(
            range_of(&offsets).unwrap(),
            BackfillRange::offsets(2, 10, 20).unwrap()
        );
        assert!(parse(&["--sink", "s"]).is_err(), "no range");
        assert!(
            parse(&["--sink", "s", "--from", "2026-12-01"]).is_err(),
            "no --to"
        );
        assert!(
            parse(&["--sink", "s", "--partition", "1", "--from-offset", "0"]).is_err(),
            "no --to-offset"
        );
        assert!(
            parse(&[
                "--sink",
                "s",
                "--from",
                "2026-12-01",
                "--to",
                "2026-12-02",
                "--partition",
                "0",
                "--from-offset",
                "0",
                "--to-offset",
                "1"
            ])
            .is_err(),
            "both forms"
        );
        assert!(
            parse(&["--from", "2026-12-01", "--to", "2026-12-02"]).is_err(),
            "no sink"
        );
    }

    #[test]
    fn ranges_are_checked_before_anything_is_read() {
        let reversed =
            parse(&["--sink", "s", "--from", "2026-12-02", "--to", "2026-12-01"]).unwrap();
        assert!(range_of(&reversed).is_err());
        let empty = parse(&[
            "--sink",
            "s",
            "--partition",
            "0",
            "--from-offset",
            "5",
            "--to-offset",
            "5",
        ])
        .unwrap();
        assert!(range_of(&empty).is_err());
    }

    #[test]
    fn the_summary_says_what_was_read_sent_and_skipped() {
        let range = BackfillRange::offsets(0, 0, 10).unwrap();
        let report = BackfillReport {
            sink: "siem".into(),
            read: 10,
            delivered: 7,
            batches: 1,
            filtered: 3,
            ..BackfillReport::default()
        };
        let text = summary(&range, &report);
        assert!(
            text.contains("10 read, 7 delivered in 1 batch(es), 3 skipped by the filter"),
            "{text}"
        );
    }
}
