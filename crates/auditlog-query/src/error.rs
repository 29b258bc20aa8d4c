//! The one error type of the query crate, and the one rejection behind Coder's 400 bodies
//! for a bad filter and for bad paging.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};

/// Everything that can go wrong while parsing a filter, resolving it or building its SQL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The filter text is invalid; serialize the payload for Coder's HTTP 400 body.
    #[error("invalid audit search query: {0}")]
    InvalidQuery(InvalidQuery),
    /// An `after` cursor that this crate did not issue, or that was damaged on the way.
    #[error("invalid cursor: {reason}")]
    InvalidCursor {
        /// What was wrong with it, for the client.
        reason: String,
    },
    /// A database or table name that could not be written into SQL text safely.
    #[error("invalid {role} name {name:?}: expected [A-Za-z_][A-Za-z0-9_]*")]
    InvalidIdentifier {
        /// Which name: `database` or `table`.
        role: &'static str,
        /// The rejected name.
        name: String,
    },
    /// ClickHouse failed the query, or could not be reached; not the client's fault.
    #[error("clickhouse query failed: {message}")]
    ClickHouse {
        /// The client's or the server's description (never credentials).
        message: String,
    },
    /// The query ran longer than allowed (ClickHouse's TIMEOUT_EXCEEDED or the client's own
    /// timeout); the API answers 503.
    #[error("the query exceeded its time limit of {limit:?}")]
    Timeout {
        /// The limit that was exceeded.
        limit: Duration,
    },
}

impl From<auditlog_store::StoreError> for Error {
    fn from(error: auditlog_store::StoreError) -> Self {
        match error {
            auditlog_store::StoreError::InvalidIdentifier { role, name } => {
                Error::InvalidIdentifier { role, name }
            }
            other => Error::ClickHouse {
                message: other.to_string(),
            },
        }
    }
}

/// One problem with one field of the query, as Coder reports it (`codersdk.ValidationError`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Validation {
    /// The filter key at fault, or `q` for an error in the query's structure.
    pub field: String,
    /// Coder's sentence describing the problem, verbatim.
    pub detail: String,
}

impl Validation {
    /// A validation of `field` with Coder's `detail` text.
    pub fn new(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            detail: detail.into(),
        }
    }
}

/// A rejected request, bad filter or bad paging: the validations, in the order Coder reports
/// them (never empty), and which of the two it is, which only changes the message.
///
/// Serializes to Coder's HTTP 400 body:
/// `{"message":"Invalid audit search query.","validations":[{"field":...,"detail":...}]}`,
/// or with `"Query parameters have invalid values."` for paging and other URL parameters.
///
/// ```
/// use auditlog_query::{AuditFilter, Error};
///
/// let Err(Error::InvalidQuery(invalid)) = AuditFilter::parse("action:explode") else {
///     panic!("expected an invalid query");
/// };
/// assert_eq!(
///     serde_json::to_string(&invalid).unwrap(),
///     r#"{"message":"Invalid audit search query.","validations":[{"field":"action","detail":"Query param \"action\" has invalid value: \"explode\" is not a valid value"}]}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidQuery {
    part: RejectedPart,
    validations: Vec<Validation>,
}

/// Which part of the request was rejected; Coder words the two 400s differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RejectedPart {
    /// The filter `q`.
    Filter,
    /// The URL query parameters around it (`limit`, `offset`, `after`, `format`, ...).
    Params,
}

impl InvalidQuery {
    /// The `message` of Coder's 400 body for a bad `q`.
    pub const FILTER_MESSAGE: &'static str = "Invalid audit search query.";

    /// The `message` of Coder's 400 body for bad query parameters.
    pub const PARAMS_MESSAGE: &'static str = "Query parameters have invalid values.";

    /// A filter rejected for these reasons (at least one).
    pub(crate) fn filter(validations: Vec<Validation>) -> Self {
        Self::new(RejectedPart::Filter, validations)
    }

    /// Query parameters rejected for these reasons (at least one).
    pub fn params(validations: Vec<Validation>) -> Self {
        Self::new(RejectedPart::Params, validations)
    }

    fn new(part: RejectedPart, validations: Vec<Validation>) -> Self {
        debug_assert!(!validations.is_empty(), "a rejection has a reason");
        Self { part, validations }
    }

    /// The `message` of Coder's 400 body: [`Self::FILTER_MESSAGE`] or [`Self::PARAMS_MESSAGE`].
    pub fn message(&self) -> &'static str {
        match self.part {
            RejectedPart::Filter => Self::FILTER_MESSAGE,
            RejectedPart::Params => Self::PARAMS_MESSAGE,
        }
    }

    /// The problems found, in Coder's order.
    pub fn validations(&self) -> &[Validation] {
        &self.validations
    }

    /// Takes the problems out.
    pub fn into_validations(self) -> Vec<Validation> {
        self.validations
    }
}

impl fmt::Display for InvalidQuery {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, validation) in self.validations.iter().enumerate() {
            if index > 0 {
                formatter.write_str("; ")?;
            }
            formatter.write_str(&validation.detail)?;
        }
        Ok(())
    }
}

impl Serialize for InvalidQuery {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Body<'a> {
            message: &'static str,
            validations: &'a [Validation],
        }
        Body {
            message: self.message(),
            validations: &self.validations,
        }
        .serialize(serializer)
    }
}

impl From<InvalidQuery> for Error {
    fn from(invalid: InvalidQuery) -> Self {
        Error::InvalidQuery(invalid)
    }
}
