//! Records sent from a segment file by the kernel instead of copied through memory.
//!
//! A fetch of data already in the page cache can go from the file to the socket with
//! `sendfile(2)`: no `pread` into a buffer, no copy into the response frame. A slice holds
//! the segment's file handle, so the bytes stay readable after the partition lock is
//! released, after retention deletes the file, or after the cleaner swaps it (the old
//! inode lives while the handle does). Only a truncation of the tail (a follower cutting
//! its log) can shorten the file under a slice; the send then comes up short and the
//! caller must fail the connection, because the frame's length was already promised.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::Arc;

/// `len` bytes at `pos` of a segment file: whole batches, as stored.
#[derive(Debug, Clone)]
pub struct FileSlice {
    file: Arc<File>,
    pos: u64,
    len: usize,
}

impl FileSlice {
    pub(crate) fn new(file: Arc<File>, pos: u64, len: usize) -> FileSlice {
        FileSlice { file, pos, len }
    }

    /// Bytes in the slice.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the slice is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// One `sendfile(2)` of what is left after the first `sent` bytes, to the
    /// non-blocking socket `sock`. Returns the bytes sent (0 once all are); `WouldBlock`
    /// when the socket's buffer is full; `UnexpectedEof` when the file ends before the
    /// slice does (its tail was truncated after the read).
    pub fn send_to(&self, sock: BorrowedFd<'_>, sent: usize) -> io::Result<usize> {
        let left = self.len.saturating_sub(sent);
        if left == 0 {
            return Ok(0);
        }
        let start = self.pos + sent as u64;
        let mut at = libc::off_t::try_from(start)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: both descriptors are open for the call (`sock` is borrowed, the file is
        // held by `self`); `at` is a valid off_t the kernel advances.
        let n = unsafe { libc::sendfile(sock.as_raw_fd(), self.file.as_raw_fd(), &mut at, left) };
        match n {
            n if n < 0 => Err(io::Error::last_os_error()),
            0 => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "segment file shorter than the fetched slice (truncated after the read)",
            )),
            n => Ok(n as usize),
        }
    }

    /// The slice's bytes, copied (tests, and callers that cannot send from a file).
    pub fn read_to_vec(&self) -> io::Result<Vec<u8>> {
        crate::segment::pread_exact(&self.file, self.len, self.pos)
    }
}
