//! `weir-perf`: load generator for Weir and its peers. See `benches/README.md`.

use std::process::ExitCode;

use clap::Parser;
use weir_benches::perf::args::{Cli, Command, Output};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let output = match &cli.command {
        Command::Produce(a) | Command::Consume(a) | Command::EndToEnd(a) => a.output,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("weir-perf: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(weir_benches::perf::run(cli.command)) {
        Ok(report) => {
            match output {
                Output::Json => println!("{}", report.to_json()),
                Output::Text => println!("{}", report.to_text()),
            }
            if report.errors > 0 {
                ExitCode::from(3)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("weir-perf: {e}");
            ExitCode::FAILURE
        }
    }
}
