//! `pread` into a fresh buffer without zero-filling it first.
//!
//! Fetches and cleaning read megabytes at a time; zeroing the buffer before the kernel
//! overwrites it doubled the memory traffic of a read.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Reads exactly `len` bytes at `pos`, or fails with `UnexpectedEof`.
pub(crate) fn read_exact_at(file: &File, len: usize, pos: u64) -> io::Result<Vec<u8>> {
    let mut buf: Vec<u8> = Vec::with_capacity(len);
    while buf.len() < len {
        let filled = buf.len();
        let at = pos + filled as u64;
        let spare = buf.spare_capacity_mut();
        let want = spare.len().min(len - filled);
        let at =
            libc::off_t::try_from(at).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: `spare` points at `want` writable (uninitialised) bytes owned by `buf`;
        // pread writes at most `want` bytes there and returns how many it wrote.
        let n = unsafe { libc::pread(file.as_raw_fd(), spare.as_mut_ptr().cast(), want, at) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
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
}
