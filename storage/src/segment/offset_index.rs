//! Sparse offset index (`.index`): relative offset → byte position of a batch.
//!
//! Entry layout (8 bytes, big-endian): `i32 relative offset | u32 position`. An entry
//! `(o, p)` means "the batch starting at byte `p` of the `.log` ends at offset `base + o`".
//! Entries strictly increase in both fields. The file is preallocated to
//! `segment.index.bytes` while the segment is active and trimmed to the used length when it
//! is rolled or closed, so after a crash an untrimmed tail of zeros is expected and caught by
//! [`OffsetIndex::sanity_check`].

use std::path::Path;

use super::mmap_file::MmapFile;
use crate::error::Result;

const ENTRY: usize = 8;

/// The offset index of one segment.
pub(crate) struct OffsetIndex {
    file: MmapFile,
    base_offset: i64,
    entries: usize,
}

impl OffsetIndex {
    /// Creates (or truncates) the index and preallocates `max_bytes`.
    pub(crate) fn create(path: &Path, base_offset: i64, max_bytes: u32) -> Result<OffsetIndex> {
        let _ = std::fs::remove_file(path);
        let file = MmapFile::open(path, true, Some(round_down(max_bytes)))?;
        Ok(OffsetIndex {
            file,
            base_offset,
            entries: 0,
        })
    }

    /// Opens an existing index, assuming every whole slot is an entry (check with
    /// [`OffsetIndex::sanity_check`]).
    pub(crate) fn open(path: &Path, base_offset: i64) -> Result<OffsetIndex> {
        let file = MmapFile::open(path, false, None)?;
        let entries = file.len() / ENTRY;
        Ok(OffsetIndex {
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

    pub(crate) fn is_full(&self) -> bool {
        self.entries >= self.max_entries()
    }

    fn entry(&self, i: usize) -> Option<(i64, u64)> {
        let b: [u8; ENTRY] = self
            .file
            .bytes()
            .get(i * ENTRY..(i + 1) * ENTRY)?
            .try_into()
            .ok()?;
        let rel = i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        let pos = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
        Some((self.base_offset + i64::from(rel), u64::from(pos)))
    }

    /// Last entry, if any.
    pub(crate) fn last(&self) -> Option<(i64, u64)> {
        self.entries.checked_sub(1).and_then(|i| self.entry(i))
    }

    /// Appends an entry; returns false (and does nothing) when full or not increasing.
    pub(crate) fn append(&mut self, offset: i64, position: u64) -> bool {
        if self.is_full() {
            return false;
        }
        if let Some((o, p)) = self.last() {
            if offset <= o || position <= p {
                return false;
            }
        }
        let rel = offset - self.base_offset;
        let (Ok(rel), Ok(pos)) = (i32::try_from(rel), u32::try_from(position)) else {
            return false;
        };
        let at = self.entries * ENTRY;
        let mut entry = [0u8; ENTRY];
        entry[..4].copy_from_slice(&rel.to_be_bytes());
        entry[4..].copy_from_slice(&pos.to_be_bytes());
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

    /// Greatest entry with offset ≤ `target`, or `(base, 0)`: where a forward scan for
    /// `target` should start.
    pub(crate) fn lookup(&self, target: i64) -> (i64, u64) {
        // Binary search for the count of entries with offset <= target.
        let (mut lo, mut hi) = (0usize, self.entries);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.entry(mid) {
                Some((o, _)) if o <= target => lo = mid + 1,
                _ => hi = mid,
            }
        }
        match lo.checked_sub(1).and_then(|i| self.entry(i)) {
            Some(e) => e,
            None => (self.base_offset, 0),
        }
    }

    /// The last entry for which `pred(offset, position)` holds, where `pred` holds for a
    /// prefix of the entries (e.g. "position ≤ p and offset < o", both increasing).
    pub(crate) fn last_where(&self, pred: impl Fn(i64, u64) -> bool) -> Option<(i64, u64)> {
        let (mut lo, mut hi) = (0usize, self.entries);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.entry(mid) {
                Some((o, p)) if pred(o, p) => lo = mid + 1,
                _ => hi = mid,
            }
        }
        lo.checked_sub(1).and_then(|i| self.entry(i))
    }

    /// Drops entries whose offset is ≥ `offset` (their batches are being truncated away).
    pub(crate) fn truncate_to(&mut self, offset: i64) {
        while let Some((o, _)) = self.last() {
            if o >= offset {
                self.entries -= 1;
            } else {
                break;
            }
        }
    }

    /// Forgets all entries (before a rebuild).
    pub(crate) fn reset(&mut self) {
        self.entries = 0;
    }

    /// Checks that the entries are strictly increasing and point inside a `.log` of
    /// `log_size` bytes. An untrimmed (crash) or damaged file fails and must be rebuilt.
    pub(crate) fn sanity_check(&self, log_size: u64) -> std::result::Result<(), String> {
        let mut prev: Option<(i64, u64)> = None;
        for i in 0..self.entries {
            let Some((o, p)) = self.entry(i) else {
                return Err("entry out of bounds".into());
            };
            if o < self.base_offset {
                return Err(format!("entry {i} has negative relative offset"));
            }
            if p >= log_size {
                return Err(format!(
                    "entry {i} points at {p}, past the log end {log_size}"
                ));
            }
            if let Some((po, pp)) = prev {
                if o <= po || p <= pp {
                    return Err(format!("entry {i} does not increase"));
                }
            }
            prev = Some((o, p));
        }
        Ok(())
    }

    /// Sets the file length to `max_bytes` (active) so appends can continue.
    pub(crate) fn resize(&mut self, max_bytes: u32) -> Result<()> {
        let len = round_down(max_bytes).max((self.entries * ENTRY) as u64);
        self.file.resize(len)
    }

    /// Cuts the file to exactly the used entries.
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
    fn append_lookup_truncate_trim() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000100.index");
        let mut idx = OffsetIndex::create(&path, 100, 64).unwrap();
        assert_eq!(idx.lookup(150), (100, 0));
        assert!(idx.append(109, 1000));
        assert!(idx.append(119, 2000));
        assert!(!idx.append(119, 3000), "must increase");
        assert!(idx.append(129, 3000));
        assert_eq!(idx.lookup(99), (100, 0));
        assert_eq!(idx.lookup(109), (109, 1000));
        assert_eq!(idx.lookup(125), (119, 2000));
        assert_eq!(idx.lookup(1_000_000), (129, 3000));
        assert_eq!(idx.last_where(|_, p| p <= 2500), Some((119, 2000)));
        assert_eq!(
            idx.last_where(|o, p| p <= 5000 && o < 129),
            Some((119, 2000))
        );
        assert_eq!(idx.last_where(|_, p| p < 1000), None);
        idx.truncate_to(119);
        assert_eq!(idx.entries(), 1);
        idx.trim().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 8);
        drop(idx);
        let idx = OffsetIndex::open(&path, 100).unwrap();
        assert_eq!(idx.entries(), 1);
        assert!(idx.sanity_check(1001).is_ok());
        assert!(idx.sanity_check(1000).is_err(), "points past the end");
    }

    #[test]
    fn zero_tail_fails_sanity_and_full_index_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let mut idx = OffsetIndex::create(&path, 0, 32).unwrap();
        for i in 1..=4 {
            assert!(idx.append(i * 10, i as u64 * 100));
        }
        assert!(idx.is_full());
        assert!(!idx.append(50, 500));
        drop(idx);
        let path2 = dir.path().join("1.index");
        let mut idx = OffsetIndex::create(&path2, 0, 64).unwrap();
        idx.append(5, 10);
        drop(idx);
        // Untrimmed after a "crash": 8 slots, 7 of them zero.
        let idx = OffsetIndex::open(&path2, 0).unwrap();
        assert_eq!(idx.entries(), 8);
        assert!(idx.sanity_check(1 << 20).is_err());
    }
}
