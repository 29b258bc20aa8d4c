//! The `auditlog` command: a thin binary that wires the library crates together.
//!
//! Raw arguments become validated settings in two steps (`cli` parses, `config` resolves
//! flags over environment over file over defaults); each subcommand then gets only the
//! settings it needs.

mod cli;
mod commands;
mod config;
mod telemetry;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::config::{FileConfig, Settings};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let file = match &cli.global.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    let settings = Settings::resolve(&cli.global, &file)?;
    telemetry::init_logging(&settings.log_filter, settings.log_format)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match &cli.command {
            Command::Migrate(args) => commands::migrate::run(&settings, args, &file).await?,
            Command::Ingest(args) => return commands::ingest::run(&settings, args, &file).await,
            Command::Generate(args) => commands::generate::run(&settings, args, &file).await?,
            Command::Query(args) => return commands::query::run(&settings, args, &file).await,
            Command::Serve(args) => commands::serve::run(&settings, args, &file).await?,
            Command::Dlq(args) => commands::dlq::run(&settings, &args.command).await?,
            Command::AccessDdl(args) => commands::access_ddl::run(&settings, args)?,
            Command::Keygen(args) => commands::keygen::run(args)?,
            Command::Verify(args) => return commands::verify::run(&settings, args, &file).await,
            Command::Stream(args) => return commands::stream::run(&settings, args, &file).await,
        }
        Ok(ExitCode::SUCCESS)
    })
}
