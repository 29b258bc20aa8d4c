//! `auditlog dlq inspect|replay`: look at and recover dead-lettered messages.

use anyhow::Result;
use auditlog_ingester::{DeadLetter, DeadLetterFilter};

use crate::cli::{DlqCommand, DlqFilterArgs};
use crate::config::Settings;

fn filter(args: &DlqFilterArgs) -> DeadLetterFilter {
    DeadLetterFilter {
        reason_contains: args.reason.clone(),
        min_source_offset: args.from_offset,
        max_source_offset: args.to_offset,
        source_partition: args.partition,
    }
}

fn read(settings: &Settings, args: &DlqFilterArgs) -> Result<Vec<DeadLetter>> {
    Ok(auditlog_ingester::read_dead_letters(
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

pub async fn run(settings: &Settings, command: &DlqCommand) -> Result<()> {
    match command {
        DlqCommand::Inspect { filter, json } => {
            let letters = tokio::task::block_in_place(|| read(settings, filter))?;
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
            let letters = tokio::task::block_in_place(|| read(settings, filter))?;
            if *dry_run {
                print_table(&letters);
                eprintln!(
                    "dry run: {} dead letters would be sent back to {}",
                    letters.len(),
                    settings.kafka_topic
                );
                return Ok(());
            }
            let num_sent = auditlog_ingester::replay_dead_letters(
                &settings.kafka_client_config(),
                &settings.kafka_topic,
                &letters,
            )
            .await?;
            eprintln!(
                "replayed {num_sent} dead letters to {}",
                settings.kafka_topic
            );
        }
    }
    Ok(())
}
