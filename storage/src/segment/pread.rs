//! `pread` into a fresh buffer without zero-filling it first.
//!
//! Fetches and cleaning read megabytes at a time; zeroing the buffer before the kernel
//! overwrites it doubled the memory traffic of a read.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Reads exactly `len` bytes at `pos`, or fails with `UnexpectedEof`.
pub(crate) fn read_exact_at(file: &File, len: usize, pos: u64) -> io::Result<Vec<u8>> {
    read_exact_at_with(file, len, pos, Wait::Block)
}

/// Whether a read may wait for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// An ordinary read.
    Block,
    /// Only what the page cache holds: anything else fails with `WouldBlock`
    /// (`RWF_NOWAIT`), so an async thread can read without risking a disk wait.
    CachedOnly,
}

/// One `pread`, or `preadv2(RWF_NOWAIT)` for [`Wait::CachedOnly`].
fn pread_once(
    file: &File,
    buf: *mut libc::c_void,
    len: usize,
    at: libc::off_t,
    wait: Wait,
) -> isize {
    match wait {
        // SAFETY: the caller passes `len` writable bytes at `buf`.
        Wait::Block => unsafe { libc::pread(file.as_raw_fd(), buf, len, at) },
        Wait::CachedOnly => {
            let iov = libc::iovec {
                iov_base: buf,
                iov_len: len,
            };
            // SAFETY: one iovec over the caller's `len` writable bytes at `buf`.
            unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, at, libc::RWF_NOWAIT) }
        }
    }
}

/// [`read_exact_at`] that, with [`Wait::CachedOnly`], fails with `WouldBlock` rather
/// than wait for the disk (a read partly in the page cache fails too).
pub(crate) fn read_exact_at_with(
    file: &File,
    len: usize,
    pos: u64,
    wait: Wait,
) -> io::Result<Vec<u8>> {
    let mut buf: Vec<u8> = Vec::with_capacity(len);
    while buf.len() < len {
        let filled = buf.len();
        let at = pos + filled as u64;
        let spare = buf.spare_capacity_mut();
        let want = spare.len().min(len - filled);
        let at =
            libc::off_t::try_from(at).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // `spare` points at `want` writable (uninitialised) bytes owned by `buf`; the read
        // writes at most `want` bytes there and returns how many it wrote.
        let n = pread_once(file, spare.as_mut_ptr().cast(), want, at, wait);
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            // Kernels or file systems without RWF_NOWAIT: treat as "not known cached".
            if wait == Wait::CachedOnly && e.raw_os_error() == Some(libc::EOPNOTSUPP) {
                return Err(io::Error::from(io::ErrorKind::WouldBlock));
            }
            return Err(e);
        }
        if n == 0 {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        // SAFETY: the kernel initialised `n` (≤ `want` ≤ spare) more bytes.
        unsafe { buf.set_len(filled + n as usize) };
    }
    Ok(buf)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_exactly_or_reports_eof() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&(0..=255u8).collect::<Vec<_>>()).unwrap();
        assert_eq!(read_exact_at(&f, 4, 10).unwrap(), vec![10, 11, 12, 13]);
        assert_eq!(read_exact_at(&f, 0, 300).unwrap(), Vec::<u8>::new());
        assert_eq!(
            read_exact_at(&f, 10, 250).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }

    #[test]
    fn cached_only_reads_what_the_page_cache_holds() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&(0..=255u8).collect::<Vec<_>>()).unwrap();
        // Just written: in the page cache.
        match read_exact_at_with(&f, 4, 10, Wait::CachedOnly) {
            Ok(b) => assert_eq!(b, vec![10, 11, 12, 13]),
            // tmpfs and old kernels refuse RWF_NOWAIT: reported as "would block".
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::WouldBlock),
        }
        assert!(read_exact_at_with(&f, 10, 250, Wait::CachedOnly).is_err());
    }
}
