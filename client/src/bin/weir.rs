//! `weir`, the admin CLI. See `weir --help`.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use clap::Parser;
use weir_client::cli::{self, args::Cli};

fn main() {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("weir: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(cli::run(cli)) {
        eprintln!("weir: error: {e}");
        std::process::exit(1);
    }
}
