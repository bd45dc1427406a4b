//! Retention, truncation, DeleteRecords, idempotence, delete: moving the log's ends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{fill, read_all, small_config};
use weir_protocol::batch::validate_batch;
use weir_storage::testkit::{self, TestProducer};
use weir_storage::{CleanupPolicy, Error, Log, LogConfig};

#[test]
fn retention_by_time_deletes_old_segments_and_persists_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = small_config();
    cfg.retention_ms = 10_000;
    let mut log = Log::open(dir.path(), cfg.clone()).unwrap();
    // Timestamps 0..120 in steps of 1; segments hold ~20 batches each.
    fill(&mut log, 120, 3, 0);
    let segs = log.segment_base_offsets();
    assert!(segs.len() > 3);
    // Nothing is old enough yet.
    assert_eq!(log.apply_retention(10_000).unwrap().segments_deleted, 0);
    // At now = 10_050 every segment whose newest record is older than 50 goes.
    let out = log.apply_retention(10_050).unwrap();
    assert!(out.segments_deleted >= 1);
    let start = log.log_start_offset();
    assert_eq!(start, out.log_start_offset);
    assert_eq!(log.segment_base_offsets()[0], start);
    assert!(matches!(
        log.read(0, 100, None),
        Err(Error::OffsetOutOfRange { .. })
    ));
    // Far in the future: everything but the active segment.
    let out = log.apply_retention(1_000_000).unwrap();
    assert!(out.segments_deleted >= 1);
    assert_eq!(log.segment_count(), 1);
    let start = log.log_start_offset();
    drop(log); // crash: the start offset must survive
    let log = Log::open(dir.path(), cfg).unwrap();
    assert_eq!(log.log_start_offset(), start);
    assert_eq!(log.log_end_offset(), 360);
}

#[test]
fn retention_by_bytes_and_compact_only_policy() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = small_config();
    cfg.retention_bytes = 8192;
    let mut log = Log::open(dir.path(), cfg.clone()).unwrap();
    fill(&mut log, 200, 3, 0);
    let before = log.size_bytes();
    assert!(before > 8192 * 2);
    let out = log.apply_retention(0).unwrap();
    assert!(out.segments_deleted > 0);
    assert!(log.size_bytes() >= 8192 - 4096 && log.size_bytes() <= before);
    assert!(
        log.size_bytes() - 8192 < 4096 + 1024,
        "size {}",
        log.size_bytes()
    );

    // compact-only: no time/size deletion.
    let dir = tempfile::tempdir().unwrap();
    cfg.cleanup_policy = CleanupPolicy::parse("compact").unwrap();
    cfg.retention_ms = 0;
    let mut log = Log::open(dir.path(), cfg).unwrap();
    fill(&mut log, 100, 3, 0);
    assert_eq!(log.apply_retention(1 << 40).unwrap().segments_deleted, 0);
}

#[test]
fn delete_records_moves_the_start_and_deletes_whole_segments_below() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    fill(&mut log, 100, 3, 0);
    let segs = log.segment_base_offsets();
    let target = segs[2] + 1;
    assert_eq!(log.delete_records_before(target).unwrap(), target);
    assert_eq!(log.segment_base_offsets()[0], segs[2]);
    assert_eq!(
        log.delete_records_before(5).unwrap(),
        target,
        "never backwards"
    );
    assert!(log.delete_records_before(10_000).is_err());
    // Reading below the start fails; at the start returns the batch holding it.
    assert!(log.read(target - 1, 100, None).is_err());
    let r = log.read(target, 10, None).unwrap();
    assert!(validate_batch(&r.records).unwrap().last_offset() >= target);
    assert_eq!(log.offset_for_timestamp(0).unwrap().unwrap().0, target);
    drop(log);
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.log_start_offset(), target);
}

#[test]
fn truncate_to_removes_the_tail_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    let written = fill(&mut log, 100, 3, 0);
    let segs = log.segment_base_offsets();
    // Mid-segment, on a batch boundary.
    let target = segs[1] + 6;
    log.truncate_to(target).unwrap();
    assert_eq!(log.log_end_offset(), target);
    assert_eq!(log.segment_base_offsets(), segs[..2].to_vec());
    assert_eq!(read_all(&log), written[..(target / 3) as usize].to_vec());
    // Appends continue from the cut.
    let mut b = testkit::simple_batch(2, 10, 0);
    assert_eq!(
        log.append_as_leader(&mut b, 1, 0).unwrap().base_offset,
        target
    );
    // Mid-batch: the whole batch goes.
    log.truncate_to(target + 1).unwrap();
    assert_eq!(log.log_end_offset(), target);
    // Beyond the end: nothing.
    log.truncate_to(10_000).unwrap();
    assert_eq!(log.log_end_offset(), target);
    log.close().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.log_end_offset(), target);
    // To zero: empty log starting at 0.
    log.truncate_to(0).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
    assert_eq!(log.segment_count(), 1);
    assert!(read_all(&log).is_empty());
}

fn pb(count: usize, pid: i64, epoch: i16, seq: i32) -> Vec<u8> {
    testkit::producer_batch(
        count,
        TestProducer {
            producer_id: pid,
            epoch,
            base_sequence: seq,
        },
        0,
    )
}

#[test]
fn idempotent_producer_dedup_and_sequence_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    let a = log.append_as_leader(&mut pb(3, 7, 0, 0), 0, 0).unwrap();
    let b = log.append_as_leader(&mut pb(2, 7, 0, 3), 0, 0).unwrap();
    assert_eq!((a.base_offset, b.base_offset), (0, 3));
    // Retry of the first batch: original offsets, nothing appended.
    let dup = log.append_as_leader(&mut pb(3, 7, 0, 0), 0, 0).unwrap();
    assert!(dup.duplicate);
    assert_eq!((dup.base_offset, dup.last_offset), (0, 2));
    assert_eq!(log.log_end_offset(), 5);
    // Gap.
    assert!(matches!(
        log.append_as_leader(&mut pb(1, 7, 0, 9), 0, 0),
        Err(Error::OutOfOrderSequence {
            expected: 5,
            got: 9,
            ..
        })
    ));
    // New epoch must start at 0; old epoch is fenced afterwards.
    assert!(matches!(
        log.append_as_leader(&mut pb(1, 7, 1, 5), 0, 0),
        Err(Error::OutOfOrderSequence { .. })
    ));
    log.append_as_leader(&mut pb(1, 7, 1, 0), 0, 0).unwrap();
    assert!(matches!(
        log.append_as_leader(&mut pb(1, 7, 0, 5), 0, 0),
        Err(Error::InvalidProducerEpoch {
            current: 1,
            got: 0,
            ..
        })
    ));
    assert_eq!(log.log_end_offset(), 6);
    let st = log.producer_state(7).unwrap().clone();
    assert_eq!(st.epoch, 1);

    // State survives a crash (replay) and a clean close (snapshot).
    drop(log);
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.producer_state(7), Some(&st));
    assert!(
        log.append_as_leader(&mut pb(1, 7, 1, 0), 0, 0)
            .unwrap()
            .duplicate
    );
    log.close().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.recovery_info().producer_batches_replayed, 0);
    assert_eq!(log.producer_state(7), Some(&st));
    assert_eq!(
        log.append_as_leader(&mut pb(2, 7, 1, 1), 0, 0)
            .unwrap()
            .base_offset,
        6
    );
    // Truncation rewinds producer state too.
    log.truncate_to(6).unwrap();
    assert_eq!(log.producer_state(7), Some(&st));
    assert_eq!(
        log.append_as_leader(&mut pb(2, 7, 1, 1), 0, 0)
            .unwrap()
            .base_offset,
        6
    );
}

#[test]
fn producer_state_survives_rolls_with_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    let mut seq = 0;
    for i in 0..200 {
        let pid = i % 3;
        if pid == 0 {
            log.append_as_leader(&mut pb(2, 100, 0, seq), 0, 0).unwrap();
            seq += 2;
        } else {
            fill(&mut log, 1, 2, 0);
        }
    }
    assert!(log.segment_count() > 3);
    let want = log.producer_state(100).unwrap().clone();
    drop(log);
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.producer_state(100), Some(&want));
    assert!(
        log.recovery_info().producer_batches_replayed < 100,
        "replay starts at the last snapshot: {:?}",
        log.recovery_info()
    );
    let snaps = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "snapshot")
        })
        .count();
    assert!(snaps <= 2, "old snapshots pruned: {snaps}");
    assert!(
        log.append_as_leader(&mut pb(2, 100, 0, seq - 2), 0, 0)
            .unwrap()
            .duplicate
    );
}

#[test]
fn delete_removes_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let mut log = Log::open(&path, LogConfig::default()).unwrap();
    fill(&mut log, 3, 1, 0);
    log.delete().unwrap();
    assert!(!path.exists());
}

#[test]
fn damaged_producer_snapshot_falls_back_to_replay() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    for seq in 0..50 {
        log.append_as_leader(&mut pb(1, 3, 0, seq), 0, 0).unwrap();
        fill(&mut log, 1, 3, 0);
    }
    let want = log.producer_state(3).unwrap().clone();
    log.close().unwrap();
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "snapshot") {
            std::fs::write(&p, b"\x00\x01garbage").unwrap();
        }
    }
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.producer_state(3), Some(&want));
    assert!(log.recovery_info().producer_batches_replayed > 0);
    assert!(
        log.append_as_leader(&mut pb(1, 3, 0, 49), 0, 0)
            .unwrap()
            .duplicate
    );
    assert!(matches!(
        log.append_as_leader(&mut pb(1, 3, 0, 51), 0, 0),
        Err(Error::OutOfOrderSequence { expected: 50, .. })
    ));
}

#[test]
fn follower_append_copies_leader_batches_verbatim() {
    let leader_dir = tempfile::tempdir().unwrap();
    let mut leader = Log::open(leader_dir.path(), small_config()).unwrap();
    fill(&mut leader, 30, 3, 0);
    leader.append_as_leader(&mut pb(2, 9, 0, 0), 4, 0).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut follower = Log::open(dir.path(), small_config()).unwrap();
    let mut offset = 0;
    while offset < leader.log_end_offset() {
        let r = leader.read(offset, 700, None).unwrap();
        let info = follower.append_as_follower(&r.records, 0).unwrap();
        assert_eq!(info.base_offset, offset);
        offset = info.last_offset + 1;
    }
    assert_eq!(read_all(&follower), read_all(&leader));
    assert_eq!(follower.producer_state(9), leader.producer_state(9));
    // Re-sending old data or damaged data is refused.
    let r = leader.read(0, 100, None).unwrap();
    assert!(follower.append_as_follower(&r.records, 0).is_err());
    let mut bad = leader
        .read(leader.log_end_offset() - 1, 100, None)
        .unwrap()
        .records
        .to_vec();
    let n = bad.len();
    bad[n - 1] ^= 1;
    assert!(follower.append_as_follower(&bad, 0).is_err());
    // A gap: the follower starts a new segment at the leader's offset.
    let mut b = testkit::simple_batch(2, 10, 0);
    weir_protocol::batch::set_base_offset(&mut b, 500);
    follower.append_as_follower(&b, 0).unwrap();
    assert_eq!(follower.log_end_offset(), 502);
    assert_eq!(*follower.segment_base_offsets().last().unwrap(), 500);
    drop(follower);
    let follower = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(follower.log_end_offset(), 502);
}
