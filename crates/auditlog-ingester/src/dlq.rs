//! The dead-letter topic: poison messages with the reason they could not be ingested.
//!
//! A dead letter is the original key and value, unchanged (a null value stays null), plus
//! headers that say why and where it came from. The source offset is committed only after the
//! dead-letter produce is acknowledged, so a poison message is never lost between the two
//! topics. After a crash it may be dead-lettered twice; `inspect` and `replay` collapse copies
//! by source position.
//!
//! Replay converges: a replayed message carries its original position and the letter it was
//! sent from (`auditlog.replay.*` headers). If it is still poison for the same reason while
//! that letter is still in the dead-letter topic, the letter already records it and no new
//! one is written; otherwise the new letter keeps the original position, so it collapses with
//! the old one. Replayed messages are not counted toward the poison flood stop.
//!
//! ```text
//!  write task ──Poison──▶ producer ──letter: key, value, auditlog.dlq.*──▶ audit-events-dlq
//!      ▲                                                                       │
//!   source ◀── audit-events ◀──key, value, auditlog.replay.*── replay: read, select
//! ```
//!
//! - [`letter`]: the dead letter itself: the `Poison` message, the `DeadLetter` read back,
//!   the `headers` both carry and the `ReplayOrigin` of a replayed message. It depends on no
//!   other module of the crate, so the batcher and the producer both take their types from it.
//! - [`producer`]: the `DeadLetterProducer` the write tasks send poison through (the hot
//!   path).
//! - [`replay`]: the operators' tooling behind `auditlog dlq`: read, select, replay.

pub(crate) mod letter;
pub(crate) mod producer;
pub(crate) mod replay;
