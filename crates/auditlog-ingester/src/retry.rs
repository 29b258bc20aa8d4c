//! The one retry policy of the ingester, for every write it makes: intents, dead letters and
//! inserts, and the intent load that precedes a partition's first batch.
//!
//! ```text
//!  attempt ──ok──▶ done (health and the outage gauge clear)
//!     │
//!     ├─ permanent ─▶ IngestError (the run stops; nothing after the last commit is lost)
//!     └─ transient ─▶ count, report, back off ─▶ attempt again, until the shutdown deadline
//! ```
//!
//! One place decides what is worth another attempt, how long to wait, what is counted and
//! reported, and when to give up, so no stage can retry forever while a stop waits on it.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use auditlog_store::{ServerFailure, error_code};
use rand::Rng;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::stop::Stop;
use crate::{Health, IngestError, metrics as names};

/// How a failure is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorClass {
    /// Network trouble, timeouts, overload, too many parts: wait and try again.
    Transient,
    /// Wrong schema, auth, missing table, malformed data: retrying cannot help.
    Permanent,
}

/// librdkafka produce errors that no re-send can fix; everything else (timeouts, a full
/// queue, brokers away, too few in-sync replicas) clears up by itself.
const PERMANENT_KAFKA_CODES: &[RDKafkaErrorCode] = &[
    RDKafkaErrorCode::MessageSizeTooLarge,
    RDKafkaErrorCode::InvalidMessageSize,
    RDKafkaErrorCode::InvalidMessage,
    RDKafkaErrorCode::InvalidRecord,
    RDKafkaErrorCode::UnknownTopicOrPartition,
    RDKafkaErrorCode::UnknownTopic,
    RDKafkaErrorCode::TopicAuthorizationFailed,
    RDKafkaErrorCode::ClusterAuthorizationFailed,
    RDKafkaErrorCode::Fatal,
];

/// A failure the policy knows how to classify and how to report when it is final.
pub(crate) trait Retryable: Display {
    /// Transient or permanent.
    fn class(&self) -> ErrorClass;
    /// The error that stops the run.
    fn into_permanent(self) -> IngestError;
}

impl Retryable for clickhouse::error::Error {
    fn class(&self) -> ErrorClass {
        match self {
            // A proxy or load balancer answering 502/503/504 carries no ClickHouse code,
            // which reads as unreachable: transient, like the network.
            Self::Network(_) | Self::TimedOut | Self::BadResponse(_)
                if ServerFailure::of(self).is_transient() =>
            {
                ErrorClass::Transient
            }
            _ => ErrorClass::Permanent,
        }
    }

    fn into_permanent(self) -> IngestError {
        let message = self.to_string();
        IngestError::ClickHousePermanent {
            code: error_code(&message),
            message,
        }
    }
}

/// A dead letter the producer refused, with the source position it stands for.
#[derive(Debug)]
pub(crate) struct DeadLetterFailure {
    pub(crate) error: KafkaError,
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
}

impl Display for DeadLetterFailure {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "{} (for {}/{}@{})",
            self.error, self.topic, self.partition, self.offset
        )
    }
}

/// Whether a produce error can clear up by itself.
fn kafka_produce_class(error: &rdkafka::error::KafkaError) -> ErrorClass {
    match error.rdkafka_error_code() {
        Some(code) if PERMANENT_KAFKA_CODES.contains(&code) => ErrorClass::Permanent,
        _ => ErrorClass::Transient,
    }
}

/// A checkpoint produced to its Kafka topic.
impl Retryable for rdkafka::error::KafkaError {
    fn class(&self) -> ErrorClass {
        kafka_produce_class(self)
    }

    fn into_permanent(self) -> IngestError {
        IngestError::Kafka(self)
    }
}

impl Retryable for DeadLetterFailure {
    fn class(&self) -> ErrorClass {
        kafka_produce_class(&self.error)
    }

    fn into_permanent(self) -> IngestError {
        IngestError::DeadLetter {
            topic: self.topic,
            partition: self.partition,
            offset: self.offset,
            message: self.error.to_string(),
        }
    }
}

/// Jittered exponential backoff between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first wait.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt` (1-based): "full jitter" in [d/2, d] with
    /// d = initial · 2^(attempt-1), capped at `max`, so that ingesters that failed together
    /// do not all come back at the same instant.
    pub(crate) fn delay(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(20);
        let nominal = self.initial.saturating_mul(1_u32 << exponent).min(self.max);
        let half = nominal / 2;
        half + rand::rng().random_range(Duration::ZERO..=half)
    }
}

/// What is being retried: its metric label, its log lines, and the health it reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Loading a partition's recorded batch ranges.
    IntentLoad,
    /// Recording a batch's range before its insert.
    Intent,
    /// Sending a batch's poison messages to the dead-letter topic.
    DeadLetter,
    /// Inserting a batch's rows.
    Insert,
    /// Storing a signed checkpoint in ClickHouse.
    Checkpoint,
    /// Producing a signed checkpoint to its Kafka topic.
    CheckpointPublish,
}

impl Stage {
    /// The `stage` label of the retry counter.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::IntentLoad => "intent_load",
            Self::Intent => "intent",
            Self::DeadLetter => "dead_letter",
            Self::Insert => "insert",
            Self::Checkpoint => "checkpoint",
            Self::CheckpointPublish => "checkpoint_publish",
        }
    }

    fn is_clickhouse(self) -> bool {
        !matches!(self, Self::DeadLetter | Self::CheckpointPublish)
    }
}

/// The policy applied: backoff, counting, health, and the shutdown deadline.
#[derive(Debug, Clone)]
pub(crate) struct Retrier {
    policy: RetryPolicy,
    health: Health,
    stop: Stop,
}

impl Retrier {
    pub(crate) fn new(policy: RetryPolicy, health: Health, stop: Stop) -> Self {
        Self {
            policy,
            health,
            stop,
        }
    }

    /// Runs `attempt` until it succeeds, fails permanently, or the shutdown deadline passes
    /// (then [`IngestError::ShutdownDeadline`]: the work is left for a restart to redo).
    pub(crate) async fn run<T, E, F, Fut>(
        &self,
        stage: Stage,
        mut attempt: F,
    ) -> Result<T, IngestError>
    where
        E: Retryable,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut failures = 0_u32;
        loop {
            let outcome = tokio::select! {
                biased;
                outcome = attempt() => outcome,
                () = self.stop.expired() => return Err(IngestError::ShutdownDeadline { stage: stage.label() }),
            };
            match outcome {
                Ok(value) => {
                    if failures > 0 {
                        tracing::info!(stage = stage.label(), failures, "succeeded after retries");
                        self.report(stage, None);
                    }
                    return Ok(value);
                }
                Err(error) if error.class() == ErrorClass::Permanent => {
                    tracing::error!(stage = stage.label(), %error, "failed permanently");
                    return Err(error.into_permanent());
                }
                Err(error) => {
                    failures += 1;
                    metrics::counter!(names::RETRIES, "stage" => stage.label()).increment(1);
                    self.report(stage, Some(error.to_string()));
                    let delay = self.policy.delay(failures);
                    tracing::warn!(stage = stage.label(), %error, failures, ?delay, "failed, retrying");
                    tokio::select! {
                        biased;
                        () = self.stop.expired() => return Err(IngestError::ShutdownDeadline { stage: stage.label() }),
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    fn report(&self, stage: Stage, error: Option<String>) {
        if stage.is_clickhouse() {
            metrics::gauge!(names::CLICKHOUSE_DOWN).set(if error.is_some() { 1.0 } else { 0.0 });
            self.health.set_clickhouse_error(error);
        } else {
            self.health.set_dead_letter_error(error);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn bad_response(body: &str) -> clickhouse::error::Error {
        clickhouse::error::Error::BadResponse(body.into())
    }

    fn fast() -> RetryPolicy {
        RetryPolicy {
            initial: Duration::from_millis(1),
            max: Duration::from_millis(5),
        }
    }

    #[test]
    fn classifies_like_an_operator_would() {
        let too_many_parts =
            bad_response("Code: 252. DB::Exception: Too many parts (300). (TOO_MANY_PARTS)");
        let unknown_table =
            bad_response("Code: 60. DB::Exception: Table x.y does not exist. (UNKNOWN_TABLE)");
        let auth = bad_response(
            "Code: 516. DB::Exception: default: Authentication failed. (AUTHENTICATION_FAILED)",
        );
        assert_eq!(too_many_parts.class(), ErrorClass::Transient);
        assert_eq!(
            clickhouse::error::Error::TimedOut.class(),
            ErrorClass::Transient
        );
        assert_eq!(
            bad_response("502 Bad Gateway").class(),
            ErrorClass::Transient
        );
        assert_eq!(unknown_table.class(), ErrorClass::Permanent);
        assert_eq!(auth.class(), ErrorClass::Permanent);
        assert_eq!(
            clickhouse::error::Error::NotEnoughData.class(),
            ErrorClass::Permanent
        );

        let letter = |code| DeadLetterFailure {
            error: KafkaError::MessageProduction(code),
            topic: "t".into(),
            partition: 0,
            offset: 7,
        };
        assert_eq!(
            letter(RDKafkaErrorCode::MessageTimedOut).class(),
            ErrorClass::Transient
        );
        assert_eq!(
            letter(RDKafkaErrorCode::QueueFull).class(),
            ErrorClass::Transient
        );
        assert_eq!(
            letter(RDKafkaErrorCode::MessageSizeTooLarge).class(),
            ErrorClass::Permanent
        );
        assert!(matches!(
            letter(RDKafkaErrorCode::TopicAuthorizationFailed).into_permanent(),
            IngestError::DeadLetter { offset: 7, .. }
        ));
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let policy = RetryPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
        };
        for attempt in 1..40 {
            let delay = policy.delay(attempt);
            let nominal = Duration::from_millis(100)
                .saturating_mul(1 << attempt.saturating_sub(1).min(20))
                .min(Duration::from_secs(2));
            assert!(
                delay >= nominal / 2 && delay <= nominal,
                "attempt {attempt}: {delay:?}"
            );
        }
    }

    #[tokio::test]
    async fn transient_failures_are_retried_and_reported_until_success() {
        let health = Health::default();
        let (_keep, stop) = Stop::manual();
        let retrier = Retrier::new(fast(), health.clone(), stop);
        let attempts = Arc::new(AtomicU32::new(0));
        let seen_unready = Arc::new(AtomicU32::new(0));
        let value = retrier
            .run(Stage::Insert, || {
                let attempts = Arc::clone(&attempts);
                let seen_unready = Arc::clone(&seen_unready);
                let health = health.clone();
                async move {
                    if health.snapshot().clickhouse_error.is_some() {
                        seen_unready.fetch_add(1, Ordering::Relaxed);
                    }
                    if attempts.fetch_add(1, Ordering::Relaxed) < 3 {
                        Err(bad_response("Code: 252. DB::Exception: Too many parts"))
                    } else {
                        Ok(42)
                    }
                }
            })
            .await
            .expect("succeeds on the fourth attempt");
        assert_eq!(value, 42);
        assert_eq!(attempts.load(Ordering::Relaxed), 4);
        // Attempts 2..4 ran while the outage was reported; success cleared it.
        assert_eq!(seen_unready.load(Ordering::Relaxed), 3);
        assert_eq!(health.snapshot().clickhouse_error, None);
    }

    #[tokio::test]
    async fn a_permanent_failure_stops_at_once() {
        let (_keep, stop) = Stop::manual();
        let retrier = Retrier::new(fast(), Health::default(), stop);
        let attempts = AtomicU32::new(0);
        let error = retrier
            .run(Stage::Intent, || {
                attempts.fetch_add(1, Ordering::Relaxed);
                async { Err::<(), _>(bad_response("Code: 60. DB::Exception: no table")) }
            })
            .await
            .expect_err("permanent");
        assert_eq!(attempts.load(Ordering::Relaxed), 1);
        assert!(matches!(
            error,
            IngestError::ClickHousePermanent { code: Some(60), .. }
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn retrying_gives_up_at_the_shutdown_deadline() {
        let health = Health::default();
        let (deadline_tx, stop) = Stop::manual();
        let retrier = Retrier::new(RetryPolicy::default(), health.clone(), stop);
        let started = tokio::time::Instant::now();
        let deadline = started + Duration::from_secs(30);
        let retrying = tokio::spawn(async move {
            retrier
                .run(Stage::DeadLetter, || async {
                    Err::<(), _>(DeadLetterFailure {
                        error: KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut),
                        topic: "t".into(),
                        partition: 1,
                        offset: 2,
                    })
                })
                .await
        });
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(
            health.snapshot().dead_letter_error.is_some(),
            "the failing dead-letter topic shows"
        );
        deadline_tx.send(Some(deadline)).expect("stop");
        let error = retrying.await.expect("task").expect_err("gives up");
        assert!(matches!(
            error,
            IngestError::ShutdownDeadline {
                stage: "dead_letter"
            }
        ));
        assert_eq!(
            tokio::time::Instant::now(),
            deadline,
            "gave up exactly at the deadline"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_that_hangs_is_abandoned_at_the_deadline() {
        let (_keep, stop) = Stop::at(tokio::time::Instant::now() + Duration::from_secs(3));
        let retrier = Retrier::new(RetryPolicy::default(), Health::default(), stop);
        let error = retrier
            .run(Stage::Insert, || {
                std::future::pending::<Result<(), clickhouse::error::Error>>()
            })
            .await
            .expect_err("abandoned");
        assert!(matches!(
            error,
            IngestError::ShutdownDeadline { stage: "insert" }
        ));
    }
}
