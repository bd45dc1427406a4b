//! `Log::read_records` with a zero-copy threshold: a slice of the segment file must hold
//! exactly the bytes the copying read returns (whole batches, the same limits), and must
//! only be offered for data in the page cache.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

use common::{fill, small_config};
use weir_storage::{testkit, Log, LogConfig, Records};

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 64 * 1024,
        ..small_config()
    }
}

fn slice_bytes(r: &Records) -> Option<Vec<u8>> {
    match r {
        Records::InFile(s) => Some(s.read_to_vec().unwrap()),
        Records::Copied(_) => None,
    }
}

fn copied(r: &Records) -> Vec<u8> {
    match r {
        Records::Copied(b) => b.to_vec(),
        Records::InFile(s) => s.read_to_vec().unwrap(),
    }
}

#[test]
fn a_slice_holds_exactly_what_the_copying_read_returns() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config()).unwrap();
    fill(&mut log, 600, 5, 1_000);
    assert!(log.segment_count() > 2, "reads must cross segments");
    let leo = log.log_end_offset();
    let supported = testkit::zero_copy_supported(dir.path());
    let mut sliced = 0;
    for offset in (0..leo).step_by(37) {
        for max_bytes in [1, 700, 4_000, 20_000, 1 << 20] {
            for max_offset in [None, Some(leo - 50), Some(offset + 3)] {
                let want = log.read(offset, max_bytes, max_offset).unwrap().records;
                let got = log
                    .read_records(offset, max_bytes, max_offset, Some(1), false)
                    .unwrap()
                    .expect("a blocking read always answers");
                if let Some(bytes) = slice_bytes(&got.records) {
                    sliced += 1;
                    assert_eq!(
                        bytes,
                        want.to_vec(),
                        "slice at {offset}/{max_bytes}/{max_offset:?}"
                    );
                } else {
                    assert_eq!(copied(&got.records), want.to_vec());
                }
            }
        }
    }
    if supported {
        assert!(sliced > 0, "cached data is never sliced");
    }
}

#[test]
fn small_reads_are_copied_and_cached_only_reads_stay_in_the_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config()).unwrap();
    fill(&mut log, 600, 5, 1_000);
    let r = log
        .read_records(0, 100, None, Some(64 * 1024), false)
        .unwrap()
        .unwrap();
    assert!(
        matches!(r.records, Records::Copied(ref b) if !b.is_empty()),
        "below the threshold: copied"
    );
    assert!(
        log.read_records(0, 1 << 20, None, Some(1), true)
            .unwrap()
            .is_none(),
        "an older segment is not read on an async thread"
    );
}

#[test]
fn pages_not_in_the_cache_are_copied() {
    use std::os::fd::AsRawFd;
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config()).unwrap();
    fill(&mut log, 100, 5, 1_000);
    log.flush().unwrap();
    let want = log.read(0, 1 << 20, None).unwrap().records;
    let mut evicted = false;
    for path in common::log_files(dir.path()) {
        let f = std::fs::File::open(&path).unwrap();
        // SAFETY: plain advice on an open descriptor.
        unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        evicted = true;
    }
    assert!(evicted);
    let got = log
        .read_records(0, 1 << 20, None, Some(1), false)
        .unwrap()
        .unwrap();
    // The copying read brings the pages back; what matters is that no slice of
    // uncached pages was handed out and the bytes are right.
    if testkit::nowait_reads_supported(dir.path()) {
        assert!(
            matches!(got.records, Records::Copied(_)),
            "a slice over pages not in the cache would read the disk while sending"
        );
    }
    assert_eq!(copied(&got.records), want.to_vec());
}

#[test]
fn a_slice_is_sent_whole_and_a_truncated_one_fails() {
    let dir = tempfile::tempdir().unwrap();
    if !testkit::zero_copy_supported(dir.path()) {
        return;
    }
    let mut log = Log::open(dir.path(), config()).unwrap();
    fill(&mut log, 20, 5, 1_000);
    let want = log.read(0, 1 << 20, None).unwrap().records;
    let r = log
        .read_records(0, 1 << 20, None, Some(1), true)
        .unwrap()
        .unwrap();
    let Records::InFile(slice) = r.records else {
        panic!("cached active-segment data must be sliced");
    };
    let (a, mut b) = UnixStream::pair().unwrap();
    let mut sent = 0;
    while sent < slice.len() {
        sent += slice.send_to(a.as_fd(), sent).unwrap();
    }
    drop(a);
    let mut got = Vec::new();
    b.read_to_end(&mut got).unwrap();
    assert_eq!(got, want.to_vec());

    // A follower cutting its tail after the read: the rest of the slice is gone.
    let r = log
        .read_records(0, 1 << 20, None, Some(1), true)
        .unwrap()
        .unwrap();
    let Records::InFile(slice) = r.records else {
        panic!("sliced before");
    };
    log.truncate_to(1).unwrap();
    let (a, _b) = UnixStream::pair().unwrap();
    let mut sent = 0;
    let err = loop {
        match slice.send_to(a.as_fd(), sent) {
            Ok(n) => sent += n,
            Err(e) => break e,
        }
        assert!(sent < slice.len(), "a truncated slice was sent whole");
    };
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
}
