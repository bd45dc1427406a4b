//! RSS of N open, idle partition logs (default 1000), read from /proc/self/status VmRSS.
//!
//! `cargo run --release -p weir-benches --bin storage_rss [-- N]`. Each partition gets a
//! few batches and stays open with Kafka's default config (10 MiB preallocated, sparse,
//! memory-mapped indexes per segment).

use weir_storage::{testkit, Log, LogConfig};

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let dir = tempfile::tempdir()?;
    let before = status_kb("VmRSS:");
    let mut logs = Vec::with_capacity(n);
    for p in 0..n {
        let mut log = Log::open(&dir.path().join(format!("topic-{p}")), LogConfig::default())?;
        for _ in 0..10 {
            let mut b = testkit::simple_batch(10, 100, 1_700_000_000_000);
            log.append_as_leader(&mut b, 0, 0)?;
        }
        logs.push(log);
    }
    let after = status_kb("VmRSS:");
    println!(
        "{n} open partitions: VmRSS {:.1} MB (before {:.1} MB, delta {:.1} MB, {:.1} KB/partition), VmHWM {:.1} MB",
        after as f64 / 1024.0,
        before as f64 / 1024.0,
        (after - before) as f64 / 1024.0,
        (after - before) as f64 / n as f64,
        status_kb("VmHWM:") as f64 / 1024.0
    );
    // Dropped without close: the measurement is done and closing 1000 logs costs fsyncs.
    drop(logs);
    Ok(())
}
