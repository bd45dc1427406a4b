//! Group commit: flush handles taken under a lock, synced without it, completed under it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use common::{read_all, small_config};
use weir_storage::{testkit, Error, FlushMode, Log, LogConfig};

fn append(log: &mut Log, records: usize, now: i64) -> weir_storage::AppendInfo {
    let mut b = testkit::simple_batch(records, 40, now);
    log.append_as_leader_with(&mut b, 0, now, FlushMode::Deferred)
        .unwrap()
}

#[test]
fn deferred_append_reports_the_policy_instead_of_flushing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        flush_messages: 5,
        flush_ms: 100,
        ..small_config()
    };
    let mut log = Log::open(dir.path(), cfg).unwrap();
    let a = append(&mut log, 2, 0);
    assert!(!a.flush_needed);
    assert_eq!(log.recovery_point(), 0);
    // flush.ms elapsed since the first unflushed append: a flush is due, but the
    // acknowledgement need not wait for it.
    let b = append(&mut log, 1, 100);
    assert!(!b.flush_needed && b.flush_soon);
    let h = log.flush_handle().unwrap().expect("unflushed data");
    assert_eq!(h.offset(), 3);
    // Counters restarted: the next append alone is not due.
    assert!(!append(&mut log, 1, 101).flush_needed);
    // flush.messages reached.
    assert!(append(&mut log, 4, 102).flush_needed);
    let r = h.sync();
    assert_eq!(log.complete_flush(h, r).unwrap(), 3);
    assert_eq!(log.recovery_point(), 3);
    // The inline mode keeps flushing by itself.
    let mut c = testkit::simple_batch(5, 40, 103);
    let info = log.append_as_leader(&mut c, 0, 103).unwrap();
    assert!(!info.flush_needed);
    assert_eq!(log.recovery_point(), log.log_end_offset());
    assert!(
        log.flush_handle().unwrap().is_none(),
        "nothing left to flush"
    );
}

/// `flush.ms = 0` asks for every append to be durable before it is acknowledged, as
/// `flush.messages = 1` does; any other `flush.ms` only starts flushes.
#[test]
fn flush_ms_zero_holds_every_acknowledgement() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        flush_messages: u64::MAX,
        flush_ms: 0,
        ..small_config()
    };
    let mut log = Log::open(dir.path(), cfg).unwrap();
    let a = append(&mut log, 1, 5);
    assert!(a.flush_needed && !a.flush_soon);
}

#[test]
fn appends_proceed_while_a_handle_syncs_on_another_thread() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        flush_messages: 1,
        ..small_config()
    };
    let log = Arc::new(Mutex::new(Log::open(dir.path(), cfg).unwrap()));
    {
        let mut l = log.lock().unwrap();
        for i in 0..3 {
            assert!(append(&mut l, 1, i).flush_needed, "flush.messages = 1");
        }
    }
    let h = log.lock().unwrap().flush_handle().unwrap().unwrap();
    assert_eq!(h.offset(), 3);
    // The sync holds no lock: the appender below takes it while the sync runs.
    let syncer = std::thread::spawn(move || {
        let r = h.sync();
        (h, r)
    });
    {
        let mut l = log.lock().unwrap();
        // Enough to roll several segments while the handle still holds the first file.
        for i in 0..200 {
            append(&mut l, 1, 10 + i);
        }
        assert!(l.segment_count() > 1);
    }
    let (h, r) = syncer.join().unwrap();
    let mut l = log.lock().unwrap();
    let rp = l.complete_flush(h, r).unwrap();
    // The rolls made everything before the active segment durable; the handle never
    // moves the recovery point backwards nor past the log end.
    assert!(rp >= 3 && rp <= l.log_end_offset());
    let h = l.flush_handle().unwrap().unwrap();
    assert_eq!(h.offset(), l.log_end_offset());
    let r = h.sync();
    assert_eq!(l.complete_flush(h, r).unwrap(), 203);
    assert_eq!(read_all(&l).len(), 203);
}

#[test]
fn a_handle_survives_retention_deleting_its_segment() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        retention_bytes: 0,
        ..small_config()
    };
    let mut log = Log::open(dir.path(), cfg).unwrap();
    append(&mut log, 1, 0);
    let h = log.flush_handle().unwrap().unwrap();
    for i in 0..200 {
        append(&mut log, 1, i);
    }
    log.apply_retention(1_000).unwrap();
    assert!(log.log_start_offset() > 0, "the handle's segment is gone");
    let r = h.sync();
    assert!(r.is_ok(), "fsync of an unlinked file is harmless");
    log.complete_flush(h, r).unwrap();
    assert!(!log.is_poisoned());
}

#[test]
fn a_handle_from_before_a_truncation_does_not_vouch_for_new_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    for i in 0..5 {
        append(&mut log, 1, i);
    }
    let h = log.flush_handle().unwrap().unwrap();
    assert_eq!(h.offset(), 5);
    log.truncate_to(2).unwrap();
    assert_eq!(log.recovery_point(), 2);
    for i in 0..5 {
        append(&mut log, 1, 10 + i);
    }
    let r = h.sync();
    assert_eq!(
        log.complete_flush(h, r).unwrap(),
        2,
        "offsets 2..5 now hold data the handle never saw"
    );
}

#[test]
fn a_failed_handle_sync_poisons_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    append(&mut log, 2, 0);
    log.inject_fsync_failure();
    let h = log.flush_handle().unwrap().unwrap();
    // Appends between the handle and its failure still land; they are not acknowledged
    // as durable, and after the failure the log refuses everything until reopened.
    append(&mut log, 1, 1);
    let r = h.sync();
    assert!(matches!(r, Err(Error::Io { .. })));
    assert!(matches!(log.complete_flush(h, r), Err(Error::Io { .. })));
    assert!(log.is_poisoned());
    assert_eq!(log.recovery_point(), 0);
    let mut b = testkit::simple_batch(1, 10, 2);
    assert!(matches!(
        log.append_as_leader_with(&mut b, 0, 2, FlushMode::Deferred),
        Err(Error::Poisoned { .. })
    ));
    assert!(matches!(log.flush_handle(), Err(Error::Poisoned { .. })));
    drop(log);
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert!(!log.is_poisoned());
}

#[test]
fn durable_data_survives_reopen_after_handle_flushes() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut log = Log::open(dir.path(), small_config()).unwrap();
        for i in 0..10 {
            append(&mut log, 1, i);
        }
        let h = log.flush_handle().unwrap().unwrap();
        let r = h.sync();
        log.complete_flush(h, r).unwrap();
        // Dropped without close: the next open recovers.
    }
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert!(!log.recovery_info().clean_shutdown);
    assert_eq!(log.log_end_offset(), 10);
}
