//! Whether a range of a file sits in the page cache, without reading it (`cachestat(2)`,
//! Linux 6.5). A zero-copy send of a range that is not cached would read the disk on the
//! thread that writes to the socket; the caller copies such ranges on a blocking thread
//! instead.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};

/// `cachestat`'s number, the same on every architecture (new system calls share one
/// table since 5.1); the libc crate does not name it for every target.
const SYS_CACHESTAT: libc::c_long = 451;

/// Set once the kernel said it has no `cachestat`, so later checks skip the call.
static UNSUPPORTED: AtomicBool = AtomicBool::new(false);

#[repr(C)]
struct CachestatRange {
    off: u64,
    len: u64,
}

#[repr(C)]
#[derive(Default)]
struct Cachestat {
    nr_cache: u64,
    nr_dirty: u64,
    nr_writeback: u64,
    nr_evicted: u64,
    nr_recently_evicted: u64,
}

/// True when every page of `len` bytes at `pos` is in the page cache. False when any is
/// not, or when the kernel cannot tell (no `cachestat`), so a caller never assumes a
/// range is cached.
pub(crate) fn fully_cached(file: &File, pos: u64, len: u64) -> bool {
    if len == 0 {
        return true;
    }
    if UNSUPPORTED.load(Ordering::Relaxed) {
        return false;
    }
    // Larger real pages (64 KiB on some arm64 kernels) only make ranges count as not
    // cached, never the reverse.
    const PAGE: u64 = 4096;
    let first = pos / PAGE;
    let pages = (pos + len).div_ceil(PAGE) - first;
    let range = CachestatRange {
        off: first * PAGE,
        len: pages * PAGE,
    };
    let mut stat = Cachestat::default();
    // SAFETY: `range` and `stat` are live, correctly laid out (uapi `struct
    // cachestat_range` / `struct cachestat`), and the descriptor is open.
    let r = unsafe {
        libc::syscall(
            SYS_CACHESTAT,
            file.as_raw_fd(),
            &range as *const CachestatRange,
            &mut stat as *mut Cachestat,
            0u32,
        )
    };
    if r != 0 {
        if std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS) {
            UNSUPPORTED.store(true, Ordering::Relaxed);
        }
        return false;
    }
    stat.nr_cache >= pages
}

/// Whether this kernel answers `cachestat` (tests probe it before expecting zero-copy).
pub(crate) fn supported(file: &File) -> bool {
    fully_cached(file, 0, 1);
    !UNSUPPORTED.load(Ordering::Relaxed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn written_pages_are_cached_and_dropped_ones_are_not() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&vec![7u8; 64 * 1024]).unwrap();
        if !supported(&f) {
            return; // kernel older than 6.5: every range counts as not cached
        }
        assert!(fully_cached(&f, 0, 64 * 1024));
        assert!(fully_cached(&f, 5000, 10));
        f.sync_all().unwrap();
        // SAFETY: plain advice on an open descriptor.
        unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        // Only where the advice dropped the pages (not on tmpfs) must they count as gone.
        let dropped = crate::segment::pread::read_exact_at_with(
            &f,
            1,
            0,
            crate::segment::pread::Wait::CachedOnly,
        )
        .is_err();
        if dropped {
            assert!(!fully_cached(&f, 0, 64 * 1024));
        }
    }
}
