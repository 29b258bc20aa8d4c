//! `auditlog verify --archive s3://BUCKET/PREFIX`: checks an archive the `s3` sink wrote,
//! with `auditlog_stream::verify_archive`, and prints what it found. Exit code 0 when the
//! archive is complete and unaltered, 1 otherwise.
//!
//! ```text
//!  --archive, --archive-endpoint, AUDITLOG_S3_* ─▶ verify_archive ─▶ ArchiveReport ─▶ stdout
//! ```

use std::process::ExitCode;

use anyhow::Result;
use auditlog_integrity::TrustedKeys;
use auditlog_stream::{ArchiveReport, verify_archive};

use crate::cli::VerifyFormat;

pub async fn run(
    url: &str,
    endpoint: Option<&str>,
    trusted: Option<&TrustedKeys>,
    format: VerifyFormat,
) -> Result<ExitCode> {
    let report = verify_archive(url, endpoint, trusted).await?;
    print(url, &report, format)?;
    Ok(if report.is_valid() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print(url: &str, report: &ArchiveReport, format: VerifyFormat) -> Result<()> {
    if format == VerifyFormat::Json {
        #[derive(serde::Serialize)]
        struct Document<'a> {
            archive: &'a str,
            valid: bool,
            #[serde(flatten)]
            report: &'a ArchiveReport,
        }
        let document = Document {
            archive: url,
            valid: report.is_valid(),
            report,
        };
        println!("{}", serde_json::to_string_pretty(&document)?);
        return Ok(());
    }
    let events: u64 = report.chains.iter().map(|chain| chain.events).sum();
    let objects: u64 = report.chains.iter().map(|chain| chain.objects).sum();
    println!(
        "archive {url}: {} ({} chain(s), {objects} object(s), {events} event(s), {} problem(s))",
        if report.is_valid() {
            "valid"
        } else {
            "INVALID"
        },
        report.chains.len(),
        report.problems.len()
    );
    for chain in &report.chains {
        println!(
            "  {}/{}: offsets {}..={} in {} manifest(s): {} events, {} filtered, {} malformed",
            chain.topic,
            chain.partition,
            chain.first_offset,
            chain.last_offset,
            chain.manifests,
            chain.events,
            chain.filtered,
            chain.malformed
        );
        match chain.signed_through {
            Some(offset) => println!(
                "    {} signed checkpoint(s), through offset {offset}",
                chain.checkpoints
            ),
            None => println!("    no signed checkpoint"),
        }
    }
    for run in &report.backfill_runs {
        println!(
            "  backfill {} ({}): {} object(s), {} events, {} filtered",
            run.folder, run.range, run.objects, run.events, run.filtered
        );
    }
    if !report.signatures_checked {
        println!("checkpoint signatures not checked: give --public-key");
    }
    if !report.unmanifested.is_empty() {
        println!(
            "{} object(s) after the newest manifests, not yet listed (a running sink's next manifest lists them)",
            report.unmanifested.len()
        );
    }
    for problem in &report.problems {
        println!("problem: {problem}");
    }
    Ok(())
}
