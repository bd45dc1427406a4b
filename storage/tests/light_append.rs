//! `Log::try_append_as_leader_light`: the append the broker runs on an async worker. It
//! must either do exactly what the ordinary append does, or refuse before changing
//! anything whenever the append would do more than write into the page cache (roll a
//! segment, write the leader-epoch cache), so the caller can redo it the usual way.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{read_all, small_config};
use weir_storage::{testkit, FlushMode, Log};

#[test]
fn a_light_append_is_an_ordinary_append() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    let mut first = testkit::simple_batch(3, 40, 1_000);
    log.append_as_leader_with(&mut first, 3, 1_000, FlushMode::Deferred)
        .unwrap();

    let mut b = testkit::simple_batch(2, 40, 1_001);
    let info = log
        .try_append_as_leader_light(&mut b, 3, 1_001)
        .unwrap()
        .expect("same epoch, room in the segment: light");
    assert_eq!((info.base_offset, info.last_offset), (3, 4));
    assert!(!info.duplicate);
    assert_eq!(log.log_end_offset(), 5);
    assert_eq!(read_all(&log), vec![first, b]);
}

#[test]
fn the_first_append_of_an_epoch_is_not_light_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    // An empty log has no epoch yet: its first append writes the epoch cache.
    let mut b = testkit::simple_batch(2, 40, 1_000);
    assert!(log
        .try_append_as_leader_light(&mut b, 3, 1_000)
        .unwrap()
        .is_none());
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.latest_epoch(), None);

    log.append_as_leader(&mut b, 3, 1_000).unwrap();
    let mut next = testkit::simple_batch(2, 40, 1_001);
    assert!(
        log.try_append_as_leader_light(&mut next, 4, 1_001)
            .unwrap()
            .is_none(),
        "a new leader epoch writes the cache file"
    );
    assert_eq!(log.log_end_offset(), 2);
    assert_eq!(log.latest_epoch(), Some(3));
    assert_eq!(read_all(&log), vec![b]);
}

#[test]
fn an_append_that_rolls_is_not_light_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    let mut written = Vec::new();
    let mut ts = 1_000;
    // Fill the 4 KiB segment with light appends until one would roll.
    let refused = loop {
        ts += 1;
        let mut b = testkit::simple_batch(3, 100, ts);
        if written.is_empty() {
            log.append_as_leader(&mut b, 3, ts).unwrap();
            written.push(b);
            continue;
        }
        match log.try_append_as_leader_light(&mut b, 3, ts).unwrap() {
            Some(_) => written.push(b),
            None => break b,
        }
        assert!(written.len() < 100, "never refused");
    };
    assert_eq!(log.segment_count(), 1);
    let end = log.log_end_offset();
    assert_eq!(read_all(&log), written);

    // The ordinary append then rolls and takes the same batch at the same offset.
    let mut b = refused;
    let info = log.append_as_leader(&mut b, 3, ts).unwrap();
    assert_eq!(info.base_offset, end);
    assert_eq!(log.segment_count(), 2);
    written.push(b);
    assert_eq!(read_all(&log), written);
}

#[test]
fn a_light_append_still_rejects_a_bad_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    let mut ok = testkit::simple_batch(1, 40, 1_000);
    log.append_as_leader(&mut ok, 3, 1_000).unwrap();
    let mut bad = testkit::simple_batch(2, 40, 1_001);
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    assert!(log.try_append_as_leader_light(&mut bad, 3, 1_001).is_err());
    assert_eq!(log.log_end_offset(), 1);
}

#[test]
fn a_cached_read_of_the_tail_is_the_ordinary_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    let written = common::fill(&mut log, 60, 3, 1_000);
    assert!(log.segment_count() > 2);
    let active_base = *log.segment_base_offsets().last().unwrap();
    let end = log.log_end_offset();

    // An older segment is never read on the async path.
    assert!(log.try_read_cached(0, 1_000, None).unwrap().is_none());
    let tail = log
        .try_read_cached(active_base, 100_000, Some(end))
        .unwrap();
    if testkit::nowait_reads_supported(dir.path()) {
        let tail = tail.expect("just written: in the page cache");
        let plain = log.read(active_base, 100_000, Some(end)).unwrap();
        assert_eq!(tail.records, plain.records);
        assert!(!tail.records.is_empty());
    } else {
        assert!(tail.is_none());
    }
    // Errors are the ordinary read's.
    assert!(log.try_read_cached(end + 1, 100, None).is_err());
    assert_eq!(written.len(), 60);
}

#[test]
fn a_cached_read_of_evicted_data_says_so() {
    use std::os::fd::AsRawFd;
    let dir = tempfile::tempdir().unwrap();
    if !testkit::nowait_reads_supported(dir.path()) {
        return;
    }
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    common::fill(&mut log, 3, 3, 1_000);
    log.flush().unwrap();
    let base = *log.segment_base_offsets().last().unwrap();
    // Drop the (clean, synced) pages of the active segment from the page cache.
    let active = common::log_files(dir.path()).pop().unwrap();
    let f = std::fs::File::open(&active).unwrap();
    // SAFETY: advice on a descriptor this test owns.
    let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(rc, 0);
    assert!(log.try_read_cached(base, 100_000, None).unwrap().is_none());
    // The ordinary read still works (and brings the pages back).
    assert!(!log.read(base, 100_000, None).unwrap().records.is_empty());
}

#[test]
fn a_refused_light_append_leaves_the_batch_as_the_client_sent_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = weir_storage::LogConfig {
        message_timestamp_type: weir_protocol::batch::TimestampType::LogAppendTime,
        ..small_config()
    };
    let mut log = Log::open(dir.path(), config).unwrap();
    let sent = testkit::simple_batch(2, 40, 1_000);
    let mut b = sent.clone();
    // Refused (no epoch yet): the batch must not carry the broker's LogAppendTime stamp,
    // which a producer may not set, or the ordinary append rejects it.
    assert!(log
        .try_append_as_leader_light(&mut b, 3, 5_000)
        .unwrap()
        .is_none());
    let info = log.append_as_leader(&mut b, 3, 5_000).unwrap();
    assert_eq!(info.log_append_time_ms, 5_000);
    assert_eq!(log.log_end_offset(), 2);
}
