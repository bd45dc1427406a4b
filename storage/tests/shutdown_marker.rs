//! Logs opened under a data directory's clean-shutdown marker (`Shutdown::MarkedClean` /
//! `Shutdown::Unmarked`): the marker, not the log's own checkpoint flag, decides whether
//! the files are trusted, and nothing rewrites the checkpoint before the first append.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::Path;

use common::{fill, log_files, read_all, small_config};
use weir_storage::log::checkpoint::Checkpoint;
use weir_storage::{testkit, Log, Shutdown};

fn open(dir: &Path, shutdown: Shutdown) -> Log {
    Log::open_with(dir, small_config(), shutdown).unwrap()
}

/// Half of a valid batch appended to the active segment, as a crash mid-write leaves it.
fn tear_tail(dir: &Path) {
    let active = log_files(dir).pop().unwrap();
    let junk = testkit::simple_batch(2, 40, 5);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(active)
        .unwrap();
    f.write_all(&junk[..junk.len() / 2]).unwrap();
}

/// The case the per-partition flag cannot catch once it is no longer cleared before the
/// first change: closed cleanly (flag set), reopened under a marker, appended to, crashed.
#[test]
fn without_the_marker_a_torn_tail_is_cut_even_if_the_checkpoint_says_clean() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    // Few enough batches to stay in one segment: a roll rewrites the checkpoint anyway.
    let mut written = fill(&mut log, 3, 3, 1_000);
    log.close().unwrap();
    assert!(Checkpoint::read(dir.path()).unwrap().unwrap().clean);

    let mut log = open(dir.path(), Shutdown::MarkedClean);
    assert!(log.recovery_info().clean_shutdown);
    written.extend(fill(&mut log, 3, 3, 2_000));
    assert_eq!(log.segment_count(), 1);
    log.flush().unwrap();
    drop(log);
    // The append did not rewrite the checkpoint (the cost the marker removes).
    assert!(Checkpoint::read(dir.path()).unwrap().unwrap().clean);
    tear_tail(dir.path());

    let log = open(dir.path(), Shutdown::Unmarked);
    let info = log.recovery_info().clone();
    assert!(!info.clean_shutdown, "{info:?}");
    assert!(info.segments_scanned > 0, "{info:?}");
    assert!(info.bytes_truncated > 0, "{info:?}");
    assert_eq!(read_all(&log), written);
}

#[test]
fn with_the_marker_a_cleanly_closed_log_opens_without_a_scan() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), Shutdown::Unmarked);
    let mut written = fill(&mut log, 30, 3, 1_000);
    log.close().unwrap();

    let mut log = open(dir.path(), Shutdown::MarkedClean);
    let info = log.recovery_info().clone();
    assert!(info.clean_shutdown, "{info:?}");
    assert_eq!(
        (info.segments_scanned, info.bytes_scanned),
        (0, 0),
        "{info:?}"
    );
    assert_eq!(read_all(&log), written);
    written.extend(fill(&mut log, 5, 1, 3_000));
    log.close().unwrap();

    let log = open(dir.path(), Shutdown::MarkedClean);
    assert_eq!(log.recovery_info().segments_scanned, 0);
    assert_eq!(read_all(&log), written);
}

/// A binary that trusts the per-partition flag (an older one, or `Shutdown::PerLog`) must
/// recover a log last closed under a marker: the marker it does not read is what vouched.
#[test]
fn a_log_closed_under_a_marker_never_leaves_its_own_flag_set() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), Shutdown::Unmarked);
    let written = fill(&mut log, 10, 3, 1_000);
    log.close().unwrap();
    let cp = Checkpoint::read(dir.path()).unwrap().unwrap();
    assert!(!cp.clean, "{cp:?}");

    let log = Log::open(dir.path(), small_config()).unwrap();
    assert!(!log.recovery_info().clean_shutdown);
    assert!(log.recovery_info().segments_scanned > 0);
    assert_eq!(read_all(&log), written);
}

/// No clean close leaves a log without a checkpoint, so the marker does not vouch for one.
#[test]
fn with_the_marker_a_log_without_a_checkpoint_is_still_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), Shutdown::Unmarked);
    let written = fill(&mut log, 10, 3, 1_000);
    log.flush().unwrap();
    drop(log);
    let _ = std::fs::remove_file(dir.path().join("partition.checkpoint"));
    tear_tail(dir.path());

    let log = open(dir.path(), Shutdown::MarkedClean);
    let info = log.recovery_info().clone();
    assert!(!info.clean_shutdown, "{info:?}");
    assert!(info.bytes_truncated > 0, "{info:?}");
    assert_eq!(read_all(&log), written);
}
