//! Append, read, roll, reopen, timestamps: the everyday paths of `Log`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{fill, read_all, small_config};
use weir_protocol::batch::{validate_batch, BatchIter, TimestampType};
use weir_storage::{testkit, Error, Log, LogConfig};

#[test]
fn append_assigns_offsets_and_read_returns_whole_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
    let mut b1 = testkit::simple_batch(3, 10, 1000);
    let info = log.append_as_leader(&mut b1, 7, 5000).unwrap();
    assert_eq!(
        (info.base_offset, info.last_offset, info.record_count),
        (0, 2, 3)
    );
    assert_eq!(info.log_append_time_ms, -1);
    assert!(!info.duplicate);
    let mut b2 = testkit::simple_batch(2, 10, 1001);
    let info = log.append_as_leader(&mut b2, 7, 5000).unwrap();
    assert_eq!((info.base_offset, info.last_offset), (3, 4));
    assert_eq!(log.log_end_offset(), 5);

    let r = log.read(0, 1 << 20, None).unwrap();
    assert_eq!(r.log_end_offset, 5);
    let batches: Vec<_> = BatchIter::new(&r.records, true)
        .map(|b| b.unwrap())
        .collect();
    assert_eq!(batches.len(), 2);
    assert_eq!(batches[0].0.base_offset, 0);
    assert_eq!(batches[0].0.partition_leader_epoch, 7);
    assert_eq!(batches[1].0.base_offset, 3);
    assert_eq!(
        batches[1].1,
        &b2[..],
        "stored bytes equal the patched input"
    );

    // Mid-batch offset returns the batch holding it; tiny max_bytes still returns one batch.
    let r = log.read(4, 1, None).unwrap();
    let h = validate_batch(&r.records).unwrap();
    assert_eq!(h.base_offset, 3);
    // max_offset (high watermark) hides batches not wholly below it.
    assert!(log.read(0, 1 << 20, Some(2)).unwrap().records.is_empty());
    let r = log.read(0, 1 << 20, Some(3)).unwrap();
    assert_eq!(BatchIter::new(&r.records, true).count(), 1);
    // At the end: empty; beyond: out of range.
    assert!(log.read(5, 100, None).unwrap().records.is_empty());
    assert!(matches!(
        log.read(6, 100, None),
        Err(Error::OffsetOutOfRange { offset: 6, .. })
    ));
}

#[test]
fn rejects_bad_batches_without_side_effects() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(
        dir.path(),
        LogConfig {
            max_message_bytes: 500,
            ..LogConfig::default()
        },
    )
    .unwrap();
    let mut big = testkit::simple_batch(10, 100, 0);
    assert!(matches!(
        log.append_as_leader(&mut big, 0, 0),
        Err(Error::RecordTooLarge { .. })
    ));
    let mut flipped = testkit::simple_batch(1, 10, 0);
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert!(matches!(
        log.append_as_leader(&mut flipped, 0, 0),
        Err(Error::InvalidBatch(_))
    ));
    let mut torn = testkit::simple_batch(1, 10, 0);
    torn.truncate(torn.len() - 3);
    assert!(log.append_as_leader(&mut torn, 0, 0).is_err());
    let mut control = testkit::build_batch(
        &[testkit::TestRecord {
            key: Some(&[0, 0, 0, 1]),
            value: Some(&[0, 0, 0, 0, 0, 1]),
            timestamp: 0,
        }],
        None,
        0x30,
    );
    assert!(matches!(
        log.append_as_leader(&mut control, 0, 0),
        Err(Error::InvalidRecord(_))
    ));
    assert!(log.append_as_leader(&mut [], 0, 0).is_err());
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.size_bytes(), 0);
}

#[test]
fn rolls_segments_and_reads_across_them_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    let written = fill(&mut log, 200, 3, 1_000);
    assert!(log.segment_count() > 5, "segments: {}", log.segment_count());
    assert_eq!(log.log_end_offset(), 600);
    let got = read_all(&log);
    assert_eq!(got, written);
    log.close().unwrap();

    let log = Log::open(dir.path(), small_config()).unwrap();
    let info = log.recovery_info().clone();
    assert!(info.clean_shutdown);
    assert_eq!(info.segments_scanned, 0, "clean close => no scan");
    assert_eq!(info.indexes_rebuilt, 0);
    assert_eq!(log.log_end_offset(), 600);
    assert_eq!(read_all(&log), written);
    // Every offset is readable and lands in the batch that holds it.
    for o in (0..600).step_by(37) {
        let r = log.read(o, 1, None).unwrap();
        let h = validate_batch(&r.records).unwrap();
        assert!(h.base_offset <= o && o <= h.last_offset());
    }
}

#[test]
fn unclean_reopen_scans_only_from_the_recovery_point() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    let written = fill(&mut log, 100, 2, 0);
    let segments = log.segment_count();
    drop(log); // no close: a crash as far as the files are concerned
    let log = Log::open(dir.path(), small_config()).unwrap();
    let info = log.recovery_info().clone();
    assert!(!info.clean_shutdown);
    assert_eq!(
        info.segments_scanned, 1,
        "only the active segment: {info:?}"
    );
    assert_eq!(info.bytes_truncated, 0);
    assert_eq!(log.segment_count(), segments);
    assert_eq!(read_all(&log), written);
}

#[test]
fn timestamps_lookup_and_log_append_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    for i in 0..50i64 {
        let mut b = testkit::simple_batch(2, 50, 10_000 + i * 100);
        log.append_as_leader(&mut b, 0, 0).unwrap();
    }
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((0, 10_000)));
    assert_eq!(log.offset_for_timestamp(10_250).unwrap(), Some((6, 10_300)));
    assert_eq!(
        log.offset_for_timestamp(14_900).unwrap(),
        Some((98, 14_900))
    );
    assert_eq!(log.offset_for_timestamp(15_000).unwrap(), None);
    assert_eq!(log.offset_for_timestamp(-2).unwrap(), Some((0, -1)));
    assert_eq!(log.offset_for_timestamp(-1).unwrap(), Some((100, -1)));
    log.close().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(
        log.offset_for_timestamp(12_345).unwrap(),
        Some((48, 12_400))
    );

    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        message_timestamp_type: TimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let mut log = Log::open(dir.path(), cfg).unwrap();
    let mut b = testkit::simple_batch(2, 50, 1);
    let info = log.append_as_leader(&mut b, 0, 777).unwrap();
    assert_eq!(info.log_append_time_ms, 777);
    let r = log.read(0, 1000, None).unwrap();
    let h = validate_batch(&r.records).unwrap();
    assert_eq!(h.max_timestamp, 777);
    assert_eq!(h.timestamp_type(), TimestampType::LogAppendTime);
}

#[test]
fn rolls_on_segment_ms() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_ms: 1000,
        ..LogConfig::default()
    };
    let mut log = Log::open(dir.path(), cfg).unwrap();
    for ts in [0, 500, 1000, 1001, 1500, 2100] {
        let mut b = testkit::simple_batch(1, 10, ts);
        log.append_as_leader(&mut b, 0, ts).unwrap();
    }
    // New segment when the batch is more than 1000 ms past the segment's first batch.
    assert_eq!(log.segment_base_offsets(), vec![0, 3, 5]);
}

#[test]
fn flush_policy_by_messages_moves_the_recovery_point() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        flush_messages: 4,
        ..LogConfig::default()
    };
    let mut log = Log::open(dir.path(), cfg).unwrap();
    let mut b = testkit::simple_batch(3, 10, 0);
    log.append_as_leader(&mut b, 0, 0).unwrap();
    assert_eq!(log.recovery_point(), 0);
    let mut b = testkit::simple_batch(1, 10, 0);
    log.append_as_leader(&mut b, 0, 0).unwrap();
    assert_eq!(log.recovery_point(), 4);
    let mut b = testkit::simple_batch(1, 10, 0);
    log.append_as_leader(&mut b, 0, 10).unwrap();
    log.maybe_flush(20).unwrap();
    assert_eq!(log.recovery_point(), 4, "flush.ms is infinite by default");
    let mut cfg = log.config().clone();
    cfg.flush_ms = 5;
    log.update_config(cfg).unwrap();
    log.maybe_flush(20).unwrap();
    assert_eq!(log.recovery_point(), 5);
}

#[test]
fn idle_open_close_stays_clean_and_a_change_after_a_clean_open_is_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    let written = fill(&mut log, 30, 2, 0);
    log.close().unwrap();
    for _ in 0..2 {
        let log = Log::open(dir.path(), small_config()).unwrap();
        assert!(log.recovery_info().clean_shutdown);
        log.close().unwrap();
    }
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    assert!(log.recovery_info().clean_shutdown);
    let mut b = testkit::simple_batch(2, 10, 0);
    log.append_as_leader(&mut b, 0, 0).unwrap();
    drop(log); // crash after a change
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert!(!log.recovery_info().clean_shutdown);
    assert!(log.recovery_info().segments_scanned >= 1);
    let got = read_all(&log);
    assert_eq!(got.len(), written.len() + 1);
    assert_eq!(got[..written.len()], written[..]);
}

#[test]
fn log_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Log>();
    assert_send_sync::<weir_storage::cleaner::Cleaner>();
}

#[test]
fn rolls_when_an_index_is_full() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_index_bytes: 48, // 6 offset entries, 4 time-index slots (one reserved)
        index_interval_bytes: 0, // index every batch after the first
        ..LogConfig::default()
    };
    let mut log = Log::open(dir.path(), cfg.clone()).unwrap();
    let written = fill(&mut log, 40, 1, 0);
    assert!(
        log.segment_count() >= 8,
        "segments: {}",
        log.segment_count()
    );
    assert_eq!(read_all(&log), written);
    log.close().unwrap();
    let log = Log::open(dir.path(), cfg).unwrap();
    assert_eq!(log.recovery_info().indexes_rebuilt, 0);
    assert_eq!(read_all(&log), written);
    assert_eq!(log.offset_for_timestamp(17).unwrap(), Some((17, 17)));
}
