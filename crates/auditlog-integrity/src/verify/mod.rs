//! The verifier's judgement, without I/O: from stored checkpoints, digests and rows to a
//! report that names every problem.
//!
//! ```text
//!  checkpoint copies (clickhouse, kafka, files) ──check_checkpoints──► signed heads + problems
//!  digest rows of a partition + signed heads ──PartitionChain::walk──► the chain, oldest first
//!  each chain batch + its stored rows ──check_batch──► deleted / modified / forged events
//!  rows outside every chain batch ──uncovered──► forged or inserted events
//!  rows past the newest digest read ──late_rows──► arrived meanwhile, or forged
//! ```
//!
//! One module per piece of evidence judged: `checkpoints`, `chain` (digest rows), `batch`
//! (stored rows against their batch), `uncovered` (rows outside every batch), and the
//! `report` they all write to. `auditlog_verify` reads the evidence and calls these in that
//! order; each module's tests build their evidence in memory.
//!
//! The chain is walked backwards from the newest signed head by each batch's recorded
//! previous digest, so branches left by a zombie ingester during a rebalance are simply off
//! the chain, and a deleted or rewritten digest row shows up as a link that leads nowhere.

mod batch;
mod chain;
mod checkpoints;
mod report;
mod uncovered;

#[cfg(test)]
mod fixtures;

pub use batch::{BatchCheck, LeafRow, check_batch, leaf_offsets, leaf_rows};
pub use chain::{PartitionChain, range_of};
pub use checkpoints::{SignedHead, check_checkpoints};
pub use report::{Problem, Report, Tally, format_micros};
pub use uncovered::{NO_DIGEST_RECORDS_IT, late_rows, uncovered};
