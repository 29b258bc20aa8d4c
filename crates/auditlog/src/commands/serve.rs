//! `auditlog serve`.

use anyhow::{Result, bail};

use crate::config::{FileConfig, Settings};

pub async fn run(
    _settings: &Settings,
    _args: &crate::cli::ServeArgs,
    _file: &FileConfig,
) -> Result<()> {
    bail!("auditlog serve is not built yet")
}
