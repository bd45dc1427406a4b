//! `weir-chaos`: a seeded fault-injection campaign over three real brokers on loopback
//! (see `weir_benches::chaos`). Exits 0 when the checker finds no violation, 1 when it
//! does, 2 when the run itself could not be carried out.
//!
//! `cargo run --release -p weir-benches --bin weir-chaos -- --seed 7 --duration 300`

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tokio_util::sync::CancellationToken;
use weir_benches::chaos::run::{self, Options};
use weir_benches::chaos::schedule;

#[derive(Parser, Debug)]
#[command(about = "Seeded fault injection over a 3-broker Weir cluster, with a checker")]
struct Args {
    /// Seed of the fault schedule and every seeded choice.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Workload length in seconds (final reads and checks come after).
    #[arg(long, default_value_t = 300)]
    duration: u64,
    /// Faults to draw from: F1,F3,... or `all` (F1-F9, F12).
    #[arg(long, default_value = "all")]
    faults: String,
    /// Records to send at most (all producers together).
    #[arg(long, default_value_t = 10_000_000)]
    records: u64,
    /// Target send rate, records per second.
    #[arg(long, default_value_t = 2_000)]
    rate: u64,
    /// Partitions of the topic under test.
    #[arg(long, default_value_t = 8)]
    partitions: i32,
    /// `json`: the last line of standard output is the summary object.
    #[arg(long)]
    output: Option<String>,
    /// Run folder (default: chaos-runs/seed-<seed>-<unix time> under the current dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The broker binary (default: weir-broker next to this binary).
    #[arg(long)]
    broker: Option<PathBuf>,
    /// Do not mount a capped tmpfs per broker (F8 is then not injected).
    #[arg(long)]
    no_tmpfs: bool,
    /// Acknowledged writes required while a single-node fault is held (rule 11).
    #[arg(long, default_value_t = 100)]
    min_progress: usize,
    /// Fail unless at least this many records were acknowledged (CI's floor).
    #[arg(long, default_value_t = 0)]
    require_acked: usize,
    /// Fail unless at least this many faults were injected.
    #[arg(long, default_value_t = 0)]
    require_faults: u64,
    /// Fail unless each of these faults was injected (e.g. F1,F2,F3,F5).
    #[arg(long, default_value = "")]
    require_kinds: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let faults = match schedule::parse_faults(&args.faults) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("weir-chaos: {e}");
            return ExitCode::from(2);
        }
    };
    let broker = match args.broker {
        Some(b) => b,
        None => match std::env::current_exe() {
            Ok(exe) => exe.with_file_name("weir-broker"),
            Err(e) => {
                eprintln!("weir-chaos: cannot find this binary's directory: {e}");
                return ExitCode::from(2);
            }
        },
    };
    if !broker.exists() {
        eprintln!(
            "weir-chaos: {} not found; build it (cargo build -p weir-broker) or pass --broker",
            broker.display()
        );
        return ExitCode::from(2);
    }
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let dir = args
        .dir
        .unwrap_or_else(|| PathBuf::from(format!("chaos-runs/seed-{}-{unix}", args.seed)));
    if let Err(e) = client_log(&dir) {
        eprintln!("weir-chaos: {e}");
        return ExitCode::from(2);
    }
    let opts = Options {
        seed: args.seed,
        duration_s: args.duration,
        faults,
        records: args.records,
        rate: args.rate,
        partitions: args.partitions,
        dir,
        broker,
        tmpfs: !args.no_tmpfs,
        min_progress: args.min_progress,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("weir-chaos: tokio runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        let interrupted = CancellationToken::new();
        let on_signal = interrupted.clone();
        // Ctrl-C ends the schedule early; the brokers are killed and the tmpfs mounts
        // removed when the cluster is dropped at the end of the run.
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                on_signal.cancel();
            }
        });
        run::run(&opts, interrupted).await
    });
    match result {
        Ok(outcome) => {
            let report = outcome.report;
            run::print_table(&opts, &report);
            for n in &outcome.notes {
                println!("  note: {n}");
            }
            // The run's own floors (not checker rules): too little load or too few faults
            // would make a clean result meaningless.
            let mut unmet = Vec::new();
            if report.acknowledged < args.require_acked {
                unmet.push(format!(
                    "{} acknowledged, {} required",
                    report.acknowledged, args.require_acked
                ));
            }
            let injected: u64 = report.faults.values().sum();
            if injected < args.require_faults {
                unmet.push(format!(
                    "{injected} faults injected, {} required",
                    args.require_faults
                ));
            }
            for k in args
                .require_kinds
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
            {
                if !report.faults.contains_key(k) {
                    unmet.push(format!("{k} was not injected"));
                }
            }
            for u in &unmet {
                println!("  requirement not met: {u}");
            }
            if args.output.as_deref() == Some("json") {
                let mut summary = run::summary_json(&opts, &report, &outcome.notes);
                summary["requirements_unmet"] = serde_json::json!(unmet);
                println!("{summary}");
            }
            if report.violations.is_empty() && unmet.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("weir-chaos: {e}");
            ExitCode::from(2)
        }
    }
}

/// Sends the clients' log (the weir_client crate at info, or as `RUST_LOG` says) to
/// `clients.log` in the run folder: what the producers and consumers did about errors
/// (position resets, retries, rejoins) explains many findings.
fn client_log(dir: &std::path::Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let path = dir.join("clients.log");
    let file =
        std::fs::File::create(&path).map_err(|e| format!("create {}: {e}", path.display()))?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("weir_client=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init()
        .map_err(|e| format!("client log: {e}"))
}
