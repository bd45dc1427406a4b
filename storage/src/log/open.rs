//! Opening a log: housekeeping, loading segments, and recovery after an unclean stop.
//!
//! After a clean close (checkpoint flag set, or the data directory's marker present: see
//! [`Shutdown`]) segments are loaded from their trimmed indexes
//! without reading the data. Otherwise every segment from the one holding the recovery point
//! onwards is scanned: each batch's length, magic, CRC and offsets are checked, indexes are
//! rebuilt, the file is cut at the first invalid byte, and any later segment is deleted (its
//! offsets would no longer follow on). A missing or corrupt checkpoint means a full scan.

use std::collections::BTreeMap;
use std::path::Path;

use super::checkpoint::{sync_dir, Checkpoint};
use super::{epochs, settings_of, Log, Shutdown, SNAPSHOTS_KEPT};
use crate::cleaner::swap;
use crate::config::LogConfig;
use crate::error::{Error, Result};
use crate::producer_state::{snapshot, ProducerStateManager};
use crate::segment::{segment_path, Segment};

/// What opening the log had to do (for logs, metrics and tests).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryInfo {
    /// The checkpoint (or the data directory's marker) said the log was closed cleanly;
    /// no data was scanned.
    pub clean_shutdown: bool,
    /// The checkpoint file existed but did not validate (full scan done).
    pub checkpoint_corrupt: bool,
    /// Segments whose data was scanned and validated.
    pub segments_scanned: usize,
    /// Bytes of valid data scanned.
    pub bytes_scanned: u64,
    /// Bytes cut off as invalid (torn or corrupt tail).
    pub bytes_truncated: u64,
    /// Later segments deleted because an earlier one was truncated.
    pub segments_deleted: usize,
    /// Segments whose indexes were missing or damaged and rebuilt.
    pub indexes_rebuilt: usize,
    /// Batches replayed into the producer state.
    pub producer_batches_replayed: u64,
}

impl Log {
    /// Opens (creating if needed) the log in `dir`, recovering it after a crash; its own
    /// checkpoint says whether it was closed cleanly ([`Shutdown::PerLog`]).
    pub fn open(dir: &Path, config: LogConfig) -> Result<Log> {
        Log::open_with(dir, config, Shutdown::PerLog)
    }

    /// Opens (creating if needed) the log in `dir`, recovering it unless `shutdown` says
    /// it was closed cleanly.
    pub fn open_with(dir: &Path, config: LogConfig, shutdown: Shutdown) -> Result<Log> {
        config.validate()?;
        std::fs::create_dir_all(dir).map_err(Error::io_at("create log directory", dir))?;
        swap::recover_dir(dir)?;
        let bases = housekeeping(dir)?;
        let now_ms = wall_clock_ms();
        let mut info = RecoveryInfo::default();

        let checkpoint = match Checkpoint::read(dir) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "corrupt checkpoint; scanning the whole log");
                info.checkpoint_corrupt = true;
                None
            }
        };
        let clean = match shutdown {
            Shutdown::PerLog => checkpoint.is_some_and(|c| c.clean),
            Shutdown::MarkedClean => checkpoint.is_some(),
            Shutdown::Unmarked => false,
        };
        info.clean_shutdown = clean;
        // Without a trustworthy checkpoint, nothing is known to be durable: scan everything.
        let recovery_point = checkpoint.map_or(0, |c| c.recovery_point);
        let mut log_start = checkpoint.map_or(0, |c| c.log_start_offset);

        let settings = settings_of(&config);
        let mut segments: BTreeMap<i64, Segment> = BTreeMap::new();
        let mut iter = bases.iter().copied().peekable();
        let mut needs_fsync: Vec<i64> = Vec::new();
        let mut indexes_created = false;
        let mut start_moved_past_end = false;
        while let Some(base) = iter.next() {
            let upper = iter.peek().copied();
            let prev_next = segments.values().next_back().map(|s| s.next_offset());
            let below_recovery_point = upper.is_some_and(|u| u <= recovery_point);
            let (mut seg, truncated) = if clean || below_recovery_point {
                let (seg, rebuilt) = Segment::open(dir, base, settings, now_ms, true)?;
                info.indexes_rebuilt += usize::from(rebuilt);
                (seg, false)
            } else {
                let (mut seg, created) = Segment::open(dir, base, settings, now_ms, false)?;
                indexes_created |= created;
                let out = seg.recover()?;
                info.segments_scanned += 1;
                info.bytes_scanned += out.valid_bytes;
                info.bytes_truncated += out.truncated_bytes;
                if out.truncated_bytes > 0 {
                    tracing::warn!(segment = %seg.log_path().display(), bytes = out.truncated_bytes,
                        "truncated invalid tail during recovery");
                }
                needs_fsync.push(base);
                (seg, out.truncated_bytes > 0)
            };
            // Offsets must keep increasing across segments; a segment that starts below the
            // previous one's end is the remains of an interrupted operation.
            if prev_next.is_some_and(|p| base < p) {
                tracing::warn!(segment = %seg.log_path().display(), "segment overlaps its predecessor; deleting");
                seg.delete()?;
                info.segments_deleted += 1;
                for rest in iter.by_ref() {
                    delete_files(dir, rest)?;
                    info.segments_deleted += 1;
                }
                break;
            }
            if upper.is_some() {
                seg.seal()?;
            }
            segments.insert(base, seg);
            if truncated {
                for rest in iter.by_ref() {
                    delete_files(dir, rest)?;
                    info.segments_deleted += 1;
                }
                break;
            }
        }

        let leo = segments.values().next_back().map(|s| s.next_offset());
        if leo.is_some_and(|leo| log_start > leo) {
            // The start offset was moved past everything we have (DeleteRecords then loss).
            for (_, seg) in std::mem::take(&mut segments) {
                seg.delete()?;
                start_moved_past_end = true;
            }
        }
        if segments.is_empty() {
            let seg = Segment::create(dir, log_start, settings, now_ms, prealloc(&config))?;
            segments.insert(log_start, seg);
        }
        if let Some(first) = segments.keys().next() {
            log_start = log_start.max(*first);
        }
        // What the scan kept becomes the recovery point, so it must be durable first (a
        // process crash leaves unacknowledged appends in the page cache). The active
        // segment needs only its data synced: its indexes are rebuilt after any unclean
        // stop, as in `flush`.
        let active_base = segments.keys().next_back().copied();
        for base in needs_fsync {
            match segments.get(&base) {
                Some(seg) if Some(base) == active_base => seg.sync_data()?,
                Some(seg) => seg.flush()?,
                None => {}
            }
        }
        if let Some(active) = segments.values_mut().next_back() {
            active.make_active(prealloc(&config))?;
        }
        // Only deleted segments and created index files change the directory; a cut tail
        // and rebuilt indexes change file contents, which the fsyncs above cover.
        let dir_changed = info.segments_deleted > 0 || indexes_created || start_moved_past_end;
        if dir_changed {
            sync_dir(dir)?;
        }
        let scanned = info.segments_scanned > 0 || info.bytes_truncated > 0 || dir_changed;

        // A log written before the cache existed: its first batch's epoch covers it (a
        // single node writes epoch 0 throughout); later epochs, if any, are unknown, so a
        // follower asking for them falls back to truncating at its high watermark.
        let first_epoch = || -> Option<i32> {
            let seg = segments.values().next()?;
            let (pos, _) = seg.find_batch(log_start).ok()??;
            seg.header_at(pos).ok()?.map(|h| h.partition_leader_epoch)
        };
        let mut epochs = epochs::EpochCache::open(dir, || match first_epoch() {
            Some(e) if e >= 0 => epochs::Epochs::from_entries(&[(e, log_start)]),
            _ => epochs::Epochs::default(),
        })?;
        let end = segments
            .values()
            .next_back()
            .map_or(log_start, |s| s.next_offset());
        epochs.update(|e| e.truncate_from_end(end))?;
        epochs.update(|e| e.truncate_from_start(log_start))?;

        let mut log = Log {
            dir: dir.to_path_buf(),
            config,
            segments,
            log_start_offset: log_start,
            recovery_point: 0,
            persisted_recovery_point: 0,
            last_checkpoint_ms: now_ms,
            unflushed_messages: 0,
            first_unflushed_ms: None,
            producers: ProducerStateManager::new(),
            poisoned: false,
            recovery: info,
            fail_next_fsync: false,
            needs_unclean_mark: true,
            shutdown,
            changed: !clean,
            tail_epoch: 0,
            epochs,
        };
        // Everything that survived was either trusted (clean/below the recovery point) or
        // scanned and fsynced just now.
        log.recovery_point = log.log_end_offset();
        log.reload_producer_state()?;
        let unchanged = checkpoint.is_some_and(|c| {
            c.log_start_offset == log.log_start_offset && c.recovery_point <= log.recovery_point
        });
        // An unclean checkpoint whose offsets still hold stays as it is: its older recovery
        // point only means that another crash rescans the same segments again. Rewriting
        // it costs two fsyncs and a rename per partition on every start after a crash. A
        // missing or corrupt one is replaced once anything was scanned or cut.
        if (checkpoint.is_none() && scanned) || (checkpoint.is_some() && !unchanged) {
            log.write_checkpoint(false)?;
        } else {
            // A clean checkpoint is rewritten as unclean lazily, before the first change;
            // an existing unclean one already makes a crash trigger recovery.
            log.needs_unclean_mark = !shutdown.by_marker() && checkpoint.is_none_or(|c| c.clean);
        }
        Ok(log)
    }

    /// Rebuilds producer state from the newest usable snapshot plus a replay of the batch
    /// headers after it. Snapshots beyond the log end are deleted.
    pub(crate) fn reload_producer_state(&mut self) -> Result<()> {
        let leo = self.log_end_offset();
        snapshot::prune(&self.dir, 0, leo, usize::MAX)?;
        let (from, mut state) = match snapshot::load_latest(&self.dir, self.log_start_offset, leo)?
        {
            Some((o, s)) => (o, s),
            None => (self.log_start_offset, ProducerStateManager::new()),
        };
        let mut replayed = 0u64;
        for seg in self.segments.values() {
            if seg.next_offset() <= from {
                continue;
            }
            let Some((mut pos, _)) = seg.find_batch(from)? else {
                continue;
            };
            while let Some(h) = seg.header_at(pos)? {
                if h.base_offset >= from {
                    state.record(&h);
                    replayed += 1;
                }
                pos += h.total_len() as u64;
            }
        }
        state.evict_below(self.log_start_offset);
        self.producers = state;
        self.recovery.producer_batches_replayed += replayed;
        snapshot::prune(&self.dir, self.log_start_offset, leo, SNAPSHOTS_KEPT)?;
        Ok(())
    }
}

pub(crate) fn prealloc(config: &LogConfig) -> Option<u64> {
    config.preallocate.then_some(config.segment_bytes)
}

pub(crate) fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn delete_files(dir: &Path, base: i64) -> Result<()> {
    for ext in ["log", "index", "timeindex"] {
        let p = segment_path(dir, base, ext);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("delete segment", &p, e)),
        }
    }
    Ok(())
}

/// Removes leftovers (temp files, orphan indexes) and returns the segment base offsets.
fn housekeeping(dir: &Path) -> Result<Vec<i64>> {
    let mut logs = Vec::new();
    let mut indexes = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(Error::io_at("list directory", dir))?;
    for entry in rd {
        let entry = entry.map_err(Error::io_at("list directory", dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let path = entry.path();
        if name.ends_with(".tmp") || name.ends_with(".deleted") || name.ends_with(".cleaned") {
            std::fs::remove_file(&path).map_err(Error::io_at("remove leftover", &path))?;
            continue;
        }
        let Some((stem, ext)) = name.split_once('.') else {
            continue;
        };
        if stem.len() != 20 {
            continue;
        }
        let Ok(base) = stem.parse::<i64>() else {
            continue;
        };
        match ext {
            "log" => logs.push(base),
            "index" | "timeindex" => indexes.push((base, path)),
            _ => {}
        }
    }
    logs.sort_unstable();
    for (base, path) in indexes {
        if logs.binary_search(&base).is_err() {
            std::fs::remove_file(&path).map_err(Error::io_at("remove orphan index", &path))?;
        }
    }
    Ok(logs)
}
