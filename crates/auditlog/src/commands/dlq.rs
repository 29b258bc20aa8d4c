//! `auditlog dlq inspect|replay`: look at and recover dead-lettered messages.

use std::collections::BTreeMap;

use anyhow::Result;
use auditlog_ingester::{DeadLetter, DeadLetterFilter, DeadLetterSelection};

use crate::cli::{DlqCommand, DlqFilterArgs};
use crate::config::Settings;

fn filter(args: &DlqFilterArgs) -> DeadLetterFilter {
    DeadLetterFilter {
        reason_contains: args.reason.clone(),
        kind: args.kind.clone(),
        min_source_offset: args.from_offset,
        max_source_offset: args.to_offset,
        source_partition: args.partition,
    }
}

fn select(settings: &Settings, args: &DlqFilterArgs) -> Result<DeadLetterSelection> {
    Ok(auditlog_ingester::select_dead_letters(
        &settings.kafka_client_config(),
        &settings.kafka_dlq_topic,
        &filter(args),
    )?)
}

fn print_table(letters: &[DeadLetter]) {
    println!(
        "{:<24} {:>9} {:>10} {:<15} {:<25} REASON",
        "SOURCE", "PARTITION", "OFFSET", "KIND", "DEAD-LETTERED AT"
    );
    for letter in letters {
        println!(
            "{:<24} {:>9} {:>10} {:<15} {:<25} {}",
            letter.source_topic,
            letter.source_partition,
            letter.source_offset,
            letter.kind,
            letter.dead_lettered_at,
            letter.reason
        );
    }
}

/// The replay report: what was (or would be) re-sent, by kind and reason, and what was
/// skipped, by why. Stable order, so two runs can be compared line by line.
fn replay_report(selection: &DeadLetterSelection, topic: &str, dry_run: bool) -> String {
    let mut by_reason: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for letter in &selection.letters {
        *by_reason
            .entry((letter.kind.as_str(), letter.reason.as_str()))
            .or_insert(0) += 1;
    }
    let verb = if dry_run { "would re-send" } else { "re-sent" };
    let mut report = format!("{verb} {} to {topic}\n", selection.letters.len());
    for ((kind, reason), count) in by_reason {
        report.push_str(&format!("  {count:>8}  {kind:<15} {reason}\n"));
    }
    report.push_str(&format!("skipped {}\n", selection.skipped.len()));
    for (why, count) in selection.skipped_counts() {
        report.push_str(&format!("  {count:>8}  {why}\n"));
    }
    report
}

pub async fn run(settings: &Settings, command: &DlqCommand) -> Result<()> {
    match command {
        DlqCommand::Inspect { filter, json } => {
            let letters = tokio::task::block_in_place(|| select(settings, filter))?.letters;
            if *json {
                for letter in &letters {
                    println!("{}", serde_json::to_string(letter)?);
                }
            } else {
                print_table(&letters);
                eprintln!(
                    "{} dead letters in {}",
                    letters.len(),
                    settings.kafka_dlq_topic
                );
            }
        }
        DlqCommand::Replay { filter, dry_run } => {
            let selection = tokio::task::block_in_place(|| select(settings, filter))?.replayable();
            if *dry_run {
                print_table(&selection.letters);
            } else {
                auditlog_ingester::replay_dead_letters(
                    &settings.kafka_client_config(),
                    &settings.kafka_topic,
                    &selection.letters,
                )
                .await?;
            }
            print!(
                "{}",
                replay_report(&selection, &settings.kafka_topic, *dry_run)
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use auditlog_ingester::SkipReason;

    use super::*;

    fn letter(kind: &str, reason: &str, source_offset: i64) -> DeadLetter {
        DeadLetter {
            dlq_partition: 0,
            dlq_offset: source_offset,
            source_topic: "audit-events".into(),
            source_partition: 0,
            source_offset,
            source_timestamp_ms: None,
            kind: kind.into(),
            reason: reason.into(),
            dead_lettered_at: String::new(),
            replayed_at: None,
            key: None,
            payload: None,
            payload_bytes: 0,
            payload_null: true,
        }
    }

    #[test]
    fn the_report_counts_what_was_sent_by_reason_and_what_was_skipped_by_why() {
        let selection = DeadLetterSelection {
            letters: vec![
                letter("decode", "truncated datum at id", 1),
                letter("unknown_schema", "unknown schema id 42", 2),
                letter("decode", "truncated datum at id", 3),
            ],
            skipped: vec![
                (
                    SkipReason::NotMatching,
                    letter("decode", "empty message", 4),
                ),
                (SkipReason::Superseded, letter("decode", "empty message", 5)),
                (
                    SkipReason::NotMatching,
                    letter("decode", "empty message", 6),
                ),
            ],
        };
        assert_eq!(
            replay_report(&selection, "audit-events", false),
            "re-sent 3 to audit-events\n\
             \x20        2  decode          truncated datum at id\n\
             \x20        1  unknown_schema  unknown schema id 42\n\
             skipped 3\n\
             \x20        2  not matching the filters\n\
             \x20        1  superseded by a newer letter for the same source position\n"
        );
        assert!(
            replay_report(&DeadLetterSelection::default(), "t", true)
                .starts_with("would re-send 0 to t\n")
        );
    }
}
