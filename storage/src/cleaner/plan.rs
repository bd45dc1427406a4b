//! Pure planning for compaction: what is dirty, whether it is worth cleaning, how segments
//! are grouped, and which records survive. No I/O here.

/// What the planner knows about one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Base offset.
    pub base_offset: i64,
    /// Offset after the last batch.
    pub next_offset: i64,
    /// Size in bytes.
    pub size: u64,
    /// Largest record timestamp, -1 if none.
    pub largest_timestamp: i64,
}

/// Inputs that are not per segment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanInput {
    /// Where the previous clean stopped (cleaner checkpoint), clamped to the log.
    pub first_dirty_offset: i64,
    /// `min.compaction.lag.ms`.
    pub min_compaction_lag_ms: i64,
    /// `min.cleanable.dirty.ratio`.
    pub min_cleanable_dirty_ratio: f64,
    /// Current time.
    pub now_ms: i64,
}

/// The cleaner's view of a log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CleanPlan {
    /// Start of the dirty section.
    pub first_dirty_offset: i64,
    /// Records at or after this offset may not be cleaned yet (active segment, lag).
    pub first_uncleanable_offset: i64,
    /// Bytes of segments before the dirty section.
    pub clean_bytes: u64,
    /// Bytes of whole segments in [first dirty, first uncleanable).
    pub cleanable_bytes: u64,
    /// cleanable / (clean + cleanable).
    pub dirty_ratio: f64,
    /// Ratio above `min.cleanable.dirty.ratio` and something to clean.
    pub worth_cleaning: bool,
}

/// Computes the plan. `segments` is oldest first and its last element is the active one.
pub fn plan(segments: &[SegmentInfo], input: PlanInput) -> CleanPlan {
    let active_base = segments.last().map_or(0, |s| s.base_offset);
    let first_dirty = input.first_dirty_offset;
    let mut first_uncleanable = active_base;
    if input.min_compaction_lag_ms > 0 {
        let horizon = input.now_ms.saturating_sub(input.min_compaction_lag_ms);
        if let Some(s) = segments
            .iter()
            .take(segments.len().saturating_sub(1))
            .filter(|s| s.next_offset > first_dirty)
            .find(|s| s.largest_timestamp > horizon)
        {
            first_uncleanable = first_uncleanable.min(s.base_offset);
        }
    }
    let mut clean_bytes = 0;
    let mut cleanable_bytes = 0;
    for s in segments.iter().take(segments.len().saturating_sub(1)) {
        if s.next_offset <= first_dirty {
            clean_bytes += s.size;
        } else if s.base_offset < first_uncleanable && s.next_offset <= first_uncleanable {
            cleanable_bytes += s.size;
        }
    }
    let total = clean_bytes + cleanable_bytes;
    let dirty_ratio = if total == 0 {
        0.0
    } else {
        cleanable_bytes as f64 / total as f64
    };
    CleanPlan {
        first_dirty_offset: first_dirty,
        first_uncleanable_offset: first_uncleanable,
        clean_bytes,
        cleanable_bytes,
        dirty_ratio,
        // A ratio of 0 means "clean whenever anything is cleanable".
        worth_cleaning: cleanable_bytes > 0
            && (dirty_ratio > input.min_cleanable_dirty_ratio
                || input.min_cleanable_dirty_ratio <= 0.0),
    }
}

/// Splits consecutive segments into groups whose combined size stays within
/// `max_group_bytes` (each group becomes one cleaned segment). A segment larger than the
/// limit forms a group on its own.
pub fn group_segments(segments: &[SegmentInfo], max_group_bytes: u64) -> Vec<Vec<SegmentInfo>> {
    let mut groups: Vec<Vec<SegmentInfo>> = Vec::new();
    let mut size = 0u64;
    for s in segments {
        match groups.last_mut() {
            Some(g)
                if size + s.size <= max_group_bytes
                    && g.first()
                        .is_some_and(|f| s.next_offset - f.base_offset <= i64::from(i32::MAX)) =>
            {
                g.push(*s);
                size += s.size;
            }
            _ => {
                groups.push(vec![*s]);
                size = s.size;
            }
        }
    }
    groups
}

/// One record's fate in a cleaning pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordFacts {
    /// Record offset.
    pub offset: i64,
    /// Record has a key.
    pub has_key: bool,
    /// Value is null (a tombstone when keyed).
    pub is_tombstone: bool,
    /// Latest offset of this key in the offset map, if mapped.
    pub latest_for_key: Option<i64>,
    /// The batch's delete horizon (KIP-534) if a previous clean set one.
    pub delete_horizon: Option<i64>,
}

/// Decides whether a data record survives a pass whose map covers offsets up to
/// `map_end` (exclusive). A tombstone that is the latest for its key survives until its
/// batch's delete horizon passes; the first clean that keeps it sets that horizon to
/// clean time + `delete.retention.ms` (KIP-534), so consumers get that long to see it.
pub fn keep_record(r: RecordFacts, map_end: i64, now_ms: i64) -> bool {
    if r.offset >= map_end {
        return true;
    }
    if !r.has_key {
        return false;
    }
    if r.latest_for_key.is_some_and(|latest| r.offset < latest) {
        return false;
    }
    if r.is_tombstone {
        return r.delete_horizon.is_none_or(|h| now_ms < h);
    }
    true
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn seg(base: i64, next: i64, size: u64, ts: i64) -> SegmentInfo {
        SegmentInfo {
            base_offset: base,
            next_offset: next,
            size,
            largest_timestamp: ts,
        }
    }

    fn input(dirty: i64, lag: i64, ratio: f64, now: i64) -> PlanInput {
        PlanInput {
            first_dirty_offset: dirty,
            min_compaction_lag_ms: lag,
            min_cleanable_dirty_ratio: ratio,
            now_ms: now,
        }
    }

    #[test]
    fn plan_table() {
        let segs = [
            seg(0, 10, 100, 10),
            seg(10, 20, 100, 20),
            seg(20, 30, 100, 30),
            seg(30, 35, 50, 40),
        ];
        // Nothing cleaned yet: all closed segments dirty, ratio 1.
        let p = plan(&segs, input(0, 0, 0.5, 100));
        assert_eq!(
            (p.first_uncleanable_offset, p.cleanable_bytes, p.clean_bytes),
            (30, 300, 0)
        );
        assert!(p.worth_cleaning);
        // Two thirds clean: ratio 1/3 < 0.5.
        let p = plan(&segs, input(20, 0, 0.5, 100));
        assert_eq!((p.clean_bytes, p.cleanable_bytes), (200, 100));
        assert!(!p.worth_cleaning);
        assert!(plan(&segs, input(20, 0, 0.3, 100)).worth_cleaning);
        // Lag: segments with records newer than now - lag are uncleanable.
        let p = plan(&segs, input(0, 85, 0.5, 100));
        assert_eq!(p.first_uncleanable_offset, 10);
        assert_eq!(p.cleanable_bytes, 100);
        // Only the active segment: nothing to do.
        let p = plan(&segs[3..], input(0, 0, 0.0, 100));
        assert!(!p.worth_cleaning);
    }

    #[test]
    fn grouping_respects_the_size_limit() {
        let segs = [
            seg(0, 10, 60, 0),
            seg(10, 20, 30, 0),
            seg(20, 30, 20, 0),
            seg(30, 40, 200, 0),
            seg(40, 50, 10, 0),
        ];
        let g: Vec<Vec<i64>> = group_segments(&segs, 100)
            .iter()
            .map(|g| g.iter().map(|s| s.base_offset).collect())
            .collect();
        assert_eq!(g, vec![vec![0, 10], vec![20], vec![30], vec![40]]);
    }

    #[test]
    fn record_fate_table() {
        let r = |offset, has_key, is_tombstone, latest: Option<i64>, horizon| RecordFacts {
            offset,
            has_key,
            is_tombstone,
            latest_for_key: latest,
            delete_horizon: horizon,
        };
        // (record, map_end, now) -> keep
        let cases = [
            (r(5, true, false, Some(9), None), 10, 0, false), // superseded
            (r(9, true, false, Some(9), None), 10, 0, true),  // latest
            (r(3, true, false, None, None), 10, 0, true),     // key not in this pass's map
            (r(12, true, false, Some(20), None), 10, 0, true), // beyond the pass
            (r(5, false, false, None, None), 10, 0, false),   // keyless
            (r(9, true, true, Some(9), None), 10, 100, true), // tombstone, no horizon yet
            (r(9, true, true, Some(9), Some(150)), 10, 100, true), // before its horizon
            (r(9, true, true, Some(9), Some(100)), 10, 100, false), // horizon passed
            (r(5, true, true, Some(9), None), 10, 100, false), // superseded tombstone
        ];
        for (i, (rec, end, now, want)) in cases.into_iter().enumerate() {
            assert_eq!(keep_record(rec, end, now), want, "case {i}");
        }
    }
}
