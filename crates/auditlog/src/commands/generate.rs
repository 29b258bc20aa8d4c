//! `auditlog generate`.

use anyhow::{Result, bail};

use crate::cli::GenerateArgs;
use crate::config::{FileConfig, ProducerSettings, Settings};

pub async fn run(_settings: &Settings, args: &GenerateArgs, file: &FileConfig) -> Result<()> {
    let _producer = ProducerSettings::resolve(&args.producer, file);
    bail!("auditlog generate is not built yet")
}
