//! Compaction: latest value per key, offsets kept, tombstones, lag, multi-pass, crashes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use weir_protocol::batch::{decode_records, BatchIter};
use weir_storage::cleaner::Cleaner;
use weir_storage::testkit::{self, TestProducer};
use weir_storage::{CleanupPolicy, Log, LogConfig};

fn compact_config() -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        segment_index_bytes: 4096,
        index_interval_bytes: 256,
        retention_ms: -1,
        cleanup_policy: CleanupPolicy::parse("compact").unwrap(),
        min_cleanable_dirty_ratio: 0.0,
        delete_retention_ms: 1_000,
        ..LogConfig::default()
    }
}

/// All records in the log: offset -> (key, value).
fn records(log: &Log) -> BTreeMap<i64, (Vec<u8>, Option<Vec<u8>>)> {
    let mut out = BTreeMap::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let r = log.read(offset, 1 << 20, None).unwrap();
        assert!(!r.records.is_empty());
        for b in BatchIter::new(&r.records, true) {
            let (h, bytes) = b.unwrap();
            for rec in decode_records(bytes).unwrap() {
                if rec.offset >= offset {
                    out.insert(
                        rec.offset,
                        (rec.key.unwrap().to_vec(), rec.value.map(|v| v.to_vec())),
                    );
                }
            }
            offset = h.next_offset();
        }
    }
    out
}

/// Writes `rounds` updates of keys k0..k{keys}; value = "round-key". Returns expected latest.
fn write_updates(
    log: &mut Log,
    keys: usize,
    rounds: usize,
    ts: i64,
) -> BTreeMap<Vec<u8>, (i64, Vec<u8>)> {
    let mut latest = BTreeMap::new();
    for r in 0..rounds {
        for chunk in (0..keys).collect::<Vec<_>>().chunks(4) {
            let pairs: Vec<(Vec<u8>, Vec<u8>)> = chunk
                .iter()
                .map(|k| {
                    (
                        format!("k{k}").into_bytes(),
                        format!("v{r}-{k}").into_bytes(),
                    )
                })
                .collect();
            let refs: Vec<(&[u8], Option<&[u8]>)> =
                pairs.iter().map(|(k, v)| (&k[..], Some(&v[..]))).collect();
            let mut b = testkit::keyed_batch(&refs, ts);
            let info = log.append_as_leader(&mut b, 0, ts).unwrap();
            for (i, (k, v)) in pairs.into_iter().enumerate() {
                latest.insert(k, (info.base_offset + i as i64, v));
            }
        }
    }
    latest
}

/// After a clean with the active segment starting at `active_base`: below it exactly one
/// record per key (the newest below it); the overall latest value of every key readable.
fn expect_latest(log: &Log, latest: &BTreeMap<Vec<u8>, (i64, Vec<u8>)>, active_base: i64) {
    let recs = records(log);
    let mut seen = std::collections::BTreeSet::new();
    for (offset, (k, _)) in recs.range(..active_base).rev() {
        assert!(
            seen.insert(k.clone()),
            "two records for {:?} below {active_base}, one at {offset}",
            String::from_utf8_lossy(k)
        );
    }
    for (k, (off, v)) in latest {
        assert_eq!(
            recs.get(off),
            Some(&(k.clone(), Some(v.clone()))),
            "latest value survives"
        );
    }
}

/// What a correct clean leaves below `active_base`, computed from the records before it.
fn expected_after(
    before: &BTreeMap<i64, (Vec<u8>, Option<Vec<u8>>)>,
    active_base: i64,
) -> BTreeMap<i64, (Vec<u8>, Option<Vec<u8>>)> {
    let mut newest: BTreeMap<Vec<u8>, i64> = BTreeMap::new();
    for (o, (k, _)) in before.range(..active_base) {
        newest.insert(k.clone(), *o);
    }
    before
        .iter()
        .filter(|(o, (k, _))| **o >= active_base || newest.get(k) == Some(*o))
        .map(|(o, r)| (*o, r.clone()))
        .collect()
}

fn active_base(log: &Log) -> i64 {
    *log.segment_base_offsets().last().unwrap()
}

#[test]
fn keeps_the_latest_value_per_key_with_original_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), compact_config()).unwrap();
    let latest = write_updates(&mut log, 20, 10, 0);
    let want = expected_after(&records(&log), active_base(&log));
    let before = log.size_bytes();
    let leo = log.log_end_offset();
    assert!(log.needs_cleaning(0));
    let stats = Cleaner::new(1 << 20).clean(&mut log, 0).unwrap();
    assert_eq!(stats.passes, 1);
    assert!(stats.records_kept < stats.records_read);
    assert!(
        log.size_bytes() < before / 2,
        "{} vs {before}",
        log.size_bytes()
    );
    assert_eq!(log.log_end_offset(), leo);
    expect_latest(&log, &latest, active_base(&log));
    assert_eq!(records(&log), want);
    // Cleaned once: the ratio is now zero and another clean does nothing.
    assert!(!log.needs_cleaning(0));
    assert_eq!(Cleaner::new(1 << 20).clean(&mut log, 0).unwrap().passes, 0);
    // Survives reopen, clean or not.
    drop(log);
    let log = Log::open(dir.path(), compact_config()).unwrap();
    expect_latest(&log, &latest, active_base(&log));
    assert_eq!(log.log_end_offset(), leo);
}

#[test]
fn multi_pass_with_a_small_map_gives_the_same_result() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), compact_config()).unwrap();
    let latest = write_updates(&mut log, 60, 6, 0);
    let want = expected_after(&records(&log), active_base(&log));
    // Room for ~45 keys: several passes.
    let stats = Cleaner::new(24 * 50).clean(&mut log, 0).unwrap();
    assert!(stats.passes > 1, "{stats:?}");
    expect_latest(&log, &latest, active_base(&log));
    assert_eq!(records(&log), want);
}

#[test]
fn tombstones_live_for_delete_retention_then_go() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), compact_config()).unwrap();
    write_updates(&mut log, 8, 3, 100);
    let mut t = testkit::keyed_batch(&[(b"k1", None), (b"k2", None)], 100);
    let tomb = log.append_as_leader(&mut t, 0, 100).unwrap().base_offset;
    write_updates(&mut log, 4, 1, 100); // k0..k3 again
    write_updates(&mut log, 0, 0, 100);
    // Push everything into closed segments.
    for i in 0..40 {
        let key = format!("pad{i}");
        let mut b = testkit::keyed_batch(&[(key.as_bytes(), Some(b"x"))], 100);
        log.append_as_leader(&mut b, 0, 100).unwrap();
    }
    let mut cleaner = Cleaner::new(1 << 20);
    cleaner.clean(&mut log, 500).unwrap();
    let recs = records(&log);
    assert!(
        !recs.contains_key(&tomb),
        "k1 tombstone superseded by the k1 update"
    );
    assert_eq!(
        recs.values()
            .filter(|(k, v)| k == b"k2" && v.is_none())
            .count(),
        0,
        "k2's tombstone is superseded by its later update"
    );
    // A tombstone that is the latest for its key:
    let mut t = testkit::keyed_batch(&[(b"gone", Some(b"1"))], 100);
    log.append_as_leader(&mut t, 0, 100).unwrap();
    let mut t = testkit::keyed_batch(&[(b"gone", None)], 100);
    let tomb = log.append_as_leader(&mut t, 0, 100).unwrap().base_offset;
    for i in 0..40 {
        let key = format!("pad{i}");
        let mut b = testkit::keyed_batch(&[(key.as_bytes(), Some(b"y"))], 100);
        log.append_as_leader(&mut b, 0, 100).unwrap();
    }
    cleaner.clean(&mut log, 600).unwrap();
    assert_eq!(
        records(&log).get(&tomb),
        Some(&(b"gone".to_vec(), None)),
        "young tombstone kept"
    );
    // Make the log dirty again and clean after delete.retention.ms.
    for i in 0..40 {
        let key = format!("pad{i}");
        let mut b = testkit::keyed_batch(&[(key.as_bytes(), Some(b"z"))], 100);
        log.append_as_leader(&mut b, 0, 100).unwrap();
    }
    // The first clean that kept it set its horizon to 600 + delete.retention.ms.
    std::fs::remove_file(dir.path().join("cleaner.checkpoint")).unwrap();
    cleaner.clean(&mut log, 1_500).unwrap();
    assert_eq!(
        records(&log).get(&tomb),
        Some(&(b"gone".to_vec(), None)),
        "horizon not reached"
    );
    let r = log.read(tomb, 1, None).unwrap();
    let h = weir_protocol::batch::validate_batch(&r.records).unwrap();
    assert_ne!(h.attributes & 0x40, 0, "delete horizon flag set");
    assert_eq!(h.base_timestamp, 1_600);
    std::fs::remove_file(dir.path().join("cleaner.checkpoint")).unwrap();
    cleaner.clean(&mut log, 1_600).unwrap();
    assert!(
        records(&log).values().all(|(k, _)| k != b"gone"),
        "expired tombstone dropped"
    );
}

#[test]
fn min_compaction_lag_and_dirty_ratio_hold_cleaning_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = compact_config();
    cfg.min_compaction_lag_ms = 10_000;
    let mut log = Log::open(dir.path(), cfg.clone()).unwrap();
    write_updates(&mut log, 20, 10, 50_000);
    assert!(!log.needs_cleaning(55_000), "too young");
    assert_eq!(
        Cleaner::new(1 << 20)
            .clean(&mut log, 55_000)
            .unwrap()
            .passes,
        0
    );
    assert!(log.needs_cleaning(70_000));
    assert_eq!(
        Cleaner::new(1 << 20)
            .clean(&mut log, 70_000)
            .unwrap()
            .passes,
        1
    );

    cfg.min_compaction_lag_ms = 0;
    cfg.min_cleanable_dirty_ratio = 0.9;
    log.update_config(cfg).unwrap();
    write_updates(&mut log, 20, 2, 60_000);
    let ratio = log.cleanable_ratio(70_000);
    assert!(ratio > 0.0 && ratio < 0.9, "ratio {ratio}");
    assert!(!log.needs_cleaning(70_000));
    // delete-only logs are never compacted.
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(
        dir.path(),
        LogConfig {
            cleanup_policy: CleanupPolicy::default(),
            ..compact_config()
        },
    )
    .unwrap();
    write_updates(&mut log, 20, 10, 0);
    assert_eq!(
        Cleaner::new(1 << 20).clean(&mut log, 0).unwrap(),
        Default::default()
    );
}

#[test]
fn producer_state_survives_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), compact_config()).unwrap();
    let p = |seq| TestProducer {
        producer_id: 5,
        epoch: 0,
        base_sequence: seq,
    };
    // The producer's batches all get superseded by later keyed writes.
    let recs = [testkit::TestRecord {
        key: Some(b"k0"),
        value: Some(b"old"),
        timestamp: 0,
    }];
    let mut b = testkit::build_batch(&recs, Some(p(0)), 0);
    log.append_as_leader(&mut b, 0, 0).unwrap();
    let mut b = testkit::build_batch(&recs, Some(p(1)), 0);
    let last = log.append_as_leader(&mut b, 0, 0).unwrap();
    write_updates(&mut log, 20, 8, 0);
    Cleaner::new(1 << 20).clean(&mut log, 0).unwrap();
    // The producer's last batch stays as an empty batch, so recovery keeps its sequence.
    drop(log);
    std::fs::remove_file(dir.path().join("partition.checkpoint")).unwrap();
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "snapshot") {
            std::fs::remove_file(p).unwrap();
        }
    }
    let mut log = Log::open(dir.path(), compact_config()).unwrap();
    let st = log.producer_state(5).unwrap();
    assert_eq!(st.last_offset(), Some(last.last_offset));
    let mut b = testkit::build_batch(&recs, Some(p(1)), 0);
    assert!(log.append_as_leader(&mut b, 0, 0).unwrap().duplicate);
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
    }
}

#[test]
fn crash_mid_clean_rolls_back_or_completes() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), compact_config()).unwrap();
    let latest = write_updates(&mut log, 20, 10, 0);
    let all_before = records(&log);
    log.close().unwrap();
    // Snapshot of the directory before cleaning.
    let before = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), before.path());

    let mut log = Log::open(dir.path(), compact_config()).unwrap();
    Cleaner::new(1 << 20).clean(&mut log, 0).unwrap();
    log.close().unwrap();
    let cleaned_bases: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".log"))
        .collect();

    // Case 1: crash before the commit point: .cleaned files beside the old segments.
    let d1 = tempfile::tempdir().unwrap();
    copy_dir(before.path(), d1.path());
    for name in &cleaned_bases {
        let stem = &name[..20];
        for ext in ["log", "index", "timeindex"] {
            let src = dir.path().join(format!("{stem}.{ext}"));
            if src.exists() {
                std::fs::copy(&src, d1.path().join(format!("{stem}.{ext}.cleaned"))).unwrap();
            }
        }
    }
    let log = Log::open(d1.path(), compact_config()).unwrap();
    assert_eq!(records(&log), all_before, "rolled back: nothing lost");
    drop(log);
    assert!(std::fs::read_dir(d1.path()).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".cleaned")));

    // Case 2: crash after the commit point: .swap files beside (some of) the old segments.
    let d2 = tempfile::tempdir().unwrap();
    copy_dir(before.path(), d2.path());
    for name in &cleaned_bases {
        let stem = &name[..20];
        let last_active = *cleaned_bases.iter().max().unwrap() == *name;
        if last_active {
            continue;
        }
        for ext in ["log", "index", "timeindex"] {
            let src = dir.path().join(format!("{stem}.{ext}"));
            std::fs::copy(&src, d2.path().join(format!("{stem}.{ext}.swap"))).unwrap();
        }
    }
    let log = Log::open(d2.path(), compact_config()).unwrap();
    expect_latest(&log, &latest, active_base(&log));
    assert_eq!(log.log_end_offset(), all_before.keys().last().unwrap() + 1);
    drop(log);
    let names: Vec<String> = std::fs::read_dir(d2.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".log"))
        .collect();
    let mut a = names.clone();
    a.sort();
    let mut b = cleaned_bases.clone();
    b.sort();
    assert_eq!(a, b, "same segments as a completed clean");
}

#[test]
fn appends_proceed_while_a_clean_is_prepared_without_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = std::sync::RwLock::new(Log::open(dir.path(), compact_config()).unwrap());
    let mut latest = write_updates(&mut log.write().unwrap(), 20, 10, 0);
    let base_before = active_base(&log.read().unwrap());
    let mut cleaner = Cleaner::new(1 << 20);
    // Phase 1 under a read lock; phase 2 with no lock at all.
    let snap = log
        .read()
        .unwrap()
        .clean_snapshot(0)
        .expect("worth cleaning");
    let prepared = cleaner.prepare(&snap).unwrap();
    // The log takes appends (and rolls) while the cleaned segments wait.
    latest.extend(write_updates(&mut log.write().unwrap(), 20, 3, 0));
    assert!(
        active_base(&log.read().unwrap()) > base_before,
        "rolled meanwhile"
    );
    let leo = log.read().unwrap().log_end_offset();
    let stats = log.write().unwrap().commit_clean(prepared).unwrap();
    assert!(!stats.aborted);
    assert!(stats.segments_cleaned > 0);
    let log = log.into_inner().unwrap();
    assert_eq!(log.log_end_offset(), leo);
    // Only segments below the snapshot's active segment were cleaned; the later ones
    // still hold every update, and the latest value of each key is readable.
    expect_latest(&log, &latest, base_before);
    assert!(!dir.path().read_dir().unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains(".cleaned")));
    drop(log);
    let log = Log::open(dir.path(), compact_config()).unwrap();
    expect_latest(&log, &latest, base_before);
}

#[test]
fn retention_or_truncation_during_a_clean_aborts_the_swap() {
    let cleaned_files = |dir: &Path| {
        dir.read_dir()
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy().contains(".cleaned")
            })
            .count()
    };
    for change in ["retention", "delete_records", "truncate"] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig {
            cleanup_policy: CleanupPolicy::parse("compact,delete").unwrap(),
            ..compact_config()
        };
        let mut log = Log::open(dir.path(), cfg).unwrap();
        write_updates(&mut log, 20, 10, 0);
        let snap = log.clean_snapshot(0).expect("worth cleaning");
        let prepared = Cleaner::new(1 << 20).prepare(&snap).unwrap();
        assert!(cleaned_files(dir.path()) > 0, "{change}: work was written");
        match change {
            "retention" => {
                let mut c = log.config().clone();
                c.retention_bytes = 0;
                log.update_config(c).unwrap();
                assert!(log.apply_retention(0).unwrap().segments_deleted > 0);
            }
            "delete_records" => {
                let second = log.segment_base_offsets()[2];
                log.delete_records_before(second).unwrap();
            }
            _ => log.truncate_to(log.log_end_offset() / 2).unwrap(),
        }
        let before = records(&log);
        let stats = log.commit_clean(prepared).unwrap();
        assert!(stats.aborted, "{change}");
        assert_eq!(stats.segments_cleaned, 0, "{change}");
        assert_eq!(cleaned_files(dir.path()), 0, "{change}: work discarded");
        assert_eq!(records(&log), before, "{change}: log untouched");
        // The next clean starts from scratch and succeeds.
        let stats = Cleaner::new(1 << 20).clean(&mut log, 0).unwrap();
        assert!(!stats.aborted, "{change}");
        drop(log);
        Log::open(dir.path(), compact_config()).unwrap();
    }
}
