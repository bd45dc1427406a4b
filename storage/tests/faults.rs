//! Disk full and fsync failure: appends fail cleanly and nothing half-written is visible.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::{read_all, small_config};
use weir_storage::{testkit, Error, Log, LogConfig};

const CHILD_ENV: &str = "WEIR_STORAGE_DISK_FULL_CHILD";

/// Runs in a child process (the parent re-executes this test binary) because
/// RLIMIT_FSIZE applies to the whole process. Writing past the limit fails with EFBIG
/// once SIGXFSZ is ignored: the same path as ENOSPC for the log.
#[test]
fn disk_full_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return; // only meaningful when spawned by `disk_full_on_append`
    };
    let dir = std::path::PathBuf::from(dir);
    let cfg = LogConfig {
        segment_index_bytes: 1024,
        ..LogConfig::default()
    };
    let mut log = Log::open(&dir, cfg.clone()).unwrap();
    // SAFETY: plain libc calls on this process's own limits/signal disposition.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let lim = libc::rlimit {
            rlim_cur: 64 * 1024,
            rlim_max: libc::RLIM_INFINITY,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
    }
    let mut ok = 0u64;
    let mut full = false;
    for i in 0..100 {
        let mut b = testkit::simple_batch(10, 1000, i);
        match log.append_as_leader(&mut b, 0, i) {
            Ok(info) => {
                assert_eq!(info.base_offset, ok as i64 * 10);
                ok += 1;
            }
            Err(Error::DiskFull { .. }) => {
                full = true;
                break;
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert!(full, "never hit the limit");
    assert!(ok > 0);
    assert_eq!(log.log_end_offset(), ok as i64 * 10);
    // Nothing half-written: the file holds exactly the acknowledged batches.
    assert_eq!(read_all(&log).len() as u64, ok);
    let seg = dir.join("00000000000000000000.log");
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), log.size_bytes());
    // Still full: a retry fails the same way, and the log stays consistent.
    let mut b = testkit::simple_batch(10, 1000, 0);
    assert!(matches!(
        log.append_as_leader(&mut b, 0, 0),
        Err(Error::DiskFull { .. })
    ));
    // Space comes back: appends continue at the right offset.
    unsafe {
        let lim = libc::rlimit {
            rlim_cur: libc::RLIM_INFINITY,
            rlim_max: libc::RLIM_INFINITY,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
    }
    let mut b = testkit::simple_batch(10, 1000, 0);
    assert_eq!(
        log.append_as_leader(&mut b, 0, 0).unwrap().base_offset,
        ok as i64 * 10
    );
    log.close().unwrap();
    let log = Log::open(&dir, cfg).unwrap();
    assert_eq!(read_all(&log).len() as u64, ok + 1);
}

#[test]
fn disk_full_on_append() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args([
            "disk_full_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn fsync_failure_poisons_the_log_until_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    let mut b = testkit::simple_batch(2, 10, 0);
    log.append_as_leader(&mut b, 0, 0).unwrap();
    log.inject_fsync_failure();
    assert!(matches!(log.flush(), Err(Error::Io { .. })));
    assert!(log.is_poisoned());
    let mut b = testkit::simple_batch(2, 10, 0);
    assert!(matches!(
        log.append_as_leader(&mut b, 0, 0),
        Err(Error::Poisoned { .. })
    ));
    assert!(matches!(log.flush(), Err(Error::Poisoned { .. })));
    // Reads still work.
    assert_eq!(read_all(&log).len(), 1);
    assert!(log.close().is_err(), "a poisoned log is not closed cleanly");
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    assert!(!log.recovery_info().clean_shutdown);
    assert_eq!(read_all(&log).len(), 1);
    let mut b = testkit::simple_batch(2, 10, 0);
    assert_eq!(log.append_as_leader(&mut b, 0, 0).unwrap().base_offset, 2);
}
