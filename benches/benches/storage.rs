//! Storage micro-benchmarks: append (page cache and fsync), sequential read, index lookup,
//! recovery scan with lost indexes.
//!
//! `cargo bench -p weir-benches --bench storage`. The recovery log size is
//! `WEIR_BENCH_RECOVERY_MB` (default 64; the closing numbers use 1024); `WEIR_BENCH_DIR`
//! picks the directory (default: the system temp dir).

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use weir_storage::{testkit, Log, LogConfig};

/// Temp dir under `WEIR_BENCH_DIR` (e.g. /dev/shm to take the file system out), or the
/// default temp location.
fn tempdir() -> tempfile::TempDir {
    match std::env::var_os("WEIR_BENCH_DIR") {
        Some(base) => tempfile::tempdir_in(base),
        None => tempfile::tempdir(),
    }
    .expect("tempdir")
}

/// A 16 KiB batch: 160 records of 100 B values (plus record overhead).
fn batch_16k() -> Vec<u8> {
    let b = testkit::simple_batch(150, 100, 1_700_000_000_000);
    assert!(
        b.len() > 15_000 && b.len() < 17_000,
        "batch is {} bytes",
        b.len()
    );
    b
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 256 << 20,
        retention_ms: -1,
        ..LogConfig::default()
    }
}

fn fill(dir: &Path, bytes: u64) -> Log {
    let mut log = Log::open(dir, config()).expect("open");
    let mut b = batch_16k();
    let mut written = 0u64;
    while written < bytes {
        log.append_as_leader(&mut b, 0, 0).expect("append");
        written += b.len() as u64;
    }
    log
}

fn append(c: &mut Criterion) {
    let mut g = c.benchmark_group("storage_append");
    let batch = batch_16k();
    g.throughput(Throughput::Bytes(batch.len() as u64));
    g.bench_function("16k_page_cache", |bench| {
        bench.iter_custom(|iters| {
            let dir = tempdir();
            let mut log = Log::open(dir.path(), config()).expect("open");
            let mut b = batch.clone();
            let start = Instant::now();
            for _ in 0..iters {
                black_box(log.append_as_leader(&mut b, 0, 0).expect("append"));
            }
            start.elapsed()
        })
    });
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    g.bench_function("16k_fsync_each", |bench| {
        bench.iter_custom(|iters| {
            let dir = tempdir();
            let mut log = Log::open(dir.path(), config()).expect("open");
            let mut b = batch.clone();
            let start = Instant::now();
            for _ in 0..iters {
                log.append_as_leader(&mut b, 0, 0).expect("append");
                log.flush().expect("flush");
            }
            start.elapsed()
        })
    });
    g.finish();
}

fn read(c: &mut Criterion) {
    let dir = tempdir();
    let size = 256u64 << 20;
    let log = fill(dir.path(), size);
    let mut g = c.benchmark_group("storage_read");
    g.throughput(Throughput::Bytes(log.size_bytes()));
    g.sample_size(10);
    for max_bytes in [1usize << 20, 4 << 20] {
        g.bench_with_input(
            BenchmarkId::new("sequential", max_bytes),
            &max_bytes,
            |bench, &mb| {
                bench.iter(|| {
                    let mut offset = 0;
                    let mut total = 0usize;
                    while offset < log.log_end_offset() {
                        let r = log.read(offset, mb, None).expect("read");
                        total += r.records.len();
                        // The last batch's next offset, from its header.
                        let mut pos = 0;
                        let mut next = offset;
                        for item in weir_protocol::batch::BatchIter::new(&r.records, false) {
                            let (h, bytes) = item.expect("batch");
                            next = h.next_offset();
                            pos += bytes.len();
                        }
                        debug_assert_eq!(pos, r.records.len());
                        offset = next;
                    }
                    black_box(total)
                })
            },
        );
    }
    g.finish();

    let mut g = c.benchmark_group("storage_index");
    let leo = log.log_end_offset();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    g.bench_function("lookup_read_one_batch", |bench| {
        bench.iter(|| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let o = (x % leo as u64) as i64;
            black_box(log.read(o, 1, None).expect("read").records.len())
        })
    });
    g.bench_function("offset_for_timestamp", |bench| {
        bench.iter(|| black_box(log.offset_for_timestamp(1_700_000_000_000).expect("ts")))
    });
    g.finish();
}

fn recovery(c: &mut Criterion) {
    let mb: u64 = std::env::var("WEIR_BENCH_RECOVERY_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let dir = tempdir();
    let log = fill(dir.path(), mb << 20);
    let size = log.size_bytes();
    log.close().expect("close");
    let mut g = c.benchmark_group("storage_recovery");
    g.throughput(Throughput::Bytes(size));
    g.sample_size(10);
    g.bench_function(BenchmarkId::new("scan_lost_indexes_mb", mb), |bench| {
        bench.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                // Lose every index and the checkpoint: a full validating scan.
                for e in std::fs::read_dir(dir.path()).expect("ls") {
                    let p = e.expect("entry").path();
                    let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
                    if matches!(ext, "index" | "timeindex" | "checkpoint" | "snapshot") {
                        std::fs::remove_file(&p).expect("rm");
                    }
                }
                let start = Instant::now();
                let log = Log::open(dir.path(), config()).expect("recover");
                total += start.elapsed();
                assert_eq!(log.recovery_info().bytes_scanned, size);
                log.close().expect("close");
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, append, read, recovery);
criterion_main!(benches);
