//! Log compaction (the cleaner): keep the latest record per key in closed segments.
//!
//! - `plan`: pure decisions (dirty ratio, lag, grouping, which record survives).
//! - `offset_map`: key hash → latest offset in a fixed memory budget.
//! - `rewrite`: writes one group's survivors to a `.cleaned` segment, offsets unchanged.
//! - `swap`: the crash-safe replacement of old segments by the cleaned one.
//! - `dirty_offset`: the `cleaner.checkpoint` file.
//!
//! One pass maps the keys of the dirty section into the offset map (stopping at a batch
//! boundary when the map is full), then rewrites every closed segment from the log start
//! up to that point. Logs whose dirty section exceeds the map take several passes. Control
//! batches and transactional data are copied unchanged; tombstones are dropped once their
//! batch is older than `delete.retention.ms`.

pub mod dirty_offset;
pub mod offset_map;
pub mod plan;
mod rewrite;
pub mod swap;

use weir_protocol::batch::{BatchIter, RecordIter, DEFAULT_MAX_DECOMPRESSED};

use crate::error::{Error, Result};
use crate::log::Log;
use offset_map::OffsetMap;
use plan::{CleanPlan, PlanInput, SegmentInfo};
use rewrite::{rewrite_group, Pass, READ_CHUNK};

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
    /// `min.cleanable.dirty.ratio`.
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
            let end = self.build_map(log, start, plan.first_uncleanable_offset)?;
            let pass = Pass {
                map: &self.map,
                map_end: end,
                now_ms,
                delete_retention_ms: log.config().delete_retention_ms,
            };
            let infos: Vec<SegmentInfo> = segment_infos(log)
                .into_iter()
                .filter(|s| s.base_offset < end && s.base_offset < plan.first_uncleanable_offset)
                .collect();
            for group in plan::group_segments(&infos, log.config().segment_bytes) {
                let cleaned = rewrite_group(log, &group, &pass, &mut stats)?;
                let bases: Vec<i64> = group.iter().map(|s| s.base_offset).collect();
                swap::commit(log, &bases, cleaned)?;
                stats.segments_cleaned += bases.len() as u64;
            }
            dirty_offset::write(log.dir(), end)?;
            stats.passes += 1;
            start = end;
        }
        Ok(stats)
    }

    /// Maps keys from `start` until the map is full (at a batch boundary) or `limit`.
    /// Returns the end of the mapped range.
    fn build_map(&mut self, log: &Log, start: i64, limit: i64) -> Result<i64> {
        self.map.clear();
        let mut end = start;
        for seg in log.segments().values() {
            if seg.next_offset() <= start || seg.base_offset() >= limit {
                continue;
            }
            let mut offset = start.max(seg.base_offset());
            while let Some(chunk) = seg.read(offset, READ_CHUNK, Some(limit))? {
                if chunk.is_empty() {
                    break;
                }
                for item in BatchIter::new(&chunk, false) {
                    let (h, bytes) = item?;
                    offset = h.next_offset();
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
        let _ = end;
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
