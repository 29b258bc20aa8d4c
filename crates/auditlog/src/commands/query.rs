//! `auditlog query`.

use anyhow::{Result, bail};

use crate::config::{FileConfig, Settings};

pub async fn run(
    _settings: &Settings,
    _args: &crate::cli::QueryArgs,
    _file: &FileConfig,
) -> Result<std::process::ExitCode> {
    bail!("auditlog query is not built yet")
}
