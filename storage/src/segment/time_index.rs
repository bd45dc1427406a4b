//! Sparse time index (`.timeindex`): timestamp → relative offset.
//!
//! Entry layout (12 bytes, big-endian): `i64 timestamp | i32 relative offset`. An entry
//! `(t, o)` means "t is the largest timestamp seen in this segment up to the batch ending at
//! `base + o`", so timestamps strictly increase. One slot is kept free while active so that
//! the final entry written at roll/close always fits.

use std::path::Path;

use super::mmap_file::MmapFile;
use crate::error::Result;

const ENTRY: usize = 12;

/// The time index of one segment.
pub(crate) struct TimeIndex {
    file: MmapFile,
    base_offset: i64,
    entries: usize,
}

impl TimeIndex {
    pub(crate) fn create(path: &Path, base_offset: i64, max_bytes: u32) -> Result<TimeIndex> {
        let _ = std::fs::remove_file(path);
        let file = MmapFile::open(path, true, Some(round_down(max_bytes)))?;
        Ok(TimeIndex {
            file,
            base_offset,
            entries: 0,
        })
    }

    pub(crate) fn open(path: &Path, base_offset: i64) -> Result<TimeIndex> {
        let file = MmapFile::open(path, false, None)?;
        let entries = file.len() / ENTRY;
        Ok(TimeIndex {
            file,
            base_offset,
            entries,
        })
    }

    pub(crate) fn entries(&self) -> usize {
        self.entries
    }

    fn max_entries(&self) -> usize {
        self.file.len() / ENTRY
    }

    /// Full for normal appends: the last slot is reserved for the final entry.
    pub(crate) fn is_full(&self) -> bool {
        self.entries + 1 >= self.max_entries()
    }

    fn entry(&self, i: usize) -> Option<(i64, i64)> {
        let b: [u8; ENTRY] = self
            .file
            .bytes()
            .get(i * ENTRY..(i + 1) * ENTRY)?
            .try_into()
            .ok()?;
        let ts = [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]];
        let rel = i32::from_be_bytes([b[8], b[9], b[10], b[11]]);
        Some((i64::from_be_bytes(ts), self.base_offset + i64::from(rel)))
    }

    pub(crate) fn last(&self) -> Option<(i64, i64)> {
        self.entries.checked_sub(1).and_then(|i| self.entry(i))
    }

    /// Appends `(timestamp, offset)` if the timestamp grew. `final_entry` may use the
    /// reserved slot (roll/close). Returns whether an entry was written.
    pub(crate) fn maybe_append(&mut self, timestamp: i64, offset: i64, final_entry: bool) -> bool {
        if self.entries >= self.max_entries() || (!final_entry && self.is_full()) {
            return false;
        }
        if let Some((t, o)) = self.last() {
            if timestamp <= t || offset < o {
                return false;
            }
        }
        let Ok(rel) = i32::try_from(offset - self.base_offset) else {
            return false;
        };
        let at = self.entries * ENTRY;
        let mut entry = [0u8; ENTRY];
        entry[..8].copy_from_slice(&timestamp.to_be_bytes());
        entry[8..].copy_from_slice(&rel.to_be_bytes());
        if !self.file.reserve((at + ENTRY) as u64) {
            return false;
        }
        if let Some(slot) = self.file.bytes_mut().get_mut(at..at + ENTRY) {
            slot.copy_from_slice(&entry);
            self.entries += 1;
            true
        } else {
            false
        }
    }

    /// Greatest entry with timestamp ≤ `target`: the offset a forward scan should start
    /// from. `None` means "from the segment start".
    pub(crate) fn lookup(&self, target: i64) -> Option<(i64, i64)> {
        let (mut lo, mut hi) = (0usize, self.entries);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.entry(mid) {
                Some((t, _)) if t <= target => lo = mid + 1,
                _ => hi = mid,
            }
        }
        lo.checked_sub(1).and_then(|i| self.entry(i))
    }

    /// Drops entries pointing at offsets ≥ `offset`.
    pub(crate) fn truncate_to(&mut self, offset: i64) {
        while let Some((_, o)) = self.last() {
            if o >= offset {
                self.entries -= 1;
            } else {
                break;
            }
        }
    }

    pub(crate) fn reset(&mut self) {
        self.entries = 0;
    }

    /// Timestamps and offsets must not decrease, and offsets must lie below `next_offset`.
    pub(crate) fn sanity_check(&self, next_offset: i64) -> std::result::Result<(), String> {
        let mut prev: Option<(i64, i64)> = None;
        for i in 0..self.entries {
            let Some((t, o)) = self.entry(i) else {
                return Err("entry out of bounds".into());
            };
            if o < self.base_offset || o >= next_offset.max(self.base_offset + 1) {
                return Err(format!(
                    "time index entry {i} offset {o} outside the segment"
                ));
            }
            if let Some((pt, po)) = prev {
                if t <= pt || o < po {
                    return Err(format!("time index entry {i} does not increase"));
                }
            }
            prev = Some((t, o));
        }
        Ok(())
    }

    pub(crate) fn resize(&mut self, max_bytes: u32) -> Result<()> {
        let len = round_down(max_bytes).max(((self.entries + 1) * ENTRY) as u64);
        self.file.resize(len)
    }

    pub(crate) fn trim(&mut self) -> Result<()> {
        self.file.resize((self.entries * ENTRY) as u64)
    }

    pub(crate) fn flush(&self) -> Result<()> {
        self.file.flush()
    }

    pub(crate) fn file_mut(&mut self) -> &mut MmapFile {
        &mut self.file
    }

    pub(crate) fn path(&self) -> &Path {
        self.file.path()
    }
}

fn round_down(max_bytes: u32) -> u64 {
    u64::from(max_bytes) / ENTRY as u64 * ENTRY as u64
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn only_growing_timestamps_and_reserved_final_slot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.timeindex");
        let mut idx = TimeIndex::create(&path, 0, 36).unwrap(); // 3 slots
        assert!(idx.maybe_append(100, 5, false));
        assert!(!idx.maybe_append(100, 9, false), "timestamp did not grow");
        assert!(idx.maybe_append(200, 9, false));
        assert!(idx.is_full());
        assert!(!idx.maybe_append(300, 12, false));
        assert!(
            idx.maybe_append(300, 12, true),
            "final entry uses the spare slot"
        );
        assert_eq!(idx.lookup(50), None);
        assert_eq!(idx.lookup(250), Some((200, 9)));
        assert_eq!(idx.lookup(1000), Some((300, 12)));
        assert!(idx.sanity_check(13).is_ok());
        assert!(idx.sanity_check(12).is_err());
        idx.truncate_to(9);
        assert_eq!(idx.last(), Some((100, 5)));
        idx.trim().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 12);
    }
}
