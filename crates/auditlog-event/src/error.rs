//! The one error type of the event crate.

/// Everything that can go wrong while building, validating or decoding an audit event.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// A string that is not one of the values an enum knows, where no escape was asked for.
    #[error("{kind} has invalid value: {value:?} is not a valid value")]
    UnknownValue {
        /// Which enum: `resource_type`, `action` or `build_reason`.
        kind: &'static str,
        /// The rejected text.
        value: String,
    },
}
