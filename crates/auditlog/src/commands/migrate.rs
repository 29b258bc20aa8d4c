//! `auditlog migrate`: create the Kafka topics, then apply the ClickHouse schema and the
//! retention TTL. Both halves are idempotent; `--topics-only` and `--skip-topics` run one.

use anyhow::{Result, anyhow};

use crate::cli::MigrateCommandArgs;
use crate::config::{FileConfig, Settings, topic_specs};

pub async fn run(settings: &Settings, args: &MigrateCommandArgs, file: &FileConfig) -> Result<()> {
    if !args.skip_topics {
        let specs = topic_specs(settings, &args.topics, file)?;
        let outcomes = auditlog_ingester::ensure_topics(&settings.kafka_client_config(), &specs)
            .await
            .map_err(|error| match error {
                // Said in the terms of the settings, since lowering them is one way out.
                auditlog_ingester::IngestError::TooFewBrokers {
                    brokers,
                    replication_factor,
                    topics,
                } => anyhow!(
                    "the kafka cluster at {} has {brokers} broker(s), fewer than the replication \
                     factor {replication_factor} (--kafka-replication-factor, \
                     AUDITLOG_KAFKA_REPLICATION_FACTOR, [kafka] replication_factor; 3 by \
                     default) to create {} with. Add brokers, or lower it together with \
                     --kafka-min-insync-replicas (AUDITLOG_KAFKA_MIN_INSYNC_REPLICAS, [kafka] \
                     min_insync_replicas): a one-broker development cluster takes 1 and 1",
                    settings.kafka_brokers,
                    topics.join(", ")
                ),
                other => anyhow::Error::new(other).context(format!(
                    "creating the kafka topics on {}",
                    settings.kafka_brokers
                )),
            })?;
        for outcome in &outcomes {
            if matches!(
                outcome,
                auditlog_ingester::TopicOutcome::FewerPartitions { .. }
            ) {
                tracing::warn!(%outcome, "topic has fewer partitions than configured");
            }
            println!("{outcome}");
        }
    }
    if args.topics_only {
        return Ok(());
    }
    let target = settings.schema_target(&args.schema, file);
    let client = settings
        .clickhouse()
        .client()
        // Migrations create the database, so they must not select it first.
        .with_database("default");
    let report = auditlog_store::migrate(&client, &target).await?;
    println!(
        "schema of {}.{} is current: applied {:?}, already applied {:?}, retention {}",
        target.database,
        target.table,
        report.applied,
        report.already_applied,
        report.retention_days.map_or_else(
            || "off (keep forever)".to_owned(),
            |days| format!("{days} days")
        ),
    );
    Ok(())
}
