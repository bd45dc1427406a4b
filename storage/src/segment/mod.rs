//! One segment: a `.log` file of whole batches plus its sparse `.index` and `.timeindex`.
//!
//! - `mmap_file`: the mapped, resizable file both indexes sit on.
//! - `offset_index` / `time_index`: index formats (documented on the types).
//! - `scan`: batch-by-batch validation of a `.log` (recovery, index rebuild).
//! - `read`: lookup by offset and reads of whole batches.
//! - `timestamp`: exact lookup by timestamp (time index, then one batch's records).
//! - `pread`: reads into uninitialised buffers.
//!
//! The `.log` holds batches exactly as appended (Kafka RecordBatch v2 bytes), with no file
//! header or footer. Reads use `pread` into `Bytes`, so readers never share a file cursor.

#![allow(dead_code)] // a few helpers exist for the cleaner

mod mmap_file;
mod offset_index;
pub(crate) mod page_cache;
pub(crate) mod pread;
mod read;
mod scan;
mod time_index;
mod timestamp;

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use weir_protocol::batch::BatchHeader;

use crate::error::{Error, Result};
use offset_index::OffsetIndex;
pub(crate) use read::SegmentRead;
pub use scan::ScanOutcome;
use time_index::TimeIndex;

/// Validates the batches of a `.log` file (see `scan`), calling `on_batch` for each.
pub(crate) fn scan_file(
    file: &File,
    path: &Path,
    base_offset: i64,
    len: u64,
    on_batch: impl FnMut(u64, &BatchHeader),
) -> Result<ScanOutcome> {
    scan::scan(file, path, base_offset, len, true, on_batch)
}

/// Reads exactly `len` bytes at `pos` of a segment file (the cleaner's unlocked reads).
pub(crate) fn pread_exact(file: &File, len: usize, pos: u64) -> std::io::Result<Vec<u8>> {
    pread::read_exact_at(file, len, pos)
}

/// File name stem of a segment: the base offset as 20 zero-padded digits.
pub fn file_stem(base_offset: i64) -> String {
    format!("{base_offset:020}")
}

/// Path of a segment file with `ext` (`"log"`, `"index"`, `"timeindex"`, ...).
pub fn segment_path(dir: &Path, base_offset: i64, ext: &str) -> PathBuf {
    dir.join(format!("{}.{ext}", file_stem(base_offset)))
}

/// Settings a segment needs from the log config.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SegmentSettings {
    pub index_interval_bytes: u32,
    pub segment_index_bytes: u32,
}

/// One segment of a partition log.
pub struct Segment {
    base_offset: i64,
    log_path: PathBuf,
    /// Shared so a flush can fsync it outside the partition lock (see `log::flush`).
    log: Arc<File>,
    /// Logical size: bytes of whole batches (the file may be longer when preallocated).
    size: u64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    /// Offset after the last batch (== base offset while empty).
    next_offset: i64,
    max_timestamp: i64,
    offset_of_max_timestamp: i64,
    /// maxTimestamp of the first batch, for `segment.ms` rolling; -1 if unknown.
    first_batch_timestamp: i64,
    created_ms: i64,
    bytes_since_index: u64,
    settings: SegmentSettings,
}

impl Segment {
    /// Creates a new empty segment (removing stale files with the same name).
    pub(crate) fn create(
        dir: &Path,
        base_offset: i64,
        settings: SegmentSettings,
        now_ms: i64,
        preallocate: Option<u64>,
    ) -> Result<Segment> {
        Self::create_with_suffix(dir, base_offset, settings, now_ms, preallocate, "")
    }

    /// Like [`Segment::create`] with `suffix` after each file name (`.cleaned`).
    pub(crate) fn create_with_suffix(
        dir: &Path,
        base_offset: i64,
        settings: SegmentSettings,
        now_ms: i64,
        preallocate: Option<u64>,
        suffix: &str,
    ) -> Result<Segment> {
        let path = |ext: &str| dir.join(format!("{}.{ext}{suffix}", file_stem(base_offset)));
        let log_path = path("log");
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&log_path)
            .map_err(Error::io_at("create segment", &log_path))?;
        let log = Arc::new(log);
        if let Some(len) = preallocate {
            log.set_len(len)
                .map_err(Error::io_at("preallocate segment", &log_path))?;
        }
        let offset_index =
            OffsetIndex::create(&path("index"), base_offset, settings.segment_index_bytes)?;
        let time_index = TimeIndex::create(
            &path("timeindex"),
            base_offset,
            settings.segment_index_bytes,
        )?;
        Ok(Segment {
            base_offset,
            log_path,
            log,
            size: 0,
            offset_index,
            time_index,
            next_offset: base_offset,
            max_timestamp: -1,
            offset_of_max_timestamp: base_offset,
            first_batch_timestamp: -1,
            created_ms: now_ms,
            bytes_since_index: 0,
            settings,
        })
    }

    /// Opens an existing segment. With `trust` the indexes are sanity-checked and used
    /// (rebuilt only when damaged); without it, the caller recovers the segment via
    /// [`Segment::recover`]. Returns whether the indexes had to be rebuilt (untrusted:
    /// whether index files were missing and created).
    pub(crate) fn open(
        dir: &Path,
        base_offset: i64,
        settings: SegmentSettings,
        now_ms: i64,
        trust: bool,
    ) -> Result<(Segment, bool)> {
        let log_path = segment_path(dir, base_offset, "log");
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&log_path)
            .map_err(Error::io_at("open segment", &log_path))?;
        let log = Arc::new(log);
        let size = log
            .metadata()
            .map_err(Error::io_at("stat segment", &log_path))?
            .len();
        let index_path = segment_path(dir, base_offset, "index");
        let time_path = segment_path(dir, base_offset, "timeindex");
        let mut missing = false;
        let offset_index = match OffsetIndex::open(&index_path, base_offset) {
            Ok(i) => i,
            Err(_) => {
                missing = true;
                OffsetIndex::create(&index_path, base_offset, settings.segment_index_bytes)?
            }
        };
        let time_index = match TimeIndex::open(&time_path, base_offset) {
            Ok(i) => i,
            Err(_) => {
                missing = true;
                TimeIndex::create(&time_path, base_offset, settings.segment_index_bytes)?
            }
        };
        let mut seg = Segment {
            base_offset,
            log_path,
            log,
            size,
            offset_index,
            time_index,
            next_offset: base_offset,
            max_timestamp: -1,
            offset_of_max_timestamp: base_offset,
            first_batch_timestamp: -1,
            created_ms: now_ms,
            bytes_since_index: 0,
            settings,
        };
        if !trust {
            // The caller's scan rebuilds the indexes; report only whether files were new.
            return Ok((seg, missing));
        }
        let healthy = !missing && seg.load_from_indexes().is_ok();
        if !healthy {
            tracing::warn!(segment = %seg.log_path.display(), "rebuilding damaged or missing index");
            seg.rebuild_indexes()?;
        }
        Ok((seg, !healthy))
    }

    /// Derives next offset and timestamps from trusted indexes plus a short header walk
    /// after the last offset-index entry.
    fn load_from_indexes(&mut self) -> std::result::Result<(), String> {
        self.offset_index.sanity_check(self.size)?;
        let (_, mut pos) = self.offset_index.lookup(i64::MAX);
        let mut next = self
            .offset_index
            .last()
            .map_or(self.base_offset, |(o, _)| o);
        let mut tail_max_ts = (-1i64, self.base_offset);
        let mut since = 0u64;
        while pos < self.size {
            let h = self
                .header_at(pos)
                .map_err(|e| e.to_string())?
                .ok_or("torn batch header below the recovery point")?;
            let end = pos + h.total_len() as u64;
            if end > self.size {
                return Err("batch runs past the end of the log".into());
            }
            if h.max_timestamp > tail_max_ts.0 {
                tail_max_ts = (h.max_timestamp, h.last_offset());
            }
            next = h.next_offset();
            since += h.total_len() as u64;
            pos = end;
        }
        if pos != self.size {
            return Err("log size is not on a batch boundary".into());
        }
        self.next_offset = next.max(self.base_offset);
        self.time_index.sanity_check(self.next_offset)?;
        let (mut max_ts, mut max_off) = self.time_index.last().unwrap_or((-1, self.base_offset));
        if tail_max_ts.0 > max_ts {
            (max_ts, max_off) = tail_max_ts;
        }
        self.max_timestamp = max_ts;
        self.offset_of_max_timestamp = max_off;
        self.bytes_since_index = since;
        self.first_batch_timestamp = match self.header_at(0) {
            Ok(Some(h)) => h.max_timestamp,
            _ => -1,
        };
        Ok(())
    }

    /// Rebuilds both indexes from the (trusted) `.log` without checking CRCs.
    pub(crate) fn rebuild_indexes(&mut self) -> Result<()> {
        let outcome = self.scan_and_rebuild(false)?;
        if outcome.truncated_bytes > 0 {
            // Below the recovery point a torn batch should not exist, but never keep it.
            tracing::warn!(segment = %self.log_path.display(), bytes = outcome.truncated_bytes,
                "truncated an invalid tail while rebuilding indexes");
        }
        Ok(())
    }

    /// Validates every batch (length, magic, CRC, increasing offsets), rebuilds the
    /// indexes and truncates the file at the first invalid byte.
    pub(crate) fn recover(&mut self) -> Result<ScanOutcome> {
        self.scan_and_rebuild(true)
    }

    fn scan_and_rebuild(&mut self, check_crc: bool) -> Result<ScanOutcome> {
        self.offset_index.reset();
        self.time_index.reset();
        self.offset_index
            .resize(self.settings.segment_index_bytes)?;
        self.time_index.resize(self.settings.segment_index_bytes)?;
        self.next_offset = self.base_offset;
        self.max_timestamp = -1;
        self.offset_of_max_timestamp = self.base_offset;
        self.first_batch_timestamp = -1;
        self.bytes_since_index = 0;
        let file_len = self
            .log
            .metadata()
            .map_err(Error::io_at("stat segment", &self.log_path))?
            .len();
        let mut valid_end = 0u64;
        // A second handle on the same file: the scan reads while `note_batch` updates self.
        let file = self
            .log
            .try_clone()
            .map_err(Error::io_at("dup segment handle", &self.log_path))?;
        let path = self.log_path.clone();
        let outcome = scan::scan(
            &file,
            &path,
            self.base_offset,
            file_len,
            check_crc,
            |pos, h| {
                self.note_batch(pos, h);
                valid_end = pos + h.total_len() as u64;
            },
        )?;
        self.size = valid_end;
        if file_len > valid_end {
            self.log
                .set_len(valid_end)
                .map_err(Error::io_at("truncate segment", &self.log_path))?;
        }
        Ok(outcome)
    }

    /// Bookkeeping after a batch landed at `pos` (append, recovery and rebuild share it).
    fn note_batch(&mut self, pos: u64, h: &BatchHeader) {
        if h.max_timestamp > self.max_timestamp {
            self.max_timestamp = h.max_timestamp;
            self.offset_of_max_timestamp = h.last_offset();
        }
        if pos == 0 {
            self.first_batch_timestamp = h.max_timestamp;
        }
        if self.bytes_since_index > u64::from(self.settings.index_interval_bytes) {
            self.offset_index.append(h.last_offset(), pos);
            self.time_index
                .maybe_append(self.max_timestamp, self.offset_of_max_timestamp, false);
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += h.total_len() as u64;
        self.next_offset = h.next_offset();
    }

    /// Appends already validated, offset-assigned batches. On a write error the file is cut
    /// back so no partial batch stays behind, and the error is returned.
    pub(crate) fn append(&mut self, bytes: &[u8], headers: &[(u64, BatchHeader)]) -> Result<()> {
        let start = self.size;
        if let Err(e) = self.log.write_all_at(bytes, start) {
            // Best effort: a failed cut leaves a torn tail that recovery removes.
            let _ = self.log.set_len(start);
            return Err(Error::io("append", &self.log_path, e));
        }
        for (rel_pos, h) in headers {
            let pos = start + rel_pos;
            self.note_batch(pos, h);
        }
        self.size = start + bytes.len() as u64;
        Ok(())
    }

    /// Cuts the segment before the first batch whose last offset is ≥ `offset`.
    /// Returns the bytes removed.
    pub(crate) fn truncate_to(&mut self, offset: i64) -> Result<u64> {
        let Some((pos, _)) = self.find_batch(offset)? else {
            return Ok(0);
        };
        let removed = self.size - pos;
        self.log
            .set_len(pos)
            .map_err(Error::io_at("truncate segment", &self.log_path))?;
        self.offset_index.truncate_to(offset);
        self.time_index.truncate_to(offset);
        self.size = pos;
        // Recompute the derived fields from the kept prefix.
        self.load_from_indexes()
            .map_err(|d| Error::corrupt(&self.log_path, d))?;
        Ok(removed)
    }

    /// Makes the segment read-only: final time-index entry, indexes and preallocated
    /// `.log` trimmed to their used size.
    pub(crate) fn seal(&mut self) -> Result<()> {
        self.time_index
            .maybe_append(self.max_timestamp, self.offset_of_max_timestamp, true);
        self.offset_index.trim()?;
        self.time_index.trim()?;
        let file_len = self
            .log
            .metadata()
            .map_err(Error::io_at("stat segment", &self.log_path))?
            .len();
        if file_len > self.size {
            self.log
                .set_len(self.size)
                .map_err(Error::io_at("trim segment", &self.log_path))?;
        }
        Ok(())
    }

    /// Re-opens a sealed (or freshly loaded) segment for appends.
    pub(crate) fn make_active(&mut self, preallocate: Option<u64>) -> Result<()> {
        self.offset_index
            .resize(self.settings.segment_index_bytes)?;
        self.time_index.resize(self.settings.segment_index_bytes)?;
        if let Some(len) = preallocate {
            if len > self.size {
                self.log
                    .set_len(len)
                    .map_err(Error::io_at("preallocate segment", &self.log_path))?;
            }
        }
        Ok(())
    }

    /// fsync of the data and msync of the indexes.
    pub(crate) fn flush(&self) -> Result<()> {
        self.sync_data()?;
        self.offset_index.flush()?;
        self.time_index.flush()
    }

    /// fsync of the `.log` data alone (the active segment's indexes are rebuilt by
    /// recovery after any unclean stop, so they need no msync to be trusted).
    pub(crate) fn sync_data(&self) -> Result<()> {
        self.log
            .sync_data()
            .map_err(Error::io_at("fsync segment", &self.log_path))
    }

    /// Removes the segment's files.
    pub(crate) fn delete(self) -> Result<()> {
        let paths = [
            self.log_path.clone(),
            self.offset_index.path().to_path_buf(),
            self.time_index.path().to_path_buf(),
        ];
        drop(self);
        for p in paths {
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("delete segment", &p, e)),
            }
        }
        Ok(())
    }

    /// Renames the three files to `<stem>.<ext><suffix>` (`suffix` may be empty), indexes
    /// first and the `.log` last: the `.log` name is what marks a swap step as done.
    pub(crate) fn rename_all(&mut self, dir: &Path, suffix: &str) -> Result<()> {
        let stem = file_stem(self.base_offset);
        let target = |ext: &str| dir.join(format!("{stem}.{ext}{suffix}"));
        self.offset_index.file_mut().rename(&target("index"))?;
        self.time_index.file_mut().rename(&target("timeindex"))?;
        let log_to = target("log");
        std::fs::rename(&self.log_path, &log_to)
            .map_err(Error::io_at("rename segment", &self.log_path))?;
        self.log_path = log_to;
        Ok(())
    }

    /// Whether the next append of `incoming` bytes should go to a new segment.
    pub(crate) fn should_roll(
        &self,
        incoming: u64,
        incoming_max_ts: i64,
        last_offset: i64,
        segment_bytes: u64,
        segment_ms: i64,
        now_ms: i64,
    ) -> bool {
        if self.size == 0 {
            return false;
        }
        let size = self.size > segment_bytes.saturating_sub(incoming);
        let waited = if self.first_batch_timestamp >= 0 {
            incoming_max_ts.saturating_sub(self.first_batch_timestamp)
        } else {
            now_ms.saturating_sub(self.created_ms)
        };
        let time = waited > segment_ms;
        let full = self.offset_index.is_full() || self.time_index.is_full();
        let overflow = last_offset - self.base_offset > i64::from(i32::MAX);
        size || time || full || overflow
    }

    /// First offset this segment may hold (its file name).
    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }
    /// Offset after its last batch.
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }
    /// Bytes of whole batches.
    pub fn size(&self) -> u64 {
        self.size
    }
    /// Largest batch timestamp, -1 if none.
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }
    pub(crate) fn log_path(&self) -> &Path {
        &self.log_path
    }
    pub(crate) fn log_file(&self) -> &File {
        &self.log
    }
    /// A shared handle on the `.log`, usable after the segment is rolled or deleted.
    pub(crate) fn shared_log_file(&self) -> Arc<File> {
        Arc::clone(&self.log)
    }
    pub(crate) fn index_entries(&self) -> usize {
        self.offset_index.entries()
    }
    /// Last-modified time of the `.log` in ms (retention of segments without timestamps).
    pub(crate) fn mtime_ms(&self) -> i64 {
        self.log
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as i64)
    }
}
