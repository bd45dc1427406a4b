//! Damaged files on open: each fault recovers to the longest valid prefix, never panics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use common::{fill, log_files, read_all, small_config};
use weir_storage::log::checkpoint::CHECKPOINT_FILE;
use weir_storage::{testkit, Log, LogConfig};

/// A log of several segments left as after a crash (no clean close), plus what was written.
fn crashed_log(dir: &Path) -> Vec<Vec<u8>> {
    let mut log = Log::open(dir, small_config()).unwrap();
    let written = fill(&mut log, 60, 3, 1_000);
    assert!(log.segment_count() >= 3);
    drop(log);
    written
}

fn active_log(dir: &Path) -> PathBuf {
    log_files(dir).pop().unwrap()
}

fn reopen(dir: &Path) -> Log {
    Log::open(dir, small_config()).unwrap()
}

/// The batches that lie wholly inside the first `bytes` of the active segment survive.
fn expect_prefix(log: &Log, written: &[Vec<u8>], lost: usize) {
    let got = read_all(log);
    assert_eq!(got.len(), written.len() - lost);
    assert_eq!(got[..], written[..written.len() - lost]);
}

/// Sizes of the batches in the active segment, in order.
fn active_batch_sizes(dir: &Path) -> Vec<usize> {
    let bytes = std::fs::read(active_log(dir)).unwrap();
    weir_protocol::batch::BatchIter::new(&bytes, true)
        .map(|b| b.unwrap().1.len())
        .collect()
}

#[test]
fn torn_tail_is_cut_at_the_last_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let written = crashed_log(dir.path());
    let sizes = active_batch_sizes(dir.path());
    let path = active_log(dir.path());
    let len = std::fs::metadata(&path).unwrap().len();
    // Cut in the middle of the last batch.
    let cut = len - (*sizes.last().unwrap() as u64) / 2;
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(cut)
        .unwrap();
    let mut log = reopen(dir.path());
    let info = log.recovery_info().clone();
    assert!(info.bytes_truncated > 0, "{info:?}");
    expect_prefix(&log, &written, 1);
    // The log keeps working: offsets continue without a gap.
    let leo = log.log_end_offset();
    let mut b = testkit::simple_batch(1, 10, 0);
    assert_eq!(log.append_as_leader(&mut b, 0, 0).unwrap().base_offset, leo);
}

#[test]
fn truncated_file_at_every_position_of_the_last_batches() {
    let dir = tempfile::tempdir().unwrap();
    let written = crashed_log(dir.path());
    let sizes = active_batch_sizes(dir.path());
    let path = active_log(dir.path());
    let full = std::fs::read(&path).unwrap();
    let last = *sizes.last().unwrap();
    let second_last = sizes[sizes.len() - 2];
    // Any cut inside the last two batches (step 7 to keep it quick).
    for cut in (full.len() - last - second_last..full.len()).step_by(7) {
        let d = tempfile::tempdir().unwrap();
        for e in std::fs::read_dir(dir.path()).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, d.path().join(p.file_name().unwrap())).unwrap();
        }
        let p = d.path().join(path.file_name().unwrap());
        std::fs::write(&p, &full[..cut]).unwrap();
        let log = reopen(d.path());
        let lost = if cut >= full.len() - last { 1 } else { 2 };
        let got = read_all(&log);
        assert_eq!(got.len(), written.len() - lost, "cut at {cut}");
    }
}

#[test]
fn flipped_byte_truncates_from_the_damaged_batch() {
    let dir = tempfile::tempdir().unwrap();
    let written = crashed_log(dir.path());
    let sizes = active_batch_sizes(dir.path());
    let path = active_log(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    // Flip a byte inside the records of the third-from-last batch.
    let start: usize = sizes[..sizes.len() - 3].iter().sum();
    bytes[start + 70] ^= 0x10;
    std::fs::write(&path, &bytes).unwrap();
    let log = reopen(dir.path());
    expect_prefix(&log, &written, 3);
    assert_eq!(
        std::fs::metadata(&path).unwrap().len() as usize,
        start,
        "file cut at the first invalid byte"
    );
}

#[test]
fn zero_filled_tail_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let written = crashed_log(dir.path());
    let path = active_log(dir.path());
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(&[0u8; 3000]).unwrap();
    drop(f);
    let log = reopen(dir.path());
    assert_eq!(log.recovery_info().bytes_truncated, 3000);
    expect_prefix(&log, &written, 0);
}

#[test]
fn preallocated_log_recovers_and_trims() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        preallocate: true,
        ..small_config()
    };
    let mut log = Log::open(dir.path(), cfg.clone()).unwrap();
    let written = fill(&mut log, 30, 3, 0);
    drop(log);
    let log = Log::open(dir.path(), cfg.clone()).unwrap();
    expect_prefix(&log, &written, 0);
    log.close().unwrap();
    let active = active_log(dir.path());
    let sizes: usize = active_batch_sizes(dir.path()).iter().sum();
    assert_eq!(std::fs::metadata(active).unwrap().len() as usize, sizes);
}

#[test]
fn missing_index_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    let written = fill(&mut log, 60, 3, 0);
    log.close().unwrap();
    let first = log_files(dir.path())[0].with_extension("index");
    std::fs::remove_file(&first).unwrap();
    let t = log_files(dir.path())[1].with_extension("timeindex");
    std::fs::remove_file(&t).unwrap();
    let log = reopen(dir.path());
    assert_eq!(log.recovery_info().indexes_rebuilt, 2);
    assert_eq!(read_all(&log), written);
    assert!(first.exists());
    assert!(log.offset_for_timestamp(30).unwrap().is_some());
}

#[test]
fn index_pointing_past_the_end_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    let written = fill(&mut log, 60, 3, 0);
    log.close().unwrap();
    let idx = log_files(dir.path())[0].with_extension("index");
    let mut bytes = std::fs::read(&idx).unwrap();
    assert!(bytes.len() >= 8);
    let n = bytes.len();
    bytes[n - 4..].copy_from_slice(&u32::MAX.to_be_bytes());
    std::fs::write(&idx, &bytes).unwrap();
    // And a garbage time index on another segment.
    let t = log_files(dir.path())[1].with_extension("timeindex");
    std::fs::write(&t, [0xffu8; 24]).unwrap();
    let log = reopen(dir.path());
    assert_eq!(log.recovery_info().indexes_rebuilt, 2);
    assert_eq!(read_all(&log), written);
}

#[test]
fn corrupt_or_missing_checkpoint_means_a_full_scan() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    let written = fill(&mut log, 60, 3, 0);
    let segments = log.segment_count();
    log.close().unwrap();
    let cp = dir.path().join(CHECKPOINT_FILE);
    let mut bytes = std::fs::read(&cp).unwrap();
    bytes[15] ^= 0xff;
    std::fs::write(&cp, &bytes).unwrap();
    let log = reopen(dir.path());
    let info = log.recovery_info().clone();
    assert!(info.checkpoint_corrupt);
    assert!(!info.clean_shutdown);
    assert_eq!(info.segments_scanned, segments);
    assert_eq!(read_all(&log), written);
    drop(log);
    std::fs::remove_file(&cp).unwrap();
    let log = reopen(dir.path());
    assert_eq!(log.recovery_info().segments_scanned, segments);
    assert_eq!(read_all(&log), written);
}

#[test]
fn damage_in_an_older_segment_after_a_crash_drops_later_segments() {
    let dir = tempfile::tempdir().unwrap();
    let written = crashed_log(dir.path());
    // Remove the checkpoint so every segment is scanned, then damage the first one.
    std::fs::remove_file(dir.path().join(CHECKPOINT_FILE)).unwrap();
    let first = log_files(dir.path())[0].clone();
    let mut bytes = std::fs::read(&first).unwrap();
    let sizes: Vec<usize> = weir_protocol::batch::BatchIter::new(&bytes, true)
        .map(|b| b.unwrap().1.len())
        .collect();
    let pos = sizes[0] + sizes[1] + 65;
    bytes[pos] ^= 1;
    std::fs::write(&first, &bytes).unwrap();
    let log = reopen(dir.path());
    assert_eq!(log.segment_count(), 1);
    expect_prefix(&log, &written, written.len() - 2);
}

#[test]
fn garbage_files_do_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("00000000000000000000.log"),
        b"not a batch at all",
    )
    .unwrap();
    std::fs::write(dir.path().join("00000000000000000000.index"), [1u8; 13]).unwrap();
    std::fs::write(dir.path().join("00000000000000000007.timeindex"), [1u8; 13]).unwrap();
    std::fs::write(dir.path().join(CHECKPOINT_FILE), b"junk").unwrap();
    std::fs::write(dir.path().join("00000000000000000000.snapshot"), b"junk").unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"ignored").unwrap();
    let mut log = reopen(dir.path());
    assert_eq!(log.log_end_offset(), 0);
    assert!(!dir.path().join("00000000000000000007.timeindex").exists());
    let mut b = testkit::simple_batch(2, 5, 0);
    log.append_as_leader(&mut b, 0, 0).unwrap();
    assert_eq!(read_all(&log).len(), 1);
}

/// A recovery that cuts nothing leaves the (unclean) checkpoint as it was, so the next
/// crash scans from the same older recovery point: records appended in between, and a
/// torn tail after them, must still come out right.
#[test]
fn crash_after_a_recovery_that_cut_nothing_rescans_from_the_old_recovery_point() {
    let dir = tempfile::tempdir().unwrap();
    let mut written = crashed_log(dir.path());
    let checkpoint = dir.path().join(CHECKPOINT_FILE);
    let before = std::fs::read(&checkpoint).unwrap();

    let mut log = reopen(dir.path());
    assert!(log.recovery_info().segments_scanned >= 1);
    assert_eq!(log.recovery_info().bytes_truncated, 0);
    assert_eq!(std::fs::read(&checkpoint).unwrap(), before);
    written.extend(fill(&mut log, 30, 2, 5_000));
    drop(log); // second crash

    // Half a batch that was never acknowledged.
    let junk = testkit::simple_batch(1, 30, 9_000);
    let mut f = OpenOptions::new()
        .append(true)
        .open(active_log(dir.path()))
        .unwrap();
    f.write_all(&junk[..junk.len() / 2]).unwrap();
    drop(f);

    let log = reopen(dir.path());
    let info = log.recovery_info().clone();
    assert!(!info.clean_shutdown);
    assert_eq!(info.bytes_truncated, junk.len() as u64 / 2, "{info:?}");
    assert_eq!(read_all(&log), written);
    log.close().unwrap();
    let log = reopen(dir.path());
    assert!(log.recovery_info().clean_shutdown);
    assert_eq!(read_all(&log), written);
}

/// weir-chaos seed 8: F9 flipped a bit of the last batch's partition leader epoch on a
/// killed follower (2 became 130). The field is outside the CRC, so recovery kept the
/// batch and that replica's bytes differed from the others'. An epoch above what the
/// metadata ever gave the partition is cut after a crash; a clean log is left alone.
#[test]
fn a_leader_epoch_from_the_future_is_cut_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    crashed_at_epoch_2(dir.path());
    let path = active_log(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    let sizes = active_batch_sizes(dir.path());
    let last = sizes[..2].iter().sum::<usize>();
    // The epoch is bytes 12..16 of a batch, big-endian: flip the top bit of its low byte.
    bytes[last + 15] ^= 0x80;
    std::fs::write(&path, &bytes).unwrap();

    let mut log = reopen_default(dir.path());
    assert_eq!(log.log_end_offset(), 3, "the CRC does not cover the epoch");
    assert_eq!(log.truncate_above_epoch(2).unwrap(), Some(2));
    assert_eq!(log.log_end_offset(), 2);
    // Nothing above the ceiling: nothing cut.
    assert_eq!(log.truncate_above_epoch(2).unwrap(), None);
    log.close().unwrap();
    // A clean log is not even read.
    let mut log = reopen_default(dir.path());
    assert_eq!(log.truncate_above_epoch(0).unwrap(), None);
    assert_eq!(log.log_end_offset(), 2);
}

/// An epoch flipped *down* (2 became 0) is caught by the epoch cache, which recorded 2
/// for that offset.
#[test]
fn a_leader_epoch_below_the_cache_is_cut_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    crashed_at_epoch_2(dir.path());
    let path = active_log(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    let first = active_batch_sizes(dir.path())[0];
    bytes[first + 15] ^= 0x02;
    std::fs::write(&path, &bytes).unwrap();
    let mut log = reopen_default(dir.path());
    assert_eq!(log.truncate_above_epoch(9).unwrap(), Some(1));
    assert_eq!(log.log_end_offset(), 1);
}

/// Three one-record batches appended as leader at epoch 2, left as after a crash.
fn crashed_at_epoch_2(dir: &Path) {
    let mut log = Log::open(dir, LogConfig::default()).unwrap();
    for _ in 0..3 {
        let mut b = testkit::simple_batch(1, 10, 0);
        log.append_as_leader_with(&mut b, 2, 0, weir_storage::FlushMode::Inline)
            .unwrap();
    }
    drop(log); // no clean close
}

fn reopen_default(dir: &Path) -> Log {
    Log::open(dir, LogConfig::default()).unwrap()
}
