//! A memory-mapped, resizable index file. The only `unsafe` in the crate lives here.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use memmap2::{Advice, MmapMut, MmapOptions};

use crate::error::{Error, Result};

/// A file mapped read/write in full. The file handle is not kept: an idle partition then
/// costs a mapping (touched pages only) but no descriptor per index.
pub(crate) struct MmapFile {
    path: PathBuf,
    map: Option<MmapMut>,
    /// Bytes from the start known to have their blocks allocated (`reserve`).
    reserved: u64,
}

/// Bytes of index reserved at a time (`MmapFile::reserve`): one `fallocate` per 8,192
/// offset-index entries.
const RESERVE_CHUNK: u64 = 64 * 1024;

impl MmapFile {
    /// Opens (or creates) `path`; when `len` is given the file is resized to it first.
    pub(crate) fn open(path: &Path, create: bool, len: Option<u64>) -> Result<MmapFile> {
        let mut f = MmapFile {
            path: path.to_path_buf(),
            map: None,
            reserved: 0,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(path)
            .map_err(Error::io_at("open index", path))?;
        if let Some(len) = len {
            file.set_len(len)
                .map_err(Error::io_at("resize index", path))?;
        }
        f.map_file(&file)?;
        Ok(f)
    }

    fn map_file(&mut self, file: &File) -> Result<()> {
        let len = file
            .metadata()
            .map_err(Error::io_at("stat index", &self.path))?
            .len();
        self.map = if len == 0 {
            None
        } else {
            // SAFETY: index files are private to this partition directory; the broker never
            // lets another process or mapping modify them while the log is open, and the
            // file length is fixed while mapped (resizes drop the map first).
            let map = unsafe { MmapOptions::new().map_mut(file) }
                .map_err(Error::io_at("mmap index", &self.path))?;
            // Index pages are touched one at a time (an append writes the next entry, a
            // lookup binary-searches), so fault-around readahead only costs: on the sparse,
            // preallocated files of a new segment the kernel zero-fills large folios at
            // each first touch, which made index faults ~40% of broker CPU with 512
            // partitions. A hint: if the kernel refuses it, the mapping still works.
            if let Err(e) = map.advise(Advice::Random) {
                tracing::debug!(path = %self.path.display(), error = %e, "madvise(RANDOM) refused");
            }
            Some(map)
        };
        Ok(())
    }

    /// Changes the file length and remaps it.
    pub(crate) fn resize(&mut self, len: u64) -> Result<()> {
        if self.len() as u64 == len {
            return Ok(());
        }
        self.flush()?;
        self.map = None;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)
            .map_err(Error::io_at("open index", &self.path))?;
        file.set_len(len)
            .map_err(Error::io_at("resize index", &self.path))?;
        self.reserved = self.reserved.min(len);
        self.map_file(&file)
    }

    /// Makes sure the blocks behind the first `end` bytes are allocated, a chunk at a time,
    /// before a store through the mapping reaches them. The files are sparse (an index is
    /// sized to its maximum when created, 10 MiB by default, and mostly never filled), and
    /// a store into a hole needs a block at fault time: with the disk full the kernel
    /// answers that fault with SIGBUS, which killed the broker (weir-chaos campaign seed 1,
    /// F8 on a capped tmpfs). `false`: the space is not there (the caller skips the entry,
    /// which a sparse index allows). File systems without fallocate are trusted as before.
    pub(crate) fn reserve(&mut self, end: u64) -> bool {
        use std::os::fd::AsRawFd;
        if end <= self.reserved {
            return true;
        }
        let len = self.len() as u64;
        let upto = end
            .div_ceil(RESERVE_CHUNK)
            .saturating_mul(RESERVE_CHUNK)
            .min(len);
        if end > upto {
            return false;
        }
        let (Ok(from), Ok(n)) = (
            libc::off_t::try_from(self.reserved),
            libc::off_t::try_from(upto - self.reserved),
        ) else {
            return false;
        };
        // The descriptor is opened for the call only: an idle index keeps none.
        let Ok(file) = OpenOptions::new().write(true).open(&self.path) else {
            return false;
        };
        // SAFETY: fallocate on a descriptor owned by this function, within the file's size
        // (mode 0 never shrinks or moves data).
        let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, from, n) };
        let ok = rc == 0
            || matches!(
                std::io::Error::last_os_error().raw_os_error(),
                Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS)
            );
        if ok {
            self.reserved = upto;
        } else {
            tracing::warn!(path = %self.path.display(), error = %std::io::Error::last_os_error(), "index entry skipped: no space for it");
        }
        ok
    }

    pub(crate) fn len(&self) -> usize {
        self.map.as_ref().map_or(0, |m| m.len())
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        self.map.as_deref_mut().unwrap_or(&mut [])
    }

    /// msync: makes the mapped pages durable.
    pub(crate) fn flush(&self) -> Result<()> {
        if let Some(m) = &self.map {
            m.flush().map_err(Error::io_at("msync index", &self.path))?;
        }
        Ok(())
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Unmaps and renames the file.
    pub(crate) fn rename(&mut self, to: &Path) -> Result<()> {
        std::fs::rename(&self.path, to).map_err(Error::io_at("rename index", &self.path))?;
        self.path = to.to_path_buf();
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// Blocks behind an index are allocated before entries are stored into them, a chunk
    /// at a time, while the rest of the file stays a hole.
    #[test]
    fn entries_are_stored_only_into_allocated_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let len = 1 << 20;
        let mut f = MmapFile::open(&path, true, Some(len)).unwrap();
        let allocated = |p: &Path| std::fs::metadata(p).unwrap().blocks() * 512;
        assert!(allocated(&path) < RESERVE_CHUNK, "sparse when created");
        assert!(f.reserve(8));
        f.bytes_mut()[0] = 1;
        assert!(allocated(&path) >= RESERVE_CHUNK);
        assert!(allocated(&path) < len);
        assert!(f.reserve(RESERVE_CHUNK + 1));
        assert!(allocated(&path) >= 2 * RESERVE_CHUNK);
        assert!(!f.reserve(len + 1), "past the end");
        f.resize(RESERVE_CHUNK / 2).unwrap();
        assert!(f.reserve(RESERVE_CHUNK / 2));
        f.flush().unwrap();
    }
}
