//! Reading a segment: batch lookup by offset (offset index + header walk) and whole-batch
//! reads into `Bytes`. Lookup by timestamp lives in `timestamp`.

use std::os::unix::fs::FileExt;

use bytes::Bytes;
use weir_protocol::batch::{BatchHeader, HEADER_LEN};

use super::pread::{self, Wait};
use super::{page_cache, Segment};
use crate::error::{Error, Result};
use crate::file_slice::FileSlice;

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
        Ok(
            match self.read_records(offset, max_bytes, max_offset, wait, None)? {
                Some(SegmentRead::Copied(b)) => Some(b),
                // Not asked for a slice, so never given one; kept total.
                Some(SegmentRead::InFile(slice)) => Some(Bytes::from(
                    slice
                        .read_to_vec()
                        .map_err(Error::io_at("read segment", &self.log_path))?,
                )),
                None => None,
            },
        )
    }

    /// [`Segment::read`] that, given `zero_copy_min`, answers with a slice of the file
    /// instead of a copy when the batches come to at least that many bytes and all of
    /// them are in the page cache (so sending them cannot wait for the disk).
    pub(crate) fn read_records(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset: Option<i64>,
        wait: Wait,
        zero_copy_min: Option<usize>,
    ) -> Result<Option<SegmentRead>> {
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
        if let Some(min) = zero_copy_min.filter(|m| want >= *m as u64) {
            let end = self.whole_batches_end(start, &first, start + want, max_offset, wait)?;
            let len = end - start;
            if len >= min as u64 {
                if page_cache::fully_cached(&self.log, start, len) {
                    return Ok(Some(SegmentRead::InFile(FileSlice::new(
                        self.log.clone(),
                        start,
                        len as usize,
                    ))));
                }
                // An async caller copies only small reads; a large one that cannot be
                // sent from the page cache belongs on a blocking thread.
                if wait == Wait::CachedOnly {
                    return Err(Error::io_at("read segment", &self.log_path)(
                        std::io::Error::from(std::io::ErrorKind::WouldBlock),
                    ));
                }
            }
            // Known whole batches: copy exactly those.
            let buf = pread::read_exact_at_with(&self.log, len as usize, start, wait)
                .map_err(Error::io_at("read segment", &self.log_path))?;
            return Ok(Some(SegmentRead::Copied(Bytes::from(buf))));
        }
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
        Ok(Some(SegmentRead::Copied(Bytes::from(buf))))
    }

    /// Where the whole batches from `start` (whose first batch, `first`, is returned in
    /// any case) end without passing byte `limit` or reaching `max_offset`, found from
    /// the file's headers rather than its data: the offset index jumps close to the
    /// limit, then headers are read one batch at a time.
    fn whole_batches_end(
        &self,
        start: u64,
        first: &BatchHeader,
        limit: u64,
        max_offset: Option<i64>,
        wait: Wait,
    ) -> Result<u64> {
        let mut pos = start + first.total_len() as u64;
        // Entry (o, p): the batch at p ends at offset o, so every batch before p ends
        // below o; with p within the limit and o below max_offset, they all qualify.
        let below = |o: i64| max_offset.is_none_or(|m| o < m);
        if let Some((_, p)) = self.offset_index.last_where(|o, p| p <= limit && below(o)) {
            pos = pos.max(p);
        }
        while pos < self.size {
            let Some(h) = self.header_at_with(pos, wait)? else {
                break;
            };
            let next = pos + h.total_len() as u64;
            if next > limit || next > self.size || !below(h.last_offset()) {
                break;
            }
            pos = next;
        }
        Ok(pos)
    }
}

/// What a segment read gives: bytes copied into memory, or a slice of the file.
pub(crate) enum SegmentRead {
    /// Whole batches, copied.
    Copied(Bytes),
    /// Whole batches, left in the file (page cache) for the kernel to send.
    InFile(FileSlice),
}
