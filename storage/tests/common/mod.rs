//! Shared helpers for the storage integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use weir_protocol::batch::{BatchHeader, BatchIter};
use weir_storage::testkit;
use weir_storage::{Log, LogConfig};

/// A config with small segments and indexes so tests roll often.
pub fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        segment_index_bytes: 4096,
        index_interval_bytes: 256,
        retention_ms: -1,
        ..LogConfig::default()
    }
}

/// Appends `n` batches of `records` records each; returns the batches as written.
pub fn fill(log: &mut Log, n: usize, records: usize, ts: i64) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for i in 0..n {
        let mut b = testkit::simple_batch(records, 40 + i % 7, ts + i as i64);
        log.append_as_leader(&mut b, 3, ts + i as i64).unwrap();
        out.push(b);
    }
    out
}

/// Reads every batch from the log start to the end, one read call per batch group.
pub fn read_all(log: &Log) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    let leo = log.log_end_offset();
    let mut guard = 0;
    while offset < leo && guard < 1_000_000 {
        guard += 1;
        let r = log.read(offset, 1000, None).unwrap();
        assert!(!r.records.is_empty(), "empty read at {offset} < {leo}");
        for b in BatchIter::new(&r.records, true) {
            let (h, bytes): (BatchHeader, &[u8]) = b.unwrap();
            if h.last_offset() >= offset {
                out.push(bytes.to_vec());
            }
            offset = h.next_offset();
        }
    }
    out
}

/// The `.log` files in `dir`, sorted.
pub fn log_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}
