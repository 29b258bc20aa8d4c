//! `auditlog serve`.

use anyhow::{Result, bail};

use crate::cli::ServeArgs;
use crate::config::{FileConfig, ServeSettings, Settings};

pub async fn run(settings: &Settings, args: &ServeArgs, file: &FileConfig) -> Result<()> {
    let serve = ServeSettings::resolve(settings, args, file);
    bail!(
        "auditlog serve is not built yet (would listen on {} with {} tokens, timeout {:?})",
        serve.listen,
        serve.tokens.len(),
        serve.query_timeout
    )
}
