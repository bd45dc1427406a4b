//! Sequential validation of a `.log` file: the recovery scan.
//!
//! Reads the file in large chunks with `pread` and walks the batches inside each chunk, so
//! recovery costs one syscall per few MiB plus the CRC.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use weir_protocol::batch::{validate_batch, BatchHeader, HEADER_LEN};

use crate::error::{Error, Result};

const CHUNK: usize = 4 << 20;

/// What a scan found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanOutcome {
    /// Valid batches seen.
    pub batches: u64,
    /// Bytes of valid batches.
    pub valid_bytes: u64,
    /// Bytes after the last valid batch (cut off).
    pub truncated_bytes: u64,
}

/// Walks the batches of `file` from position 0 and calls `on_batch(pos, header)` for each
/// valid one. Stops at the first invalid byte: a short or oversized length, wrong magic,
/// a CRC mismatch (when `check_crc`), offsets going backwards or below `base_offset`, or
/// a relative offset that does not fit an index entry.
pub(crate) fn scan(
    file: &File,
    path: &Path,
    base_offset: i64,
    file_len: u64,
    check_crc: bool,
    mut on_batch: impl FnMut(u64, &BatchHeader),
) -> Result<ScanOutcome> {
    let mut buf: Vec<u8> = Vec::new();
    let mut buf_start = 0u64; // file position of buf[0]
    let mut pos = 0u64;
    let mut next_offset = base_offset;
    let mut out = ScanOutcome::default();
    loop {
        if pos >= file_len {
            break;
        }
        let in_buf = (pos - buf_start) as usize;
        let rest = buf.get(in_buf..).unwrap_or(&[]);
        let need = if rest.len() >= HEADER_LEN {
            match BatchHeader::parse(rest) {
                Ok(h) => h.total_len(),
                Err(_) => break,
            }
        } else {
            HEADER_LEN
        };
        if pos + need as u64 > file_len {
            break; // torn tail
        }
        if rest.len() < need {
            // Refill so the whole batch (and more) sits in the buffer.
            let len = (CHUNK.max(need) as u64).min(file_len - pos) as usize;
            buf.resize(len, 0);
            file.read_exact_at(&mut buf, pos)
                .map_err(Error::io_at("read segment", path))?;
            buf_start = pos;
            continue;
        }
        let Some(bytes) = rest.get(..need) else {
            break;
        };
        let header = if check_crc {
            match validate_batch(bytes) {
                Ok(h) => h,
                Err(_) => break,
            }
        } else {
            match BatchHeader::parse(bytes) {
                Ok(h) => h,
                Err(_) => break,
            }
        };
        // Written without overflow: baseOffset is outside the CRC, so it may be garbage.
        let offsets_ok = header.base_offset >= next_offset
            && header.last_offset_delta >= 0
            && (header.base_offset - base_offset) + i64::from(header.last_offset_delta)
                <= i64::from(i32::MAX);
        if !offsets_ok {
            break;
        }
        on_batch(pos, &header);
        next_offset = header.next_offset();
        out.batches += 1;
        pos += need as u64;
    }
    out.valid_bytes = pos;
    out.truncated_bytes = file_len - pos;
    Ok(out)
}
