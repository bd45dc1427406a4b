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
}

impl MmapFile {
    /// Opens (or creates) `path`; when `len` is given the file is resized to it first.
    pub(crate) fn open(path: &Path, create: bool, len: Option<u64>) -> Result<MmapFile> {
        let mut f = MmapFile {
            path: path.to_path_buf(),
            map: None,
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
        self.map_file(&file)
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
