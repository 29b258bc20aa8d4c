//! The Kafka topics `auditlog migrate` creates, and how many copies of each event they keep.
//!
//! The defaults are a production cluster's: three replicas, two of which must hold an event
//! before an `acks=all` producer (the SDK, the dead-letter producer) is told it is stored, so
//! an acknowledged event survives the loss of any one broker. A one-broker development
//! cluster must ask for 1 and 1 explicitly; nothing lowers them silently.

use std::collections::BTreeMap;

use anyhow::{Result, bail};

use super::{
    DEFAULT_KAFKA_DLQ_PARTITIONS, DEFAULT_KAFKA_PARTITIONS, FileConfig, KafkaFile, Settings, pick,
};
use crate::cli::TopicArgs;

/// Replicas per partition of the topics `migrate` creates.
pub const DEFAULT_KAFKA_REPLICATION_FACTOR: i32 = 3;
/// `min.insync.replicas` of the topics `migrate` creates.
pub const DEFAULT_KAFKA_MIN_INSYNC_REPLICAS: i32 = 2;

const MIN_INSYNC_REPLICAS: &str = "min.insync.replicas";
const REPLICATION_SETTING: &str =
    "--kafka-replication-factor, AUDITLOG_KAFKA_REPLICATION_FACTOR, [kafka] replication_factor";
const MIN_INSYNC_SETTING: &str =
    "--kafka-min-insync-replicas, AUDITLOG_KAFKA_MIN_INSYNC_REPLICAS, [kafka] min_insync_replicas";

/// The topics `auditlog migrate` makes sure of: the audit event topic, the dead letters and
/// the checkpoints, all with the configured replication.
pub fn topic_specs(
    settings: &Settings,
    args: &TopicArgs,
    file: &FileConfig,
) -> Result<Vec<auditlog_ingester::TopicSpec>> {
    let kafka = &file.kafka;
    let replication_factor = pick(
        args.kafka_replication_factor,
        kafka.replication_factor,
        || DEFAULT_KAFKA_REPLICATION_FACTOR,
    );
    if replication_factor < 1 {
        bail!(
            "the replication factor ({REPLICATION_SETTING}) must be at least 1, not \
             {replication_factor}"
        );
    }
    let mut configs: BTreeMap<String, String> = kafka
        .topic_config
        .clone()
        .into_iter()
        .chain(args.kafka_topic_config.iter().cloned())
        .collect();
    let min_insync = min_insync_replicas(args, kafka, &configs)?;
    if min_insync < 1 || min_insync > replication_factor {
        bail!(
            "min.insync.replicas ({MIN_INSYNC_SETTING}) is {min_insync}; it must be between 1 \
             and the replication factor, {replication_factor} ({REPLICATION_SETTING}). A \
             one-broker development cluster takes 1 and 1"
        );
    }
    configs.insert(MIN_INSYNC_REPLICAS.to_owned(), min_insync.to_string());
    Ok(vec![
        auditlog_ingester::TopicSpec {
            name: settings.kafka_topic.clone(),
            partitions: pick(args.kafka_partitions, kafka.partitions, || {
                DEFAULT_KAFKA_PARTITIONS
            }),
            replication_factor: Some(replication_factor),
            configs: configs.clone(),
        },
        auditlog_ingester::TopicSpec {
            name: settings.kafka_dlq_topic.clone(),
            partitions: pick(args.kafka_dlq_partitions, kafka.dlq_partitions, || {
                DEFAULT_KAFKA_DLQ_PARTITIONS
            }),
            replication_factor: Some(replication_factor),
            configs: configs.clone(),
        },
        // The copy of the checkpoints outside ClickHouse: one partition (a few messages a
        // minute) kept for ever, whatever retention the other topics have.
        auditlog_ingester::TopicSpec {
            name: settings.kafka_checkpoint_topic.clone(),
            partitions: 1,
            replication_factor: Some(replication_factor),
            configs: configs
                .into_iter()
                .chain([
                    ("retention.ms".to_owned(), "-1".to_owned()),
                    ("retention.bytes".to_owned(), "-1".to_owned()),
                    ("cleanup.policy".to_owned(), "delete".to_owned()),
                ])
                .collect(),
        },
    ])
}

/// The setting, else `min.insync.replicas` among the topic configs (where it could be given
/// before it was a setting of its own), else the default. Both given and different is an
/// error rather than a silent choice between them.
fn min_insync_replicas(
    args: &TopicArgs,
    kafka: &KafkaFile,
    configs: &BTreeMap<String, String>,
) -> Result<i32> {
    let setting = args.kafka_min_insync_replicas.or(kafka.min_insync_replicas);
    let in_topic_config = match configs.get(MIN_INSYNC_REPLICAS) {
        Some(text) => match text.trim().parse::<i32>() {
            Ok(value) => Some(value),
            Err(_) => bail!("the topic config {MIN_INSYNC_REPLICAS}={text:?} is not a number"),
        },
        None => None,
    };
    match (setting, in_topic_config) {
        (Some(setting), Some(config)) if setting != config => bail!(
            "min.insync.replicas ({MIN_INSYNC_SETTING}) is {setting} but the topic config \
             {MIN_INSYNC_REPLICAS} is {config}: give one of them"
        ),
        (setting, config) => Ok(setting
            .or(config)
            .unwrap_or(DEFAULT_KAFKA_MIN_INSYNC_REPLICAS)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::GlobalArgs;

    fn specs(args: &TopicArgs, toml: &str) -> Result<Vec<auditlog_ingester::TopicSpec>> {
        let file: FileConfig = toml::from_str(toml).unwrap();
        let settings = Settings::resolve(&GlobalArgs::default(), &file).unwrap();
        topic_specs(&settings, args, &file)
    }

    /// (replication factor, min.insync.replicas) of every topic, which must agree.
    fn replication(specs: &[auditlog_ingester::TopicSpec]) -> (i32, String) {
        let first = (
            specs[0].replication_factor.unwrap(),
            specs[0].configs[MIN_INSYNC_REPLICAS].clone(),
        );
        for spec in specs {
            assert_eq!(spec.replication_factor, Some(first.0), "{spec:?}");
            assert_eq!(spec.configs[MIN_INSYNC_REPLICAS], first.1, "{spec:?}");
        }
        first
    }

    #[test]
    fn production_replication_by_default() {
        let specs = specs(&TopicArgs::default(), "").unwrap();
        assert_eq!(specs.len(), 3);
        assert_eq!(replication(&specs), (3, "2".to_owned()));
    }

    #[test]
    fn flags_beat_the_file() {
        let toml = "[kafka]\nreplication_factor = 5\nmin_insync_replicas = 3\n";
        assert_eq!(
            replication(&specs(&TopicArgs::default(), toml).unwrap()),
            (5, "3".to_owned())
        );
        let args = TopicArgs {
            kafka_replication_factor: Some(1),
            kafka_min_insync_replicas: Some(1),
            ..TopicArgs::default()
        };
        assert_eq!(
            replication(&specs(&args, toml).unwrap()),
            (1, "1".to_owned())
        );
    }

    #[test]
    fn the_topic_config_may_still_carry_min_insync_replicas() {
        let toml = "[kafka]\nreplication_factor = 3\n[kafka.topic_config]\n\"min.insync.replicas\" = \"3\"\n";
        assert_eq!(
            replication(&specs(&TopicArgs::default(), toml).unwrap()),
            (3, "3".to_owned())
        );
        let same = TopicArgs {
            kafka_min_insync_replicas: Some(3),
            ..TopicArgs::default()
        };
        assert!(specs(&same, toml).is_ok());
        let other = TopicArgs {
            kafka_min_insync_replicas: Some(2),
            ..TopicArgs::default()
        };
        let error = specs(&other, toml).unwrap_err().to_string();
        assert!(error.contains("--kafka-min-insync-replicas"), "{error}");
        assert!(
            error.contains("topic config min.insync.replicas is 3"),
            "{error}"
        );
    }

    #[test]
    fn a_lower_replication_factor_needs_a_lower_min_insync_replicas() {
        let args = TopicArgs {
            kafka_replication_factor: Some(1),
            ..TopicArgs::default()
        };
        let error = specs(&args, "").unwrap_err().to_string();
        assert!(
            error.contains("--kafka-min-insync-replicas")
                && error.contains("AUDITLOG_KAFKA_MIN_INSYNC_REPLICAS")
                && error.contains("is 2")
                && error.contains("replication factor, 1"),
            "{error}"
        );
        for (factor, min_insync) in [(0, 1), (3, 0)] {
            let args = TopicArgs {
                kafka_replication_factor: Some(factor),
                kafka_min_insync_replicas: Some(min_insync),
                ..TopicArgs::default()
            };
            assert!(specs(&args, "").is_err(), "{factor}/{min_insync}");
        }
    }
}
