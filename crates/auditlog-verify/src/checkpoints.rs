//! Reading every copy of the checkpoints: the `ingest_checkpoints` table, the checkpoint
//! topic, and files of envelopes. Judging them is `auditlog_integrity::verify`'s.

use std::fmt;
use std::path::PathBuf;

use auditlog_integrity::Envelope;
use auditlog_integrity::verify::{Problem, Report};

use crate::error::VerifyError;
use crate::evidence::Evidence;

/// Where a copy of the checkpoints is read from. Its text (`clickhouse`, `kafka`,
/// `file:PATH`) names the source in the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointSource {
    /// The `ingest_checkpoints` table.
    ClickHouse,
    /// The checkpoint topic.
    Kafka,
    /// A file of envelopes, one JSON object per line.
    File(PathBuf),
}

impl fmt::Display for CheckpointSource {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ClickHouse => formatter.write_str("clickhouse"),
            Self::Kafka => formatter.write_str("kafka"),
            Self::File(path) => write!(formatter, "file:{}", path.display()),
        }
    }
}

/// The checkpoint topic and how to reach its brokers.
#[derive(Debug, Clone)]
pub struct KafkaCheckpoints {
    /// The client settings (brokers and any extra properties).
    pub client: rdkafka::ClientConfig,
    /// The checkpoint topic.
    pub topic: String,
}

/// The envelopes of one source, oldest first. Lines or messages that are no envelope at
/// all are problems of the report, not errors: the rest of the source still counts.
pub(crate) async fn read(
    source: &CheckpointSource,
    evidence: &Evidence,
    kafka: &KafkaCheckpoints,
    report: &mut Report,
) -> Result<Vec<Envelope>, VerifyError> {
    let raw: Vec<Vec<u8>> = match source {
        CheckpointSource::ClickHouse => return evidence.checkpoint_envelopes().await,
        CheckpointSource::Kafka => {
            let (client, topic) = (kafka.client.clone(), kafka.topic.clone());
            tokio::task::spawn_blocking(move || {
                auditlog_ingester::read_checkpoint_topic(&client, &topic)
            })
            .await?
            .map_err(|source| VerifyError::Kafka {
                topic: kafka.topic.clone(),
                source,
            })?
        }
        CheckpointSource::File(path) => std::fs::read_to_string(path)
            .map_err(|source| VerifyError::File {
                path: path.clone(),
                source,
            })?
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| line.as_bytes().to_vec())
            .collect(),
    };
    Ok(envelopes(source, raw, report))
}

/// The envelopes among `raw`; the others become problems.
fn envelopes(source: &CheckpointSource, raw: Vec<Vec<u8>>, report: &mut Report) -> Vec<Envelope> {
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
    envelopes
}

#[cfg(test)]
mod tests {
    use auditlog_integrity::{ChainHead, CheckpointSigner};

    use super::*;

    #[test]
    fn sources_are_named_as_on_the_command_line() {
        let names: Vec<String> = [
            CheckpointSource::ClickHouse,
            CheckpointSource::Kafka,
            CheckpointSource::File("/srv/copy.jsonl".into()),
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(names, ["clickhouse", "kafka", "file:/srv/copy.jsonl"]);
    }

    #[test]
    fn a_line_that_is_no_envelope_is_a_problem_and_the_rest_still_counts() {
        let signer = CheckpointSigner::generate();
        let head = ChainHead {
            topic: "audit-events".into(),
            partition: 0,
            last_offset: 9,
            digest: [1; 32],
        };
        let envelope = signer.sign(1, vec![head]).envelope();
        let raw = vec![
            serde_json::to_vec(&envelope).unwrap(),
            b"{\"body\": 1}".to_vec(),
        ];
        let source = CheckpointSource::File("copy.jsonl".into());
        let mut report = Report::default();
        assert_eq!(envelopes(&source, raw, &mut report), vec![envelope]);
        match &report.problems[..] {
            [Problem::MalformedCheckpoint { source, reason }] => {
                assert_eq!(source, "file:copy.jsonl");
                assert!(
                    reason.starts_with("not a checkpoint envelope: "),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
