//! `Log`: one partition's ordered segments, with append, read, truncation, retention,
//! flushing and crash recovery.
//!
//! - this file: the type, reads and accessors.
//! - `open`: loading and recovery after a crash.
//! - `append`: validation, offset assignment, idempotence, rolling, flush policy.
//! - `flush`: the flush policy, inline flushes and flush handles (fsync outside a lock).
//! - `truncate`: `truncate_to` and `delete_records_before`.
//! - `retention`: the pure retention planner and its application.
//! - `checkpoint`: the per-partition checkpoint file.
//! - `shutdown`: whether the log's checkpoint or its data directory's marker says it was
//!   closed cleanly.
//! - `epochs`: the leader-epoch cache (where each leader epoch starts).

mod append;
pub mod checkpoint;
pub mod epochs;
mod flush;
mod open;
pub mod retention;
mod shutdown;
mod truncate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::config::LogConfig;
use crate::error::{Error, Result};
use crate::file_slice::FileSlice;
use crate::producer_state::{snapshot, ProducerEntry, ProducerStateManager};
use crate::segment::pread::Wait;
use crate::segment::SegmentRead;
use crate::segment::{Segment, SegmentSettings};
use checkpoint::Checkpoint;

pub use flush::{FlushHandle, FlushMode};
pub use open::RecoveryInfo;
pub use retention::RetentionOutcome;
pub use shutdown::Shutdown;

/// Result of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record appended (or of the original batch for a duplicate).
    pub base_offset: i64,
    /// Offset of the last record.
    pub last_offset: i64,
    /// The broker time stamped on the batches, or -1 unless LogAppendTime is configured.
    pub log_append_time_ms: i64,
    /// Records in the request.
    pub record_count: u32,
    /// The batch was already in the log (idempotent retry); nothing was appended.
    pub duplicate: bool,
    /// With [`FlushMode::Deferred`]: the flush policy wants the data durable before it
    /// is acknowledged, so the caller must flush (see [`Log::flush_handle`]) and wait.
    /// Always false with [`FlushMode::Inline`], which has flushed already.
    pub flush_needed: bool,
    /// With [`FlushMode::Deferred`]: unflushed data is older than `flush.ms`, so the
    /// caller should start a flush now, but need not hold the acknowledgement for it
    /// (the data the time bound protects was acknowledged earlier; Kafka's log flusher
    /// and Redis's `everysec` do not hold writes either). Never set with `flush_needed`.
    pub flush_soon: bool,
}

/// Result of a read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadInfo {
    /// Whole batches, as stored.
    pub records: Bytes,
    /// Log start offset at the time of the read.
    pub log_start_offset: i64,
    /// Log end offset at the time of the read.
    pub log_end_offset: i64,
}

/// Fetched records: copied, or left in a segment file for the kernel to send.
#[derive(Debug, Clone)]
pub enum Records {
    /// Whole batches, copied into memory.
    Copied(Bytes),
    /// Whole batches in the page cache of a segment file.
    InFile(FileSlice),
}

impl Records {
    /// Bytes of batches.
    pub fn len(&self) -> usize {
        match self {
            Records::Copied(b) => b.len(),
            Records::InFile(s) => s.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Result of [`Log::read_records`].
#[derive(Debug, Clone)]
pub struct RecordsRead {
    /// Whole batches, as stored.
    pub records: Records,
    /// Log start offset at the time of the read.
    pub log_start_offset: i64,
    /// Log end offset at the time of the read.
    pub log_end_offset: i64,
}

/// A partition log. `Send + Sync`; the broker serialises writers (e.g. a `Mutex`/`RwLock`
/// per partition) while reads only need `&self`.
pub struct Log {
    dir: PathBuf,
    config: LogConfig,
    /// Segments by base offset; the last one is active.
    segments: BTreeMap<i64, Segment>,
    log_start_offset: i64,
    /// Every offset below this is fsynced.
    recovery_point: i64,
    /// Recovery point last written to the checkpoint file.
    persisted_recovery_point: i64,
    last_checkpoint_ms: i64,
    unflushed_messages: u64,
    /// Append time of the oldest unflushed data.
    first_unflushed_ms: Option<i64>,
    producers: ProducerStateManager,
    /// Set when an fsync failed: the page cache may have dropped our dirty pages, so
    /// retrying the fsync could "succeed" over lost data. Only a reopen (which re-validates
    /// the files) clears it.
    poisoned: bool,
    recovery: RecoveryInfo,
    /// Test hook: the next fsync reports EIO.
    fail_next_fsync: bool,
    /// The checkpoint on disk is absent or says "clean", so it must be rewritten as
    /// unclean before the first change. Deferring this keeps opening and closing an idle
    /// partition free of fsyncs. Never set when the data directory's marker decides.
    needs_unclean_mark: bool,
    /// Who vouches for a clean close at the next open.
    shutdown: Shutdown,
    /// The files may differ from what a clean close left (anything but a trusted open
    /// with no change since), so `close` must flush and checkpoint.
    changed: bool,
    /// Bumped whenever the tail is cut, so a flush handle taken before a truncation
    /// cannot vouch for data appended after it at the same offsets.
    tail_epoch: u64,
    /// Where each leader epoch's records start.
    epochs: epochs::EpochCache,
}

/// How often `maybe_flush` persists an advanced recovery point.
const CHECKPOINT_INTERVAL_MS: i64 = 60_000;
/// Producer snapshots kept on disk.
const SNAPSHOTS_KEPT: usize = 2;

impl Log {
    /// The latest leader epoch that wrote to this log.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.epochs().latest()
    }

    /// Where the largest epoch ≤ `epoch` ends in this log (OffsetForLeaderEpoch), or
    /// `None` when this log knows no such epoch.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        self.epochs
            .epochs()
            .end_offset_for(epoch, self.log_end_offset())
    }

    /// The leader-epoch entries (epoch, start offset), oldest first.
    pub fn epoch_entries(&self) -> &[(i32, i64)] {
        self.epochs.epochs().entries()
    }

    fn settings(&self) -> SegmentSettings {
        settings_of(&self.config)
    }

    fn active(&self) -> Result<&Segment> {
        self.segments
            .values()
            .next_back()
            .ok_or_else(|| Error::corrupt(&self.dir, "log has no segments"))
    }

    fn active_mut(&mut self) -> Result<&mut Segment> {
        let dir = &self.dir;
        self.segments
            .values_mut()
            .next_back()
            .ok_or_else(|| Error::corrupt(dir, "log has no segments"))
    }

    fn check_poisoned(&self) -> Result<()> {
        if self.poisoned {
            return Err(Error::Poisoned {
                path: self.dir.clone(),
            });
        }
        Ok(())
    }

    /// Reads whole batches from `offset` (the batch holding it comes first) up to
    /// `max_bytes`, returning at least one batch when any exists (KIP-74). Batches whose
    /// last offset is ≥ `max_offset` (e.g. the high watermark) are not returned.
    pub fn read(&self, offset: i64, max_bytes: usize, max_offset: Option<i64>) -> Result<ReadInfo> {
        self.read_with(offset, max_bytes, max_offset, Wait::Block)
    }

    /// [`Log::read`] for an async thread: only from the active segment (where tail readers
    /// read, data just written) and only what the page cache holds. `Ok(None)` when the
    /// read would touch an older segment or wait for the disk; the caller then reads the
    /// usual way from a blocking thread.
    pub fn try_read_cached(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset: Option<i64>,
    ) -> Result<Option<ReadInfo>> {
        if offset < self.active()?.base_offset() {
            return Ok(None);
        }
        match self.read_with(offset, max_bytes, max_offset, Wait::CachedOnly) {
            Ok(info) => Ok(Some(info)),
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::WouldBlock => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The read a fetch uses: [`Log::read`] (or, with `cached_only`,
    /// [`Log::try_read_cached`], `Ok(None)` when it would wait) that, given
    /// `zero_copy_min`, leaves batches of at least that many bytes in the file
    /// ([`Records::InFile`]) when every page of them is in the page cache.
    pub fn read_records(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset: Option<i64>,
        zero_copy_min: Option<usize>,
        cached_only: bool,
    ) -> Result<Option<RecordsRead>> {
        let wait = if cached_only {
            if offset < self.active()?.base_offset() {
                return Ok(None);
            }
            Wait::CachedOnly
        } else {
            Wait::Block
        };
        match self.read_records_with(offset, max_bytes, max_offset, wait, zero_copy_min) {
            Ok(r) => Ok(Some(r)),
            Err(Error::Io { source, .. })
                if cached_only && source.kind() == std::io::ErrorKind::WouldBlock =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    fn read_with(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset: Option<i64>,
        wait: Wait,
    ) -> Result<ReadInfo> {
        let r = self.read_records_with(offset, max_bytes, max_offset, wait, None)?;
        let records = match r.records {
            Records::Copied(b) => b,
            // Not asked for a slice, so never given one; kept total.
            Records::InFile(slice) => Bytes::from(
                slice
                    .read_to_vec()
                    .map_err(Error::io_at("read segment", &self.dir))?,
            ),
        };
        Ok(ReadInfo {
            records,
            log_start_offset: r.log_start_offset,
            log_end_offset: r.log_end_offset,
        })
    }

    fn read_records_with(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset: Option<i64>,
        wait: Wait,
        zero_copy_min: Option<usize>,
    ) -> Result<RecordsRead> {
        let leo = self.log_end_offset();
        if offset < self.log_start_offset || offset > leo {
            return Err(Error::OffsetOutOfRange {
                offset,
                log_start: self.log_start_offset,
                log_end: leo,
            });
        }
        let mut records = Records::Copied(Bytes::new());
        let start = self
            .segments
            .range(..=offset)
            .next_back()
            .map_or(i64::MIN, |(b, _)| *b);
        for seg in self.segments.range(start..).map(|(_, s)| s) {
            // Past this segment's data (e.g. a gap left by compaction): try the next one.
            if seg.next_offset() <= offset {
                continue;
            }
            match seg.read_records(offset, max_bytes, max_offset, wait, zero_copy_min)? {
                Some(SegmentRead::Copied(b)) => records = Records::Copied(b),
                Some(SegmentRead::InFile(slice)) => records = Records::InFile(slice),
                None => {}
            }
            break;
        }
        Ok(RecordsRead {
            records,
            log_start_offset: self.log_start_offset,
            log_end_offset: leo,
        })
    }

    /// Offset and timestamp of the first record (in offset order, from the log start) whose
    /// timestamp is ≥ `ts`; `None` if there is none. Kafka's special values: -2 = earliest
    /// (log start), -1 = latest (log end), both with timestamp -1; -3 = the first record with the
    /// largest timestamp.
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>> {
        match ts {
            -2 => return Ok(Some((self.log_start_offset, -1))),
            -1 => return Ok(Some((self.log_end_offset(), -1))),
            -3 => return self.max_timestamp_record(),
            _ => {}
        }
        for seg in self.segments.values() {
            if seg.max_timestamp() < ts || seg.next_offset() <= self.log_start_offset {
                continue;
            }
            if let Some(found) = seg.find_by_timestamp(ts, self.log_start_offset)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// The first record carrying the largest timestamp in the log (Kafka's ListOffsets
    /// -3, KIP-734): the segment with the largest max timestamp (the first of equals),
    /// then the first record at that timestamp in it.
    fn max_timestamp_record(&self) -> Result<Option<(i64, i64)>> {
        let mut best: Option<&Segment> = None;
        for seg in self.segments.values() {
            if seg.next_offset() <= self.log_start_offset || seg.size() == 0 {
                continue;
            }
            if best.is_none_or(|b| seg.max_timestamp() > b.max_timestamp()) {
                best = Some(seg);
            }
        }
        match best {
            Some(seg) if seg.max_timestamp() >= 0 => {
                seg.find_by_timestamp(seg.max_timestamp(), self.log_start_offset)
            }
            _ => Ok(None),
        }
    }

    /// Called before any change to the files: a crash from here on must trigger recovery.
    pub(crate) fn mark_unclean(&mut self) -> Result<()> {
        self.changed = true;
        if self.needs_unclean_mark {
            self.write_checkpoint(false)?;
        }
        Ok(())
    }

    fn write_checkpoint(&mut self, clean: bool) -> Result<()> {
        // Under a directory marker the flag stays unset: a crash after the next open
        // leaves the checkpoint untouched, and an older binary, which trusts the flag,
        // must then recover rather than believe it.
        let clean = clean && !self.shutdown.by_marker();
        self.needs_unclean_mark = clean;
        Checkpoint {
            recovery_point: self.recovery_point,
            log_start_offset: self.log_start_offset,
            clean,
        }
        .write(&self.dir)?;
        self.persisted_recovery_point = self.recovery_point;
        Ok(())
    }

    /// Replaces the configuration; it applies to the next append and new segments.
    pub fn update_config(&mut self, config: LogConfig) -> Result<()> {
        config.validate()?;
        self.config = config;
        Ok(())
    }

    /// Current configuration.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Flushes, seals the active segment, snapshots producer state and marks the
    /// checkpoint clean (under a directory marker: persists the recovery point; the
    /// marker, written once every log is closed, says clean), so the next open needs no
    /// scan. A poisoned log is left for recovery instead.
    pub fn close(mut self) -> Result<()> {
        if self.poisoned {
            return Err(Error::Poisoned { path: self.dir });
        }
        let untouched = if self.shutdown.by_marker() {
            !self.changed
        } else {
            self.needs_unclean_mark
        };
        if untouched {
            // Nothing changed since a clean open (or ever): the files on disk are already
            // what a clean close leaves, apart from the active indexes' spare room.
            return self.active_mut()?.seal();
        }
        self.flush()?;
        self.active_mut()?.seal()?;
        self.active()?.flush()?;
        let leo = self.log_end_offset();
        snapshot::write(&self.dir, leo, &self.producers)?;
        snapshot::prune(&self.dir, self.log_start_offset, leo, SNAPSHOTS_KEPT)?;
        self.write_checkpoint(true)
    }

    /// Deletes the partition directory and everything in it.
    pub fn delete(self) -> Result<()> {
        let dir = self.dir.clone();
        drop(self);
        std::fs::remove_dir_all(&dir).map_err(Error::io_at("delete log directory", &dir))
    }

    /// First offset readers may fetch.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// Next offset to be assigned.
    pub fn log_end_offset(&self) -> i64 {
        self.segments
            .values()
            .next_back()
            .map_or(self.log_start_offset, |s| s.next_offset())
    }

    /// Offset below which everything is fsynced.
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }

    /// Total bytes of all segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(|s| s.size()).sum()
    }

    /// Number of segments, the active one included.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.segments.keys().copied().collect()
    }

    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// State of one idempotent producer (epoch and last batches), if known.
    pub fn producer_state(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(producer_id)
    }

    /// All producer state of this partition.
    pub fn producers(&self) -> &ProducerStateManager {
        &self.producers
    }

    /// What the last open had to do.
    pub fn recovery_info(&self) -> &RecoveryInfo {
        &self.recovery
    }

    /// Whether an fsync failure poisoned the log.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Test hook: makes the next fsync fail with EIO, as a failing disk would.
    #[doc(hidden)]
    pub fn inject_fsync_failure(&mut self) {
        self.fail_next_fsync = true;
    }

    /// Drops producer ids idle for longer than `expiration_ms`.
    pub fn expire_producers(&mut self, now_ms: i64, expiration_ms: i64) {
        self.producers.expire(now_ms, expiration_ms);
    }
}

impl Log {
    pub(crate) fn segments(&self) -> &BTreeMap<i64, Segment> {
        &self.segments
    }

    pub(crate) fn segment_settings(&self) -> SegmentSettings {
        self.settings()
    }

    /// Removes segments from the in-memory map (the cleaner's swap); returns them.
    pub(crate) fn take_segments(&mut self, bases: &[i64]) -> Vec<Segment> {
        bases
            .iter()
            .filter_map(|b| self.segments.remove(b))
            .collect()
    }

    pub(crate) fn tail_epoch(&self) -> u64 {
        self.tail_epoch
    }

    pub(crate) fn poison(&mut self) {
        self.poisoned = true;
    }

    pub(crate) fn insert_segment(&mut self, seg: Segment) {
        self.segments.insert(seg.base_offset(), seg);
    }

    /// Fails if the log is poisoned; marks the checkpoint unclean before a change.
    pub(crate) fn ensure_writable(&mut self) -> Result<()> {
        self.check_poisoned()?;
        self.mark_unclean()
    }
}

pub(crate) fn settings_of(config: &LogConfig) -> SegmentSettings {
    SegmentSettings {
        index_interval_bytes: config.index_interval_bytes,
        segment_index_bytes: config.segment_index_bytes,
    }
}
