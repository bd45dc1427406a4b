//! Retention by time (`retention.ms`) and size (`retention.bytes`), plus the log-start
//! breach rule, deleting whole segments only and never the active one.
//!
//! [`plan`] is pure: it takes segment summaries and returns how many leading segments go.

use super::checkpoint::sync_dir;
use super::Log;
use crate::error::Result;
use crate::producer_state::snapshot;

/// What retention looks at for one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentSummary {
    /// Base offset.
    pub base_offset: i64,
    /// Size in bytes.
    pub size: u64,
    /// Largest record timestamp (file mtime when the segment has none).
    pub largest_timestamp: i64,
}

/// Settings the planner uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionRules {
    /// `cleanup.policy` contains `delete`.
    pub delete_policy: bool,
    /// `retention.ms`, -1 = forever.
    pub retention_ms: i64,
    /// `retention.bytes`, -1 = unlimited.
    pub retention_bytes: i64,
}

/// Result of [`Log::apply_retention`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    /// Segments deleted.
    pub segments_deleted: usize,
    /// Bytes freed.
    pub bytes_deleted: u64,
    /// Log start offset afterwards.
    pub log_start_offset: i64,
}

/// Number of leading segments to delete. `segments` is oldest first and its last element
/// is the active segment, which is never deleted. Deletion stops at the first segment that
/// does not qualify.
pub fn plan(
    segments: &[SegmentSummary],
    log_start_offset: i64,
    rules: RetentionRules,
    now_ms: i64,
) -> usize {
    let total: u64 = segments.iter().map(|s| s.size).sum();
    let mut excess: i64 = if rules.delete_policy && rules.retention_bytes >= 0 {
        total as i64 - rules.retention_bytes
    } else {
        -1
    };
    let mut n = 0;
    for (i, seg) in segments.iter().enumerate() {
        let Some(next) = segments.get(i + 1) else {
            break; // the active segment
        };
        let breach = next.base_offset <= log_start_offset;
        let by_time = rules.delete_policy
            && rules.retention_ms >= 0
            && now_ms.saturating_sub(seg.largest_timestamp) > rules.retention_ms;
        let by_size = excess >= 0 && excess - seg.size as i64 >= 0;
        if !(breach || by_time || by_size) {
            break;
        }
        if excess >= 0 {
            excess -= seg.size as i64;
        }
        n += 1;
    }
    n
}

impl Log {
    /// Applies retention at `now_ms`: deletes qualifying leading segments, advances and
    /// persists the log start offset, and drops producer state and snapshots below it.
    pub fn apply_retention(&mut self, now_ms: i64) -> Result<RetentionOutcome> {
        self.check_poisoned()?;
        let summaries: Vec<SegmentSummary> = self
            .segments
            .values()
            .map(|s| SegmentSummary {
                base_offset: s.base_offset(),
                size: s.size(),
                largest_timestamp: if s.max_timestamp() >= 0 {
                    s.max_timestamp()
                } else {
                    s.mtime_ms()
                },
            })
            .collect();
        let rules = RetentionRules {
            delete_policy: self.config.cleanup_policy.delete,
            retention_ms: self.config.retention_ms,
            retention_bytes: self.config.retention_bytes,
        };
        let n = plan(&summaries, self.log_start_offset, rules, now_ms);
        let mut out = RetentionOutcome {
            log_start_offset: self.log_start_offset,
            ..Default::default()
        };
        if n == 0 {
            return Ok(out);
        }
        let new_start = summaries
            .get(n)
            .map_or(self.log_start_offset, |s| s.base_offset)
            .max(self.log_start_offset);
        // Persist the new start before the files go, so a crash cannot resurrect a gap.
        self.log_start_offset = new_start;
        self.write_checkpoint(false)?;
        self.epochs.update(|e| e.truncate_from_start(new_start))?;
        for s in summaries.iter().take(n) {
            if let Some(seg) = self.segments.remove(&s.base_offset) {
                out.bytes_deleted += seg.size();
                seg.delete()?;
                out.segments_deleted += 1;
            }
        }
        sync_dir(&self.dir)?;
        self.producers.evict_below(new_start);
        snapshot::prune(
            &self.dir,
            new_start,
            self.log_end_offset(),
            super::SNAPSHOTS_KEPT,
        )?;
        out.log_start_offset = new_start;
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn segs(v: &[(i64, u64, i64)]) -> Vec<SegmentSummary> {
        v.iter()
            .map(|&(base_offset, size, largest_timestamp)| SegmentSummary {
                base_offset,
                size,
                largest_timestamp,
            })
            .collect()
    }

    const DELETE: RetentionRules = RetentionRules {
        delete_policy: true,
        retention_ms: -1,
        retention_bytes: -1,
    };

    #[test]
    fn retention_table() {
        let s = segs(&[
            (0, 100, 1_000),
            (10, 100, 2_000),
            (20, 100, 3_000),
            (30, 50, 4_000),
        ]);
        // (rules, log start, now) -> segments deleted
        let cases = [
            (DELETE, 0, 10_000, 0),
            (
                RetentionRules {
                    retention_ms: 7_500,
                    ..DELETE
                },
                0,
                10_000,
                2,
            ),
            (
                RetentionRules {
                    retention_ms: 0,
                    ..DELETE
                },
                0,
                10_000,
                3,
            ), // never the active
            (
                RetentionRules {
                    retention_bytes: 200,
                    ..DELETE
                },
                0,
                0,
                1,
            ), // 350 - 100 >= 200
            (
                RetentionRules {
                    retention_bytes: 150,
                    ..DELETE
                },
                0,
                0,
                2,
            ),
            (
                RetentionRules {
                    retention_bytes: 0,
                    ..DELETE
                },
                0,
                0,
                3,
            ),
            (
                RetentionRules {
                    retention_bytes: 1000,
                    ..DELETE
                },
                0,
                0,
                0,
            ),
            (DELETE, 20, 0, 2), // breach
            (
                RetentionRules {
                    delete_policy: false,
                    retention_ms: 0,
                    retention_bytes: 0,
                },
                15,
                10_000,
                1,
            ),
        ];
        for (i, (rules, start, now, want)) in cases.into_iter().enumerate() {
            assert_eq!(plan(&s, start, rules, now), want, "case {i}");
        }
        // Stops at the first segment that does not qualify.
        let s = segs(&[(0, 100, 9_000), (10, 100, 1_000), (20, 100, 3_000)]);
        assert_eq!(
            plan(
                &s,
                0,
                RetentionRules {
                    retention_ms: 5_000,
                    ..DELETE
                },
                10_000
            ),
            0
        );
    }
}
