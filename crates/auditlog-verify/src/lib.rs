//! The verifier of `auditlog verify` and of the proof route: reads the integrity evidence
//! out of ClickHouse and Kafka, walks every partition's chain, has
//! `auditlog_integrity::verify` judge it, and builds and checks the proof of one event.
//!
//! ```text
//!  ingest_checkpoints ─┐
//!  checkpoint topic ───┼─ checkpoints ──► verify::check_checkpoints ──► signed heads
//!  file:PATH ──────────┘                                                    │
//!  ingest_digests, by partition ──────► verify::PartitionChain::walk ◄──────┘
//!  audit_logs, by partition and offset ► verify::check_batch (windows, prefetched) ─► Report
//!  audit_logs outside every chain span ► verify::uncovered, verify::late_rows ──────► Report
//!  one event's row + batch + links ────► EventProof (+ check against TrustedKeys)
//! ```
//!
//! This crate only reads and orchestrates; every judgement is `auditlog_integrity`'s, which
//! does no I/O. The binary fills [`Options`] from its flags and configuration and prints
//! what comes back: the report, a progress line, a proof.
//!
//! ```no_run
//! use auditlog_integrity::TrustedKeys;
//! use auditlog_store::ClickHouseConfig;
//! use auditlog_verify::{CheckpointSource, KafkaCheckpoints, Options, Verifier};
//!
//! # async fn example(clickhouse: ClickHouseConfig, public_pem: &str)
//! #     -> Result<(), Box<dyn std::error::Error>> {
//! let mut trusted = TrustedKeys::default();
//! trusted.add_pem(public_pem)?;
//! let mut kafka = rdkafka::ClientConfig::new();
//! kafka.set("bootstrap.servers", "localhost:9092");
//! let verifier = Verifier::new(Options {
//!     clickhouse,
//!     topic: "audit-events".to_owned(),
//!     kafka: KafkaCheckpoints { client: kafka, topic: "audit-events-checkpoints".to_owned() },
//!     sources: vec![CheckpointSource::ClickHouse, CheckpointSource::Kafka],
//!     trusted,
//!     window: None,
//!     partition: None,
//!     retention_days: Some(90),
//! });
//! let report = verifier
//!     .verify(|report, events| eprintln!("{} batches, +{events} events", report.batches.total))
//!     .await?;
//! println!("{}", report.summary());
//! for problem in &report.problems {
//!     println!("  {problem}");
//! }
//! # Ok(())
//! # }
//! ```

mod checkpoints;
mod error;
mod evidence;
mod proof;
mod verifier;

pub use checkpoints::{CheckpointSource, KafkaCheckpoints};
pub use error::VerifyError;
pub use evidence::Evidence;
pub use proof::{CheckedProof, ProofOutcome};
pub use verifier::{Options, Verifier};
