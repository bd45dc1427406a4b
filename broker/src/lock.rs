//! An exclusive `flock` on `<data-dir>/.lock`, so two brokers never share a data dir.
//! The kernel drops the lock when the process dies, even on `kill -9`.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::Path;

/// Holds the lock until dropped.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Locks `dir` or fails at once if another process holds it.
    pub fn acquire(dir: &Path) -> std::io::Result<DataDirLock> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(".lock"))?;
        // SAFETY: flock on a valid, owned descriptor has no memory-safety preconditions.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            return Err(std::io::Error::new(
                e.kind(),
                format!(
                    "data dir {} is locked by another broker ({e})",
                    dir.display()
                ),
            ));
        }
        Ok(DataDirLock { _file: file })
    }
}
