//! A cleaning pass split in three so the partition stays writable while it runs:
//!
//! 1. [`Log::clean_snapshot`] (shared access, e.g. a read lock): the plan plus shared
//!    handles on the closed segments to clean. Closed segments never change in place, so
//!    the handles can be read later without any lock.
//! 2. [`Cleaner::prepare`](super::Cleaner::prepare) (no lock, the long part): maps keys and
//!    writes the survivors to `.cleaned` segments.
//! 3. [`Log::commit_clean`] (exclusive, short): checks that the segments are still the ones
//!    cleaned (same base, size and end; no truncation meanwhile) and swaps them in with the
//!    crash-safe protocol of `swap`; otherwise discards the work.
//!
//! A [`PreparedClean`] dropped without being committed deletes its `.cleaned` files.

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use weir_protocol::batch::{BatchHeader, HEADER_LEN};

use super::plan::{CleanPlan, SegmentInfo};
use super::rewrite::READ_CHUNK;
use super::{dirty_offset, segment_infos, swap, CleanStats};
use crate::error::{Error, Result};
use crate::log::Log;
use crate::segment::{pread_exact, Segment, SegmentSettings};

/// One closed segment as the long phase sees it.
pub(crate) struct SourceSegment {
    pub info: SegmentInfo,
    file: Arc<File>,
    path: PathBuf,
}

impl SourceSegment {
    /// Whole batches from byte `pos`: about `READ_CHUNK` bytes, at least one batch.
    /// Returns the bytes and the position after them, or `None` at the end.
    pub fn read_chunk(&self, pos: u64) -> Result<Option<(Bytes, u64)>> {
        let size = self.info.size;
        if pos >= size {
            return Ok(None);
        }
        let avail = size - pos;
        let read = |len: u64| {
            pread_exact(&self.file, len as usize, pos)
                .map_err(Error::io_at("read segment", &self.path))
        };
        let mut buf = read((READ_CHUNK as u64).min(avail))?;
        let mut end = whole_batches(&buf);
        if end == 0 {
            // The first batch is larger than a chunk: read exactly that batch.
            let head = buf.get(..HEADER_LEN.min(buf.len())).unwrap_or(&[]);
            let len = BatchHeader::parse(head)?.total_len() as u64;
            if len > avail {
                return Err(Error::corrupt(
                    &self.path,
                    "batch runs past the segment end",
                ));
            }
            buf = read(len)?;
            end = buf.len();
        }
        buf.truncate(end);
        Ok(Some((Bytes::from(buf), pos + end as u64)))
    }
}

/// Length of the leading whole batches in `buf`.
fn whole_batches(buf: &[u8]) -> usize {
    let mut end = 0usize;
    while let Some(rest) = buf.get(end..) {
        match BatchHeader::parse(rest) {
            Ok(h) if h.total_len() <= rest.len() => end += h.total_len(),
            _ => break,
        }
    }
    end
}

/// What one cleaning pass needs from the log, taken with shared access.
pub struct CleanSnapshot {
    pub(crate) dir: PathBuf,
    pub(crate) settings: SegmentSettings,
    pub(crate) segment_bytes: u64,
    pub(crate) delete_retention_ms: i64,
    pub(crate) now_ms: i64,
    /// Where this pass starts mapping keys.
    pub(crate) start: i64,
    /// Records at or after this offset are not cleaned.
    pub(crate) limit: i64,
    /// Closed segments below `limit`, oldest first.
    pub(crate) segments: Vec<SourceSegment>,
    /// Last offset of each idempotent producer (its last batch is never dropped whole).
    pub(crate) producer_last_offsets: HashMap<i64, i64>,
    tail_epoch: u64,
}

impl CleanSnapshot {
    /// The segment with base offset `base`, if part of the snapshot.
    pub(crate) fn source(&self, base: i64) -> Option<&SourceSegment> {
        self.segments.iter().find(|s| s.info.base_offset == base)
    }
}

/// Cleaned segments written by the long phase, waiting for [`Log::commit_clean`].
pub struct PreparedClean {
    /// Each group of old segments with the cleaned segment replacing it.
    pub(crate) groups: Vec<(Vec<SegmentInfo>, Segment)>,
    /// First dirty offset once committed.
    pub(crate) dirty_end: i64,
    pub(crate) stats: CleanStats,
    tail_epoch: u64,
}

impl PreparedClean {
    pub(crate) fn new(snap: &CleanSnapshot, dirty_end: i64) -> PreparedClean {
        PreparedClean {
            groups: Vec::new(),
            dirty_end,
            stats: CleanStats::default(),
            tail_epoch: snap.tail_epoch,
        }
    }

    /// Where the dirty section will start after this pass.
    pub fn dirty_end(&self) -> i64 {
        self.dirty_end
    }
}

impl Drop for PreparedClean {
    fn drop(&mut self) {
        for (_, seg) in std::mem::take(&mut self.groups) {
            let path = seg.log_path().to_path_buf();
            // Leftovers are removed on the next open anyway, so a failure is only logged.
            if let Err(e) = seg.delete() {
                tracing::warn!(path = %path.display(), error = %e, "could not remove discarded clean");
            }
        }
    }
}

impl Log {
    /// Plans a clean at `now_ms` and, if it is worth doing, snapshots the first pass.
    /// Needs only shared access: appends may continue until [`Log::commit_clean`].
    pub fn clean_snapshot(&self, now_ms: i64) -> Option<CleanSnapshot> {
        if !self.config().cleanup_policy.compact {
            return None;
        }
        let plan = self.clean_plan(now_ms);
        if !plan.worth_cleaning {
            return None;
        }
        Some(self.clean_snapshot_from(&plan, plan.first_dirty_offset, now_ms))
    }

    /// A snapshot of one pass mapping keys from `start` up to the plan's limit.
    pub(crate) fn clean_snapshot_from(
        &self,
        plan: &CleanPlan,
        start: i64,
        now_ms: i64,
    ) -> CleanSnapshot {
        let limit = plan.first_uncleanable_offset;
        let last_base = self.segments().keys().next_back().copied();
        let segments = segment_infos(self)
            .into_iter()
            .filter(|s| s.base_offset < limit && Some(s.base_offset) != last_base)
            .filter_map(|info| {
                let seg = self.segments().get(&info.base_offset)?;
                Some(SourceSegment {
                    info,
                    file: seg.shared_log_file(),
                    path: seg.log_path().to_path_buf(),
                })
            })
            .collect();
        CleanSnapshot {
            dir: self.dir().to_path_buf(),
            settings: self.segment_settings(),
            segment_bytes: self.config().segment_bytes,
            delete_retention_ms: self.config().delete_retention_ms,
            now_ms,
            start,
            limit,
            segments,
            producer_last_offsets: self
                .producers()
                .entries()
                .filter_map(|e| Some((e.producer_id, e.last_offset()?)))
                .collect(),
            tail_epoch: self.tail_epoch(),
        }
    }

    /// Swaps in a prepared clean if the segments it replaces are unchanged; otherwise
    /// discards it (`stats.aborted`). Needs exclusive access, but only for renames and a
    /// checkpoint write.
    pub fn commit_clean(&mut self, mut prepared: PreparedClean) -> Result<CleanStats> {
        self.ensure_writable()?;
        let mut stats = std::mem::take(&mut prepared.stats);
        let active = self.segments().keys().next_back().copied();
        let unchanged = prepared.tail_epoch == self.tail_epoch()
            && prepared.groups.iter().flat_map(|(g, _)| g).all(|old| {
                Some(old.base_offset) != active
                    && self
                        .segments()
                        .get(&old.base_offset)
                        .is_some_and(|s| s.size() == old.size && s.next_offset() == old.next_offset)
            });
        if !unchanged {
            tracing::info!(dir = %self.dir().display(), "log changed during cleaning; discarding the pass");
            stats.aborted = true;
            return Ok(stats); // dropping `prepared` removes its files
        }
        while !prepared.groups.is_empty() {
            let (group, cleaned) = prepared.groups.remove(0);
            let bases: Vec<i64> = group.iter().map(|s| s.base_offset).collect();
            swap::commit(self, &bases, cleaned)?;
            stats.segments_cleaned += bases.len() as u64;
        }
        dirty_offset::write(self.dir(), prepared.dirty_end)?;
        stats.passes += 1;
        Ok(stats)
    }
}
