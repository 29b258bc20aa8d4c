//! The Kafka topics the pipeline needs, created by `auditlog migrate`.
//!
//! Production clusters usually refuse to create topics on first use
//! (`auto.create.topics.enable=false`), and a topic made that way would get the broker's
//! defaults anyway, not the partitions the ingesters scale on. So topics are made on
//! purpose, idempotently: a missing topic is created as configured, an existing one is left
//! exactly as it is. A topic with fewer partitions than configured is reported, never
//! changed: adding partitions moves keys to other partitions, which breaks per-resource
//! ordering, and that is an operator's decision.

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
pub async fn ensure_topics(
    kafka: &ClientConfig,
    specs: &[TopicSpec],
) -> Result<Vec<TopicOutcome>, IngestError> {
    for spec in specs {
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
    }
    let admin: AdminClient<DefaultClientContext> = kafka.create()?;
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
