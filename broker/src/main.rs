//! `weir-broker`: runs a single-node Weir broker.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tokio_util::sync::CancellationToken;
use weir_broker::config::{Config, Overrides};

/// A Kafka-like event-streaming broker.
#[derive(Debug, Parser)]
#[command(name = "weir-broker", version)]
struct Cli {
    /// TOML file merged over the built-in defaults (configs/single-node.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data directory (default ./data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Native protocol listener, HOST:PORT (default 127.0.0.1:9292).
    #[arg(long)]
    listen: Option<String>,
    /// Prometheus metrics listener, HOST:PORT (default 127.0.0.1:9293).
    #[arg(long)]
    metrics_listen: Option<String>,
    /// Broker id (default 0).
    #[arg(long)]
    node_id: Option<i32>,
    /// Metadata quorum voters, `1@host:port,2@host:port,...` (overrides cluster.voters).
    #[arg(long)]
    voters: Option<String>,
    /// HOST:PORT for quorum traffic from other brokers (overrides cluster.controller_listen).
    #[arg(long)]
    controller_listen: Option<String>,
    /// HOST:PORT that Metadata tells clients (overrides cluster.advertised_listen).
    #[arg(long)]
    advertised_listen: Option<String>,
}

/// Whether log lines may carry ANSI colour: stderr is a terminal and `NO_COLOR` is unset.
fn use_colour() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // openraft narrates every election and append at info; its warnings are enough.
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn")),
        )
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal: a log file or a pipe gets plain text.
        .with_ansi(use_colour())
        .init();
    let cli = Cli::parse();
    let overrides = Overrides {
        data_dir: cli.data_dir,
        listen: cli.listen,
        metrics_listen: cli.metrics_listen,
        node_id: cli.node_id,
        voters: cli.voters,
        controller_listen: cli.controller_listen,
        advertised_listen: cli.advertised_listen,
    };
    let config = match Config::load(cli.config.as_deref(), &overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("weir-broker: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("weir-broker: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        tokio::spawn(wait_for_signal(shutdown.clone()));
        match weir_broker::run(config, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "broker failed");
                eprintln!("weir-broker: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Cancels `shutdown` on SIGTERM or Ctrl-C.
async fn wait_for_signal(shutdown: CancellationToken) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
            shutdown.cancel();
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C: shutting down"),
    }
    shutdown.cancel();
}
