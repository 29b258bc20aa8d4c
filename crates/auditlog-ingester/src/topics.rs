//! The Kafka topics the pipeline needs, created by `auditlog migrate`.
//!
//! Production clusters usually refuse to create topics on first use
//! (`auto.create.topics.enable=false`), and a topic made that way would get the broker's
//! defaults anyway, not the partitions the ingesters scale on. So topics are made on
//! purpose, idempotently: a missing topic is created as configured, an existing one is left
//! exactly as it is. A topic with fewer partitions than configured is reported, never
//! changed: adding partitions moves keys to other partitions, which breaks per-resource
//! ordering, and that is an operator's decision. A topic is never created with fewer replicas
//! than asked for: when the cluster has fewer brokers than that, nothing is created.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use crate::IngestError;

/// How long the broker may take to create a topic or answer for one.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// One topic as configuration wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// Its name.
    pub name: String,
    /// Partitions to create it with.
    pub partitions: i32,
    /// Replicas per partition; `None` takes the broker's `default.replication.factor`.
    pub replication_factor: Option<i32>,
    /// Topic-level configs (`retention.ms`, `min.insync.replicas`, ...) to create it with.
    pub configs: BTreeMap<String, String>,
}

/// What `ensure_topics` found or did for one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicOutcome {
    /// It did not exist and was created as specified.
    Created {
        /// The topic.
        name: String,
        /// Its partitions.
        partitions: i32,
    },
    /// It existed with at least the configured partitions; nothing was changed.
    Exists {
        /// The topic.
        name: String,
        /// Its partitions.
        partitions: i32,
    },
    /// It exists with fewer partitions than configured; nothing was changed.
    FewerPartitions {
        /// The topic.
        name: String,
        /// Partitions it has.
        partitions: i32,
        /// Partitions configuration asks for.
        configured: i32,
    },
}

impl std::fmt::Display for TopicOutcome {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Created { name, partitions } => {
                write!(formatter, "topic {name}: created, {}", plural(*partitions))
            }
            Self::Exists { name, partitions } => {
                write!(formatter, "topic {name}: exists, {}", plural(*partitions))
            }
            Self::FewerPartitions {
                name,
                partitions,
                configured,
            } => write!(
                formatter,
                "topic {name}: exists with {partitions} partitions, fewer than the {configured} configured; \
                 left unchanged (adding partitions re-maps keys: do it by hand if you mean to)"
            ),
        }
    }
}

fn plural(partitions: i32) -> String {
    match partitions {
        1 => "1 partition".to_owned(),
        _ => format!("{partitions} partitions"),
    }
}

/// Creates each topic of `specs` that is missing, and reports every topic's state.
///
/// Fails with [`IngestError::TooFewBrokers`], creating nothing, when a missing topic asks for
/// more replicas than the cluster has brokers.
pub async fn ensure_topics(
    kafka: &ClientConfig,
    specs: &[TopicSpec],
) -> Result<Vec<TopicOutcome>, IngestError> {
    specs.iter().try_for_each(validate)?;
    let admin: AdminClient<DefaultClientContext> = kafka.create()?;
    let cluster = admin.inner().fetch_metadata(None, ADMIN_TIMEOUT)?;
    let existing: Vec<&str> = cluster.topics().iter().map(|topic| topic.name()).collect();
    let missing: Vec<&TopicSpec> = specs
        .iter()
        .filter(|spec| !existing.contains(&spec.name.as_str()))
        .collect();
    check_broker_count(cluster.brokers().len(), &missing)?;
    let options = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT));
    let new_topics: Vec<NewTopic<'_>> = specs
        .iter()
        .map(|spec| {
            let replication = TopicReplication::Fixed(spec.replication_factor.unwrap_or(-1));
            spec.configs.iter().fold(
                NewTopic::new(&spec.name, spec.partitions, replication),
                |topic, (key, value)| topic.set(key, value),
            )
        })
        .collect();
    let results = admin.create_topics(&new_topics, &options).await?;
    let mut outcomes = Vec::with_capacity(specs.len());
    for (spec, result) in specs.iter().zip(results) {
        match result {
            Ok(_) => outcomes.push(TopicOutcome::Created {
                name: spec.name.clone(),
                partitions: spec.partitions,
            }),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {
                let partitions = partition_count(&admin, &spec.name)?;
                outcomes.push(if partitions < spec.partitions {
                    TopicOutcome::FewerPartitions {
                        name: spec.name.clone(),
                        partitions,
                        configured: spec.partitions,
                    }
                } else {
                    TopicOutcome::Exists {
                        name: spec.name.clone(),
                        partitions,
                    }
                });
            }
            Err((name, code)) => {
                return Err(IngestError::Topic {
                    topic: name,
                    message: code.to_string(),
                });
            }
        }
    }
    Ok(outcomes)
}

fn validate(spec: &TopicSpec) -> Result<(), IngestError> {
    if spec.name.is_empty() || spec.partitions < 1 {
        return Err(IngestError::Config(format!(
            "topic {:?} needs a name and at least one partition (got {})",
            spec.name, spec.partitions
        )));
    }
    if spec.replication_factor.is_some_and(|factor| factor < 1) {
        return Err(IngestError::Config(format!(
            "topic {}: the replication factor must be at least 1",
            spec.name
        )));
    }
    if let (Some(factor), Some(min_insync)) = (
        spec.replication_factor,
        spec.configs.get("min.insync.replicas"),
    ) && min_insync
        .trim()
        .parse::<i32>()
        .is_ok_and(|min| min > factor)
    {
        // Every acks=all write to such a topic would fail with NOT_ENOUGH_REPLICAS.
        return Err(IngestError::Config(format!(
            "topic {}: min.insync.replicas {min_insync} is more than the replication factor {factor}",
            spec.name
        )));
    }
    Ok(())
}

/// Refuses to create `missing` topics with more replicas than `brokers`. Kafka would refuse
/// too, but topic by topic and without saying how many brokers there are.
fn check_broker_count(brokers: usize, missing: &[&TopicSpec]) -> Result<(), IngestError> {
    let Some(factor) = missing
        .iter()
        .filter_map(|spec| spec.replication_factor)
        .max()
    else {
        return Ok(());
    };
    if usize::try_from(factor).unwrap_or(usize::MAX) <= brokers {
        return Ok(());
    }
    Err(IngestError::TooFewBrokers {
        brokers,
        replication_factor: factor,
        topics: missing.iter().map(|spec| spec.name.clone()).collect(),
    })
}

fn partition_count(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
) -> Result<i32, IngestError> {
    let metadata = admin.inner().fetch_metadata(Some(topic), ADMIN_TIMEOUT)?;
    metadata
        .topics()
        .iter()
        .find(|entry| entry.name() == topic)
        .map(|entry| entry.partitions().len() as i32)
        .ok_or_else(|| IngestError::MissingTopic {
            topic: topic.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, factor: Option<i32>, min_insync: Option<&str>) -> TopicSpec {
        TopicSpec {
            name: name.to_owned(),
            partitions: 3,
            replication_factor: factor,
            configs: min_insync
                .map(|min| ("min.insync.replicas".to_owned(), min.to_owned()))
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn a_missing_topic_is_not_created_with_more_replicas_than_brokers() {
        let three = spec("events", Some(3), Some("2"));
        let error = check_broker_count(1, &[&three, &spec("dlq", Some(3), None)]).unwrap_err();
        assert!(
            matches!(
                &error,
                IngestError::TooFewBrokers { brokers: 1, replication_factor: 3, topics }
                    if topics == &["events", "dlq"]
            ),
            "{error:?}"
        );
        assert!(error.to_string().contains("1 broker(s)"), "{error}");
        assert!(check_broker_count(3, &[&three]).is_ok());
        // Existing topics are never changed, so their replication does not matter; nor does
        // a topic left to the broker's default.
        assert!(check_broker_count(1, &[]).is_ok());
        assert!(check_broker_count(1, &[&spec("events", None, None)]).is_ok());
    }

    #[test]
    fn min_insync_replicas_above_the_replication_factor_is_refused() {
        let error = validate(&spec("events", Some(1), Some("2"))).unwrap_err();
        assert!(
            error.to_string().contains("min.insync.replicas 2"),
            "{error}"
        );
        assert!(validate(&spec("events", Some(3), Some("2"))).is_ok());
        assert!(validate(&spec("events", Some(0), None)).is_err());
        assert!(validate(&spec("", Some(1), None)).is_err());
    }
}
