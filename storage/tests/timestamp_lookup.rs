//! `Log::offset_for_timestamp` answers with the exact record, as Kafka's ListOffsets does:
//! the first record (in offset order) whose timestamp is ≥ the target, and its timestamp.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::small_config;
use weir_protocol::batch::{
    set_base_offset, BatchBuilder, BatchOptions, Compression, EndTxnMarker, NewRecord,
    TimestampType,
};
use weir_storage::{Log, LogConfig};

fn batch(compression: Compression, timestamps: &[i64]) -> Vec<u8> {
    let mut b = BatchBuilder::new(BatchOptions::new(compression));
    for ts in timestamps {
        b.push(&NewRecord::new(*ts, None, Some(&[7u8; 30])))
            .unwrap();
    }
    b.build().unwrap()
}

/// The answer by definition: scan every record in offset order.
fn brute_force(records: &[(i64, i64)], target: i64) -> Option<(i64, i64)> {
    records.iter().copied().find(|(_, ts)| *ts >= target)
}

#[test]
fn finds_the_exact_record_inside_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default()).unwrap();
    let mut b = batch(Compression::None, &[100, 200, 300, 400]);
    log.append_as_leader(&mut b, 0, 0).unwrap();
    let mut b = batch(Compression::None, &[500, 600]);
    log.append_as_leader(&mut b, 0, 0).unwrap();

    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((0, 100)));
    assert_eq!(log.offset_for_timestamp(250).unwrap(), Some((2, 300)));
    assert_eq!(log.offset_for_timestamp(300).unwrap(), Some((2, 300)));
    assert_eq!(log.offset_for_timestamp(401).unwrap(), Some((4, 500)));
    assert_eq!(log.offset_for_timestamp(600).unwrap(), Some((5, 600)));
    assert_eq!(log.offset_for_timestamp(601).unwrap(), None);
    // Special values are unchanged.
    assert_eq!(log.offset_for_timestamp(-2).unwrap(), Some((0, -1)));
    assert_eq!(log.offset_for_timestamp(-1).unwrap(), Some((6, -1)));
}

#[test]
fn out_of_order_timestamps_answer_with_the_first_record_in_offset_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default()).unwrap();
    let mut b = batch(Compression::None, &[100, 900, 200, 950]);
    log.append_as_leader(&mut b, 0, 0).unwrap();
    assert_eq!(log.offset_for_timestamp(150).unwrap(), Some((1, 900)));
    assert_eq!(log.offset_for_timestamp(920).unwrap(), Some((3, 950)));
}

#[test]
fn compressed_batches_across_segments_agree_with_a_brute_force_scan() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    let codecs = [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
        Compression::None,
    ];
    let mut records = Vec::new();
    let mut next = 0i64;
    for i in 0..40i64 {
        // Five records per batch, timestamps rising inside the batch with one dip.
        let base = 1_000 + i * 100;
        let tss = [base, base + 40, base + 20, base + 60, base + 80];
        let mut b = batch(codecs[i as usize % codecs.len()], &tss);
        log.append_as_leader(&mut b, 0, 0).unwrap();
        for ts in tss {
            records.push((next, ts));
            next += 1;
        }
    }
    assert!(log.segment_count() > 1, "the lookup must cross segments");
    for target in (900..5_100).step_by(10) {
        assert_eq!(
            log.offset_for_timestamp(target).unwrap(),
            brute_force(&records, target),
            "target {target}"
        );
    }
}

#[test]
fn log_append_time_records_carry_the_batch_time() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        message_timestamp_type: TimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let mut log = Log::open(dir.path(), cfg).unwrap();
    let mut b = batch(Compression::Lz4, &[1, 2, 3]);
    log.append_as_leader(&mut b, 0, 777).unwrap();
    let mut b = batch(Compression::None, &[4, 5]);
    log.append_as_leader(&mut b, 0, 900).unwrap();
    assert_eq!(log.offset_for_timestamp(2).unwrap(), Some((0, 777)));
    assert_eq!(log.offset_for_timestamp(778).unwrap(), Some((3, 900)));
    assert_eq!(log.offset_for_timestamp(901).unwrap(), None);
}

#[test]
fn control_batches_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default()).unwrap();
    // Written as a follower would: a transactional batch, its commit marker, more data.
    let mut data = BatchBuilder::new(BatchOptions {
        producer_id: 9,
        producer_epoch: 0,
        base_sequence: 0,
        transactional: true,
        ..BatchOptions::default()
    });
    data.push(&NewRecord::new(100, None, Some(b"a"))).unwrap();
    data.push(&NewRecord::new(200, None, Some(b"b"))).unwrap();
    let data = data.build().unwrap();
    let mut marker = EndTxnMarker {
        commit: true,
        coordinator_epoch: 0,
    }
    .build_batch(9, 0, 1_000)
    .unwrap();
    set_base_offset(&mut marker, 2);
    let mut tail = batch(Compression::None, &[300, 1_500]);
    set_base_offset(&mut tail, 3);
    let mut all = data;
    all.extend_from_slice(&marker);
    all.extend_from_slice(&tail);
    log.append_as_follower(&all, 0).unwrap();

    assert_eq!(log.offset_for_timestamp(150).unwrap(), Some((1, 200)));
    assert_eq!(log.offset_for_timestamp(900).unwrap(), Some((4, 1_500)));
    assert_eq!(log.offset_for_timestamp(1_501).unwrap(), None);
}

#[test]
fn records_below_the_log_start_are_not_answers() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default()).unwrap();
    let mut b = batch(Compression::Zstd, &[100, 200, 300, 400]);
    log.append_as_leader(&mut b, 0, 0).unwrap();
    log.delete_records_before(2).unwrap();
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((2, 300)));
    assert_eq!(log.offset_for_timestamp(350).unwrap(), Some((3, 400)));
}
