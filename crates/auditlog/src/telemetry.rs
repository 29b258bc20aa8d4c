//! Logs (tracing, to stderr) and metrics (the Prometheus recorder behind `/metrics`).

use anyhow::{Context, Result};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// Installs the global tracing subscriber.
pub fn init_logging(filter: &str, format: LogFormat) -> Result<()> {
    let filter =
        EnvFilter::try_new(filter).with_context(|| format!("invalid log filter {filter:?}"))?;
    // Colour only for a person at a terminal: escape codes in a file or a log shipper are
    // noise that every reader has to strip.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    result.map_err(|error| anyhow::anyhow!("installing the log subscriber: {error}"))
}

/// Installs the Prometheus recorder; the handle renders the text format for `/metrics`.
pub fn init_metrics() -> Result<PrometheusHandle> {
    let mut builder = PrometheusBuilder::new();
    for (name, buckets) in auditlog_ingester::metrics::histogram_buckets() {
        builder = builder
            .set_buckets_for_metric(Matcher::Full(name.to_owned()), &buckets)
            .context("histogram buckets")?;
    }
    builder = builder
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".to_owned()),
            &[
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
            ],
        )
        .context("histogram buckets")?;
    builder
        .install_recorder()
        .context("installing the prometheus recorder")
}

/// The exit code of a second SIGTERM or Ctrl-C: the process stops at once, without waiting
/// for its shutdown timeout (128 + SIGINT, as shells report an interrupt).
pub const EXIT_FORCED: i32 = 130;

/// A watch channel that turns true on SIGTERM or Ctrl-C. A second signal exits the process
/// at once with [`EXIT_FORCED`]: whoever sends it has decided not to wait for a flush.
pub fn shutdown_signal() -> tokio::sync::watch::Receiver<bool> {
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        #[cfg(unix)]
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => Some(signal),
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM");
                    None
                }
            };
        for received in 0.. {
            #[cfg(unix)]
            let terminated = async {
                match terminate.as_mut() {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            #[cfg(not(unix))]
            let terminated = std::future::pending::<()>();
            let name = tokio::select! {
                _ = tokio::signal::ctrl_c() => "interrupt",
                () = terminated => "SIGTERM",
            };
            if received == 0 {
                tracing::info!(
                    signal = name,
                    "shutting down (a second signal exits at once)"
                );
                let _ = shutdown_tx.send(true);
            } else {
                tracing::warn!(
                    signal = name,
                    exit_code = EXIT_FORCED,
                    "second signal: exiting at once; nothing unwritten was committed"
                );
                std::process::exit(EXIT_FORCED);
            }
        }
    });
    shutdown_rx
}
