//! Reading a segment: batch lookup by offset (offset index + header walk) and whole-batch
//! reads into `Bytes`. Lookup by timestamp lives in `timestamp`.

use std::os::unix::fs::FileExt;

use bytes::Bytes;
use weir_protocol::batch::{BatchHeader, HEADER_LEN};

use super::pread::{self, Wait};
use super::Segment;
use crate::error::{Error, Result};

impl Segment {
    /// Reads the header of the batch at `pos`; `None` if fewer than a header's bytes remain.
    pub(crate) fn header_at(&self, pos: u64) -> Result<Option<BatchHeader>> {
        if pos + HEADER_LEN as u64 > self.size {
            return Ok(None);
        }
        let mut buf = [0u8; HEADER_LEN];
        self.log
            .read_exact_at(&mut buf, pos)
            .map_err(Error::io_at("read segment", &self.log_path))?;
        Ok(Some(BatchHeader::parse(&buf)?))
    }

    /// [`Segment::header_at`] that may be told not to wait for the disk.
    fn header_at_with(&self, pos: u64, wait: Wait) -> Result<Option<BatchHeader>> {
        if wait == Wait::Block {
            return self.header_at(pos);
        }
        if pos + HEADER_LEN as u64 > self.size {
            return Ok(None);
        }
        let buf = pread::read_exact_at_with(&self.log, HEADER_LEN, pos, wait)
            .map_err(Error::io_at("read segment", &self.log_path))?;
        Ok(Some(BatchHeader::parse(&buf)?))
    }

    /// Position and header of the first batch whose last offset is ≥ `offset`.
    pub(crate) fn find_batch(&self, offset: i64) -> Result<Option<(u64, BatchHeader)>> {
        self.find_batch_with(offset, Wait::Block)
    }

    fn find_batch_with(&self, offset: i64, wait: Wait) -> Result<Option<(u64, BatchHeader)>> {
        let (_, mut pos) = self.offset_index.lookup(offset);
        while let Some(h) = self.header_at_with(pos, wait)? {
            if h.last_offset() >= offset {
                return Ok(Some((pos, h)));
            }
            pos += h.total_len() as u64;
        }
        Ok(None)
    }

    /// Reads whole batches starting with the one holding `offset`, up to `max_bytes`
    /// (but always at least one batch), stopping before any batch whose last offset is
    /// ≥ `max_offset`.
    pub(crate) fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset: Option<i64>,
        wait: Wait,
    ) -> Result<Option<Bytes>> {
        let Some((start, first)) = self.find_batch_with(offset, wait)? else {
            return Ok(None);
        };
        if max_offset.is_some_and(|m| first.last_offset() >= m) {
            return Ok(None);
        }
        let available = self.size - start;
        let want = (max_bytes as u64)
            .max(first.total_len() as u64)
            .min(available);
        let mut buf = pread::read_exact_at_with(&self.log, want as usize, start, wait)
            .map_err(Error::io_at("read segment", &self.log_path))?;
        // Keep whole batches only (and respect max_offset).
        let mut end = 0usize;
        while let Some(rest) = buf.get(end..) {
            let Ok(h) = BatchHeader::parse(rest) else {
                break;
            };
            if h.total_len() > rest.len() || max_offset.is_some_and(|m| h.last_offset() >= m) {
                break;
            }
            end += h.total_len();
        }
        buf.truncate(end);
        Ok(Some(Bytes::from(buf)))
    }
}
