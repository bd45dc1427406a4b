//! Lookup by timestamp: the time index narrows the search to a batch, then that batch's
//! records are decoded to find the exact record (Kafka's ListOffsets answers with a record
//! offset, not a batch's base offset). This is the only per-record decode on a read path;
//! it touches one batch per lookup unless producers wrote a max timestamp their records
//! do not reach.

use weir_protocol::batch::{RecordIter, DEFAULT_MAX_DECOMPRESSED};

use super::{pread, Segment};
use crate::error::{Error, Result};

impl Segment {
    /// First record at offset ≥ `min_offset` whose timestamp is ≥ `ts`, in offset order:
    /// `(offset, timestamp)`. Control batches are skipped; LogAppendTime records carry
    /// their batch's max timestamp.
    pub(crate) fn find_by_timestamp(&self, ts: i64, min_offset: i64) -> Result<Option<(i64, i64)>> {
        if self.max_timestamp < ts || self.next_offset <= min_offset {
            return Ok(None);
        }
        let start_offset = self
            .time_index
            .lookup(ts)
            .map_or(self.base_offset, |(_, o)| o)
            .max(min_offset);
        let (_, mut pos) = self.offset_index.lookup(start_offset);
        while let Some(h) = self.header_at(pos)? {
            let len = h.total_len();
            if h.max_timestamp >= ts && !h.is_control() && h.last_offset() >= min_offset {
                let batch = pread::read_exact_at(&self.log, len, pos)
                    .map_err(Error::io_at("read segment", &self.log_path))?;
                for record in RecordIter::new(&batch, DEFAULT_MAX_DECOMPRESSED)? {
                    let record = record?;
                    if record.offset >= min_offset && record.timestamp >= ts {
                        return Ok(Some((record.offset, record.timestamp)));
                    }
                }
            }
            pos += len as u64;
        }
        Ok(None)
    }
}
