//! What every sink kind's settings are read with: its own table of the sink's TOML, and
//! secrets given inline or through a named environment variable.

use crate::StreamError;

/// Reads a kind's settings into its own struct, naming the sink in the error.
pub(crate) fn kind_settings<T: serde::de::DeserializeOwned>(
    sink: &str,
    kind: &str,
    settings: toml::Value,
) -> Result<T, StreamError> {
    settings.try_into().map_err(|error: toml::de::Error| {
        StreamError::config(sink, format!("{kind} settings: {}", error.message()))
    })
}

/// A secret given inline or through an environment variable named in the file (so the file
/// itself need not hold it).
pub(crate) fn secret(
    sink: &str,
    key: &str,
    inline: Option<String>,
    env: Option<String>,
) -> Result<Option<String>, StreamError> {
    match (inline, env) {
        (Some(_), Some(_)) => Err(StreamError::config(
            sink,
            format!("give {key} or {key}_env, not both"),
        )),
        (Some(value), None) => Ok(Some(value)),
        (None, Some(variable)) => match std::env::var(&variable) {
            Ok(value) if !value.is_empty() => Ok(Some(value)),
            _ => Err(StreamError::config(
                sink,
                format!("{key}_env names {variable:?}, which is not set"),
            )),
        },
        (None, None) => Ok(None),
    }
}
