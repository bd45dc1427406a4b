//! Log compaction (the cleaner): keep the latest record per key in closed segments.
//!
//! - `plan`: pure decisions (dirty ratio, lag, grouping, which record survives).
//! - `offset_map`: key hash → latest offset in a fixed memory budget.
//! - `rewrite`: writes one group's survivors to a `.cleaned` segment, offsets unchanged.
//! - `swap`: the crash-safe replacement of old segments by the cleaned one.
//! - `job`: a pass split into snapshot (shared access), prepare (no lock) and commit
//!   (exclusive, short), so appends continue while the cleaner reads and writes.
//! - `dirty_offset`: the `cleaner.checkpoint` file.
//!
//! One pass maps the keys of the dirty section into the offset map (stopping at a batch
//! boundary when the map is full), then rewrites every closed segment from the log start
//! up to that point. Logs whose dirty section exceeds the map take several passes. Control
//! batches and transactional data are copied unchanged; tombstones are dropped once their
//! batch is older than `delete.retention.ms`.

pub mod dirty_offset;
mod job;
pub mod offset_map;
pub mod plan;
mod rewrite;
pub mod swap;

use weir_protocol::batch::{BatchIter, RecordIter, DEFAULT_MAX_DECOMPRESSED};

use crate::error::{Error, Result};
use crate::log::Log;
pub use job::{CleanSnapshot, PreparedClean};
use offset_map::OffsetMap;
use plan::{CleanPlan, PlanInput, SegmentInfo};
use rewrite::{rewrite_group, Pass};

/// Default offset-map budget (Kafka's `log.cleaner.dedupe.buffer.size`).
pub const DEFAULT_OFFSET_MAP_BYTES: usize = 128 << 20;

/// What one `clean` call did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanStats {
    /// Map-and-rewrite passes.
    pub passes: u32,
    /// Bytes read while rewriting.
    pub bytes_read: u64,
    /// Bytes written to cleaned segments.
    pub bytes_written: u64,
    /// Records examined.
    pub records_read: u64,
    /// Records kept.
    pub records_kept: u64,
    /// Batches re-encoded (the rest were copied or dropped whole).
    pub batches_rewritten: u64,
    /// Segments replaced.
    pub segments_cleaned: u64,
    /// The log changed while the pass ran (retention, truncation, ...): nothing swapped.
    pub aborted: bool,
}

impl CleanStats {
    fn add(&mut self, o: &CleanStats) {
        self.passes += o.passes;
        self.bytes_read += o.bytes_read;
        self.bytes_written += o.bytes_written;
        self.records_read += o.records_read;
        self.records_kept += o.records_kept;
        self.batches_rewritten += o.batches_rewritten;
        self.segments_cleaned += o.segments_cleaned;
        self.aborted |= o.aborted;
    }
}

/// The compactor. Holds its offset map between calls so the memory is allocated once.
pub struct Cleaner {
    map: OffsetMap,
}

impl Cleaner {
    /// A cleaner whose offset map uses about `offset_map_bytes`.
    pub fn new(offset_map_bytes: usize) -> Cleaner {
        Cleaner {
            map: OffsetMap::with_memory(offset_map_bytes),
        }
    }

    /// Compacts `log` if its policy includes `compact` and its dirty ratio is above
    /// `min.cleanable.dirty.ratio`, in as many passes as the offset map needs, holding
    /// `&mut Log` throughout. A broker that must keep appending uses
    /// [`Log::clean_snapshot`], [`Cleaner::prepare`] and [`Log::commit_clean`] instead.
    pub fn clean(&mut self, log: &mut Log, now_ms: i64) -> Result<CleanStats> {
        let mut stats = CleanStats::default();
        if !log.config().cleanup_policy.compact {
            return Ok(stats);
        }
        let plan = log.clean_plan(now_ms);
        if !plan.worth_cleaning {
            return Ok(stats);
        }
        let mut start = plan.first_dirty_offset;
        while start < plan.first_uncleanable_offset {
            let snap = log.clean_snapshot_from(&plan, start, now_ms);
            let prepared = self.prepare(&snap)?;
            let end = prepared.dirty_end();
            stats.add(&log.commit_clean(prepared)?);
            start = end;
        }
        Ok(stats)
    }

    /// The long part of one pass, without access to the log: maps keys from the
    /// snapshot's start (as far as the map holds) and writes cleaned segments for every
    /// closed segment up to there.
    pub fn prepare(&mut self, snap: &CleanSnapshot) -> Result<PreparedClean> {
        let end = self.build_map(snap)?;
        let mut prepared = PreparedClean::new(snap, end);
        let pass = Pass {
            map: &self.map,
            map_end: end,
            now_ms: snap.now_ms,
            delete_retention_ms: snap.delete_retention_ms,
        };
        let infos: Vec<SegmentInfo> = snap
            .segments
            .iter()
            .map(|s| s.info)
            .filter(|s| s.base_offset < end)
            .collect();
        for group in plan::group_segments(&infos, snap.segment_bytes) {
            // Pushed one by one so an error part-way still removes what was written.
            let cleaned = rewrite_group(snap, &group, &pass, &mut prepared.stats)?;
            prepared.groups.push((group, cleaned));
        }
        Ok(prepared)
    }

    /// Maps keys from the snapshot's start until the map is full (at a batch boundary) or
    /// its limit. Returns the end of the mapped range.
    fn build_map(&mut self, snap: &CleanSnapshot) -> Result<i64> {
        let (start, limit) = (snap.start, snap.limit);
        self.map.clear();
        let mut end = start;
        for seg in &snap.segments {
            if seg.info.next_offset <= start || seg.info.base_offset >= limit {
                continue;
            }
            let mut pos = 0;
            while let Some((chunk, next_pos)) = seg.read_chunk(pos)? {
                pos = next_pos;
                for item in BatchIter::new(&chunk, false) {
                    let (h, bytes) = item?;
                    if h.last_offset() >= limit {
                        return Ok(limit);
                    }
                    if h.last_offset() < start || h.is_control() || h.is_transactional() {
                        end = end.max(h.next_offset());
                        continue;
                    }
                    let count = h.records_count.max(0) as usize;
                    if self.map.len() + count > self.map.capacity() {
                        if self.map.is_empty() {
                            return Err(Error::InvalidConfig(format!(
                                "offset map too small for a batch of {count} records"
                            )));
                        }
                        return Ok(end);
                    }
                    let iter =
                        RecordIter::from_bytes(chunk.slice_ref(bytes), DEFAULT_MAX_DECOMPRESSED)?;
                    for rec in iter {
                        let rec = rec?;
                        if let Some(k) = rec.key.as_deref() {
                            self.map.put(k, rec.offset);
                        }
                    }
                    end = h.next_offset();
                }
            }
        }
        // Everything below `limit` fitted.
        Ok(limit)
    }
}

fn segment_infos(log: &Log) -> Vec<SegmentInfo> {
    log.segments()
        .values()
        .map(|s| SegmentInfo {
            base_offset: s.base_offset(),
            next_offset: s.next_offset(),
            size: s.size(),
            largest_timestamp: s.max_timestamp(),
        })
        .collect()
}

impl Log {
    /// The cleaner's view of this log at `now_ms`.
    pub fn clean_plan(&self, now_ms: i64) -> CleanPlan {
        let leo = self.log_end_offset();
        let first_dirty = dirty_offset::read(self.dir())
            .filter(|o| *o >= self.log_start_offset() && *o <= leo)
            .unwrap_or(self.log_start_offset());
        let c = self.config();
        plan::plan(
            &segment_infos(self),
            PlanInput {
                first_dirty_offset: first_dirty,
                min_compaction_lag_ms: c.min_compaction_lag_ms,
                min_cleanable_dirty_ratio: c.min_cleanable_dirty_ratio,
                now_ms,
            },
        )
    }

    /// Fraction of the closed log not yet compacted.
    pub fn cleanable_ratio(&self, now_ms: i64) -> f64 {
        self.clean_plan(now_ms).dirty_ratio
    }

    /// Whether the cleaner should compact this log now.
    pub fn needs_cleaning(&self, now_ms: i64) -> bool {
        self.config().cleanup_policy.compact && self.clean_plan(now_ms).worth_cleaning
    }
}
