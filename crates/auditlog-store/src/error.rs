//! The one error type of the store.

/// Everything the store can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A database, table or cluster name that cannot be put in SQL text.
    #[error("{role} {name:?} is not a valid ClickHouse identifier ([A-Za-z_][A-Za-z0-9_]*)")]
    InvalidIdentifier {
        /// What the name is for: `database`, `table` or `cluster`.
        role: &'static str,
        /// The name as given.
        name: String,
    },
    /// A schema migration failed.
    #[error("migration {version} ({name}) failed: {message}")]
    Migration {
        /// The migration's version number.
        version: u32,
        /// The migration's file name.
        name: String,
        /// What ClickHouse said.
        message: String,
    },
    /// RowBinary bytes that are not rows of the table's columns.
    #[error("undecodable row {row} of a RowBinary answer: {reason}")]
    Decode {
        /// The row's position in the answer.
        row: usize,
        /// What was wrong.
        reason: &'static str,
    },
    /// A role, user or other name of the analysts' access that cannot be put in SQL text.
    #[error("{name:?} is not a valid ClickHouse identifier ([A-Za-z_][A-Za-z0-9_]*)")]
    InvalidAccessName {
        /// The name as given.
        name: String,
    },
    /// A password hash that is not the hex of a SHA-256.
    #[error("a password's SHA-256 is 64 hex digits, got {len} characters")]
    InvalidPasswordHash {
        /// The length of what was given, trimmed.
        len: usize,
    },
    /// Access limited to the nil organization, which no organization-scoped role may have.
    #[error(
        "the nil organization is no organization: site-wide events have it, and an organization-scoped role never sees them"
    )]
    NilOrganization,
}
