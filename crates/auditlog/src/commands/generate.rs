//! `auditlog generate`.

use anyhow::{Result, bail};

use crate::config::{FileConfig, Settings};

pub async fn run(
    _settings: &Settings,
    _args: &crate::cli::GenerateArgs,
    _file: &FileConfig,
) -> Result<()> {
    bail!("auditlog generate is not built yet")
}
