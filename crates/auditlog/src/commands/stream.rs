//! `auditlog stream`: the configured sinks, with their operational endpoints.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use auditlog_api::http;

use crate::cli::{StreamArgs, StreamCommand};
use crate::config::{FileConfig, Settings};
use crate::telemetry;

/// The exit code of `--until-caught-up` stopped by a signal before every sink caught up:
/// nothing is lost (undelivered batches are not committed), a rerun continues.
pub const EXIT_NOT_CAUGHT_UP: u8 = 75;

pub async fn run(settings: &Settings, args: &StreamArgs, file: &FileConfig) -> Result<ExitCode> {
    if let Some(StreamCommand::Backfill(backfill)) = &args.command {
        return super::stream_backfill::run(settings, backfill, file).await;
    }
    let sinks = auditlog_stream::sinks_from_file(&file.stream, &args.sinks)?;
    let metrics_listen = match args.metrics_listen.or(file.stream.metrics_listen) {
        Some(address) => address,
        None => auditlog_stream::DEFAULT_METRICS_LISTEN
            .parse()
            .context("default metrics address")?,
    };
    let metrics = telemetry::init_metrics()?;
    let shutdown = telemetry::shutdown_signal();
    let health = auditlog_stream::Health::default();
    let readiness: http::Readiness = {
        let health = health.clone();
        Arc::new(move || health.readiness())
    };
    let (ops_stop_tx, ops_stop) = tokio::sync::watch::channel(false);
    let ops = tokio::spawn(http::serve(
        metrics_listen,
        http::ops_router(metrics, readiness),
        ops_stop,
    ));
    let config = auditlog_stream::StreamConfig {
        brokers: settings.kafka_brokers.clone(),
        topic: settings.kafka_topic.clone(),
        kafka_properties: settings.kafka_properties.clone(),
        sinks,
        retry: auditlog_ingester::RetryPolicy::default(),
        until_caught_up: args.until_caught_up,
        checkpoint_topic: Some(settings.kafka_checkpoint_topic.clone()),
    };
    tracing::info!(
        topic = %config.topic,
        sinks = ?config.sinks.iter().map(|sink| sink.name.as_str()).collect::<Vec<_>>(),
        until_caught_up = config.until_caught_up,
        "stream starting"
    );
    let outcome = auditlog_stream::run(config, health, shutdown).await;
    let _ = ops_stop_tx.send(true);
    ops.abort();
    let report = outcome?;
    for sink in &report.sinks {
        tracing::info!(
            sink = %sink.name,
            delivered = sink.delivered,
            batches = sink.batches,
            filtered = sink.filtered,
            malformed = sink.malformed,
            failed_attempts = sink.failures,
            dead_lettered = sink.dead_lettered,
            caught_up = sink.caught_up,
            "sink report"
        );
    }
    if args.until_caught_up && report.sinks.iter().any(|sink| !sink.caught_up) {
        tracing::warn!(
            exit_code = EXIT_NOT_CAUGHT_UP,
            "stopped before every sink caught up; a rerun continues from the committed offsets"
        );
        return Ok(ExitCode::from(EXIT_NOT_CAUGHT_UP));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};
    use crate::config::FileConfig;

    #[test]
    fn the_file_holds_the_sinks_and_refuses_unknown_stream_keys() {
        let file: FileConfig = toml::from_str(
            r#"
            [stream]
            metrics_listen = "127.0.0.1:9999"
            [[stream.sinks]]
            name = "siem"
            kind = "webhook"
            url = "https://collector.example/audit"
            secret = "sixteen bytes at least"
            filter = "action:delete"
            "#,
        )
        .unwrap();
        assert_eq!(
            file.stream.metrics_listen.map(|address| address.port()),
            Some(9999)
        );
        let sinks = auditlog_stream::sinks_from_file(&file.stream, &[]).unwrap();
        assert_eq!(sinks[0].group(), "auditlog-stream-siem");
        assert!(toml::from_str::<FileConfig>("[stream]\nmetrics_lisen = \"x\"\n").is_err());
    }

    #[test]
    fn sinks_can_be_chosen_on_the_command_line() {
        let cli = Cli::try_parse_from([
            "auditlog",
            "stream",
            "--sink",
            "a",
            "--sink",
            "b",
            "--until-caught-up",
        ])
        .unwrap();
        let Command::Stream(args) = cli.command else {
            panic!("not the stream command");
        };
        assert_eq!(args.sinks, ["a", "b"]);
        assert!(args.until_caught_up);
        assert!(args.metrics_listen.is_none());
    }
}
