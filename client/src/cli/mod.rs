//! The `weir` command line: argument definitions ([`args`]), output shaping ([`output`])
//! and one module per command group. Data goes to stdout, progress and errors to stderr.

pub mod args;
pub mod cluster;
pub mod consume;
pub mod consume_group;
pub mod dlq;
pub mod group;
pub mod output;
pub mod partition;
pub mod produce;
pub mod topic;

use std::io::Write;

use crate::config::ClientConfig;
use crate::error::Result;
use args::{Cli, Command};

/// Runs a parsed command line.
///
/// Cancellation safety: not meant to be cancelled; it is the whole CLI run (commands
/// handle Ctrl-C themselves).
pub async fn run(cli: Cli) -> Result<()> {
    let mut config = ClientConfig::new(&cli.bootstrap);
    config.client_id = "weir-cli".into();
    match cli.command {
        Command::Topic { command } => topic::run(config, cli.output, command).await,
        Command::Produce(args) => produce::run(config, cli.output, args).await,
        Command::Consume(args) if args.group.is_some() => {
            consume_group::run(config, cli.output, args).await
        }
        Command::Consume(args) => consume::run(config, cli.output, args).await,
        Command::Group { command } => group::run(config, cli.output, command).await,
        Command::Dlq { command } => dlq::run(config, cli.output, command).await,
        Command::Cluster { command } => cluster::run(config, cli.output, command).await,
        Command::Partition { command } => partition::run(config, cli.output, command).await,
    }
}

/// Writes `text` + newline to stdout; a closed pipe is not an error worth a message.
pub(crate) fn print_line(out: &mut impl Write, text: &str) -> bool {
    out.write_all(text.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .is_ok()
}
