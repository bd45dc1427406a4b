//! Moving the ends of the log: `truncate_to` (the tail, for replication) and
//! `delete_records_before` (the head, for DeleteRecords).

use super::open::{prealloc, wall_clock_ms};
use super::Log;
use crate::error::{Error, Result};
use crate::segment::Segment;

impl Log {
    /// Removes every batch whose last offset is ≥ `offset`. Batches are never split, so the
    /// new log end offset is the end of the last batch kept (≤ `offset`). Truncating at or
    /// below the first segment empties the log and restarts it at `offset`.
    pub fn truncate_to(&mut self, offset: i64) -> Result<()> {
        self.check_poisoned()?;
        if offset >= self.log_end_offset() {
            return Ok(());
        }
        if offset < 0 {
            return Err(Error::OffsetOutOfRange {
                offset,
                log_start: self.log_start_offset,
                log_end: self.log_end_offset(),
            });
        }
        self.mark_unclean()?;
        let first_base = self.segments.keys().next().copied().unwrap_or(0);
        if offset <= first_base || offset <= self.log_start_offset {
            self.truncate_fully_and_start_at(offset)?;
        } else {
            let doomed: Vec<i64> = self.segments.range(offset..).map(|(b, _)| *b).collect();
            for base in doomed {
                // Keep the segment that would become empty only if it is the first one.
                if base == first_base {
                    continue;
                }
                if let Some(seg) = self.segments.remove(&base) {
                    seg.delete()?;
                }
            }
            let pre = prealloc(&self.config);
            let active = self.active_mut()?;
            active.truncate_to(offset)?;
            active.make_active(pre)?;
        }
        self.after_tail_change()
    }

    /// After an unclean stop: cuts the log at the first batch of the active segment whose
    /// partition leader epoch is damaged. The epoch field is outside the batch CRC (the
    /// leader stamps it after the producer checksummed the batch), so a flipped bit there
    /// passes recovery. The epoch cache is derived from the same fields as they were
    /// appended, so a batch must carry the epoch the cache gives its offset; only past the
    /// cache's last entry (a new epoch whose entry the crash lost) may it be higher, and
    /// never above `max_epoch`, the partition's epoch in the metadata. The cut part is
    /// fetched again from the leader. Returns the offset cut at, if any. A clean log is
    /// not read.
    pub fn truncate_above_epoch(&mut self, max_epoch: i32) -> Result<Option<i64>> {
        if self.recovery.clean_shutdown || max_epoch < 0 {
            return Ok(None);
        }
        let cut = {
            let entries = self.epochs.epochs().entries();
            let active = self.active()?;
            let mut found = None;
            if let Some((mut pos, _)) = active.find_batch(active.base_offset())? {
                while let Some(h) = active.header_at(pos)? {
                    if !epoch_fits(entries, h.base_offset, h.partition_leader_epoch, max_epoch) {
                        found = Some(h.base_offset);
                        break;
                    }
                    pos += h.total_len() as u64;
                }
            }
            found
        };
        if let Some(at) = cut {
            tracing::warn!(dir = %self.dir.display(), offset = at, max_epoch,
                "batch with a damaged leader epoch; cutting the log there");
            self.truncate_to(at)?;
        }
        Ok(cut)
    }

    fn truncate_fully_and_start_at(&mut self, offset: i64) -> Result<()> {
        for (_, seg) in std::mem::take(&mut self.segments) {
            seg.delete()?;
        }
        let seg = Segment::create(
            &self.dir,
            offset,
            self.settings(),
            wall_clock_ms(),
            prealloc(&self.config),
        )?;
        self.segments.insert(offset, seg);
        self.log_start_offset = offset;
        self.epochs.update(|e| e.truncate_from_start(offset))?;
        Ok(())
    }

    fn after_tail_change(&mut self) -> Result<()> {
        self.tail_epoch += 1;
        let leo = self.log_end_offset();
        self.epochs.update(|e| e.truncate_from_end(leo))?;
        self.recovery_point = self.recovery_point.min(leo);
        self.unflushed_messages = 0;
        self.first_unflushed_ms = None;
        // Make the cut durable before the checkpoint claims it.
        if let Err(e) = self.active()?.flush() {
            self.poisoned = true;
            return Err(e);
        }
        self.recovery_point = leo;
        self.reload_producer_state()?;
        self.write_checkpoint(false)
    }

    /// Moves the log start offset forward to `offset` (DeleteRecords). Records below it
    /// become unreadable at once; whole segments below it are deleted. Returns the new log
    /// start offset.
    pub fn delete_records_before(&mut self, offset: i64) -> Result<i64> {
        self.check_poisoned()?;
        let leo = self.log_end_offset();
        if offset > leo || offset < 0 {
            return Err(Error::OffsetOutOfRange {
                offset,
                log_start: self.log_start_offset,
                log_end: leo,
            });
        }
        if offset <= self.log_start_offset {
            return Ok(self.log_start_offset);
        }
        self.log_start_offset = offset;
        // Persist first: once acknowledged, the records must not come back after a crash.
        self.write_checkpoint(false)?;
        self.epochs.update(|e| e.truncate_from_start(offset))?;
        self.delete_segments_below_start()?;
        Ok(self.log_start_offset)
    }

    /// Deletes segments that lie wholly below the log start offset (never the active one).
    pub(crate) fn delete_segments_below_start(&mut self) -> Result<usize> {
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        let mut deleted = 0;
        for (base, next_base) in bases.iter().copied().zip(bases.iter().copied().skip(1)) {
            if next_base > self.log_start_offset {
                break;
            }
            if let Some(seg) = self.segments.remove(&base) {
                seg.delete()?;
                deleted += 1;
            }
        }
        if deleted > 0 {
            self.producers.evict_below(self.log_start_offset);
        }
        Ok(deleted)
    }
}

/// Whether a batch at `base` may carry leader epoch `epoch`, given the epoch cache's
/// `entries` (epoch, start offset; ascending) and the metadata's `max_epoch`.
fn epoch_fits(entries: &[(i32, i64)], base: i64, epoch: i32, max_epoch: i32) -> bool {
    if epoch > max_epoch {
        return false;
    }
    let covering = entries.iter().rev().find(|(_, start)| *start <= base);
    let later_entry = entries.iter().any(|(_, start)| *start > base);
    match covering {
        Some((expected, _)) if epoch == *expected => true,
        // Higher than the cache says: only a new epoch the cache has not recorded yet.
        Some((expected, _)) if epoch > *expected => !later_entry,
        Some(_) => false,
        None => !later_entry,
    }
}

#[cfg(test)]
mod tests {
    use super::epoch_fits;

    #[test]
    fn a_batch_epoch_must_match_the_cache_or_be_a_new_one_within_the_metadata() {
        let entries = [(2, 0), (5, 100)];
        assert!(epoch_fits(&entries, 10, 2, 9));
        assert!(
            !epoch_fits(&entries, 10, 3, 9),
            "below a later entry: must be 2"
        );
        assert!(!epoch_fits(&entries, 10, 1, 9), "lower than the cache");
        assert!(epoch_fits(&entries, 150, 5, 9));
        assert!(
            epoch_fits(&entries, 150, 7, 9),
            "a new epoch the crash kept out of the cache"
        );
        assert!(!epoch_fits(&entries, 150, 130, 9), "above the metadata");
        assert!(!epoch_fits(&entries, 150, 4, 9));
        assert!(epoch_fits(&[], 0, 0, 0));
        assert!(!epoch_fits(&[], 0, 1, 0));
    }
}
