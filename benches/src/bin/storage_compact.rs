//! Compaction throughput and peak memory on a log of `WEIR_COMPACT_MB` (default 64; the
//! closing numbers use 1024) with `WEIR_COMPACT_KEYS` distinct keys (default 1,000,000).
//!
//! `cargo run --release -p weir-benches --bin storage_compact`. Peak memory is VmHWM from
//! /proc/self/status, reset (via /proc/self/clear_refs) just before the clean.

use std::time::Instant;

use weir_protocol::batch::{BatchBuilder, BatchOptions, Compression, NewRecord};
use weir_storage::cleaner::{Cleaner, DEFAULT_OFFSET_MAP_BYTES};
use weir_storage::{CleanupPolicy, Log, LogConfig};

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mb = env("WEIR_COMPACT_MB", 64);
    let keys = env("WEIR_COMPACT_KEYS", 1_000_000);
    let map_bytes = env("WEIR_COMPACT_MAP_BYTES", DEFAULT_OFFSET_MAP_BYTES as u64) as usize;
    let dir = tempfile::tempdir()?;
    let config = LogConfig {
        segment_bytes: 128 << 20,
        retention_ms: -1,
        cleanup_policy: CleanupPolicy::parse("compact")?,
        min_cleanable_dirty_ratio: 0.0,
        ..LogConfig::default()
    };
    let mut log = Log::open(dir.path(), config)?;
    let value = [7u8; 100];
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut written = 0u64;
    let mut records = 0u64;
    let t0 = Instant::now();
    while written < mb << 20 {
        let mut b = BatchBuilder::with_capacity(BatchOptions::new(Compression::None), 16 << 10);
        for _ in 0..100 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = format!("key-{:010}", x % keys);
            b.push(&NewRecord::new(
                1_700_000_000_000,
                Some(key.as_bytes()),
                Some(&value),
            ))?;
            records += 1;
        }
        let mut batch = b.build()?;
        log.append_as_leader(&mut batch, 0, 0)?;
        written += batch.len() as u64;
    }
    log.roll_now(0)?;
    let size = log.size_bytes();
    println!(
        "built {:.0} MB, {records} records, {keys} keys in {:.1}s",
        size as f64 / 1e6,
        t0.elapsed().as_secs_f64()
    );
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let rss_before = status_kb("VmRSS:");
    let start = Instant::now();
    let mut cleaner = Cleaner::new(map_bytes);
    let stats = cleaner.clean(&mut log, 1_700_000_000_000)?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "compacted {:.0} MB -> {:.0} MB in {secs:.2}s: {:.0} MB/s read, {} passes, {} of {} records kept",
        stats.bytes_read as f64 / 1e6,
        stats.bytes_written as f64 / 1e6,
        stats.bytes_read as f64 / 1e6 / secs,
        stats.passes,
        stats.records_kept,
        stats.records_read
    );
    println!(
        "memory: VmRSS before clean {:.1} MB, peak (VmHWM) during clean {:.1} MB, offset map budget {:.0} MB",
        rss_before as f64 / 1024.0,
        status_kb("VmHWM:") as f64 / 1024.0,
        map_bytes as f64 / (1 << 20) as f64
    );
    Ok(())
}
