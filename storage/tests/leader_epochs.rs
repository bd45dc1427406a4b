//! The leader-epoch cache kept by `Log`: leader and follower appends record where each
//! epoch starts, truncation at either end trims it, and it survives a reopen — what a
//! follower needs to find where its log and a new leader's diverge.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use weir_storage::{testkit, Log, LogConfig};

fn leader_append(log: &mut Log, records: usize, epoch: i32) -> i64 {
    let mut b = testkit::simple_batch(records, 10, 1_700_000_000_000);
    log.append_as_leader(&mut b, epoch, 1_700_000_000_000)
        .unwrap()
        .base_offset
}

#[test]
fn leader_appends_record_each_epoch_start_and_reopen_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!(log.latest_epoch(), None);
    leader_append(&mut log, 3, 0);
    leader_append(&mut log, 2, 0);
    leader_append(&mut log, 4, 2);
    leader_append(&mut log, 1, 5);
    assert_eq!(log.epoch_entries(), &[(0, 0), (2, 5), (5, 9)]);
    assert_eq!(log.end_offset_for_epoch(0), Some((0, 5)));
    assert_eq!(log.end_offset_for_epoch(3), Some((2, 9)));
    assert_eq!(log.end_offset_for_epoch(5), Some((5, 10)));
    assert_eq!(log.end_offset_for_epoch(6), None);
    drop(log);
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!(log.epoch_entries(), &[(0, 0), (2, 5), (5, 9)]);
    assert_eq!(log.latest_epoch(), Some(5));
}

#[test]
fn truncation_trims_the_cache_and_a_follower_copies_the_leaders_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let mut leader = Log::open(&dir.path().join("leader"), LogConfig::default()).unwrap();
    leader_append(&mut leader, 3, 1);
    leader_append(&mut leader, 3, 4);
    leader_append(&mut leader, 3, 6);

    // A follower copies the bytes and ends up with the same epochs.
    let mut follower = Log::open(&dir.path().join("follower"), LogConfig::default()).unwrap();
    let all = leader.read(0, 1 << 20, None).unwrap();
    follower.append_as_follower(&all.records, 0).unwrap();
    assert_eq!(follower.epoch_entries(), leader.epoch_entries());

    // Cutting the tail back into epoch 4 forgets epoch 6; the log end is epoch 4's end.
    follower.truncate_to(5).unwrap();
    assert_eq!(follower.log_end_offset(), 3, "batches are never split");
    assert_eq!(follower.epoch_entries(), &[(1, 0)]);
    follower.truncate_to(0).unwrap();
    assert!(follower.epoch_entries().is_empty());

    // Moving the start forward (DeleteRecords) moves the first epoch's start with it.
    leader.delete_records_before(4).unwrap();
    assert_eq!(leader.epoch_entries(), &[(4, 4), (6, 6)]);
    drop(leader);
    let leader = Log::open(&dir.path().join("leader"), LogConfig::default()).unwrap();
    assert_eq!(leader.epoch_entries(), &[(4, 4), (6, 6)]);
}

#[test]
fn a_log_from_before_the_cache_gets_its_first_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default()).unwrap();
    leader_append(&mut log, 2, 0);
    leader_append(&mut log, 2, 0);
    drop(log);
    std::fs::remove_file(dir.path().join("leader-epoch-checkpoint")).unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!(log.epoch_entries(), &[(0, 0)]);
    assert_eq!(log.end_offset_for_epoch(0), Some((0, 4)));
}
