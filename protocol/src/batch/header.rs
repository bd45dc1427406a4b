//! The 61-byte RecordBatch v2 header: parse, validate, patch in place.
//!
//! Layout (big-endian):
//!
//! | off | len | field                |
//! |----:|----:|----------------------|
//! |   0 |   8 | baseOffset           |
//! |   8 |   4 | batchLength (bytes after this field) |
//! |  12 |   4 | partitionLeaderEpoch |
//! |  16 |   1 | magic (= 2)          |
//! |  17 |   4 | crc (CRC-32C over bytes 21..end) |
//! |  21 |   2 | attributes           |
//! |  23 |   4 | lastOffsetDelta      |
//! |  27 |   8 | baseTimestamp        |
//! |  35 |   8 | maxTimestamp         |
//! |  43 |   8 | producerId           |
//! |  51 |   2 | producerEpoch        |
//! |  53 |   4 | baseSequence         |
//! |  57 |   4 | recordsCount         |
//! |  61 |   n | records (maybe compressed) |
//!
//! Only baseOffset and partitionLeaderEpoch sit outside the CRC, which is why the broker
//! can stamp them on the hot path without touching the records.

use super::BatchError;

/// Size of the fixed header.
pub const HEADER_LEN: usize = 61;
/// baseOffset + batchLength: the bytes not counted by batchLength.
pub const LOG_OVERHEAD: usize = 12;
/// The only supported magic.
pub const MAGIC_V2: i8 = 2;
/// Smallest legal batchLength (an empty batch).
const MIN_BATCH_LENGTH: i32 = (HEADER_LEN - LOG_OVERHEAD) as i32;
/// Where the CRC-covered range starts.
const CRC_START: usize = 21;

/// Compression codec from attribute bits 0..2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// No compression.
    None,
    /// gzip (RFC 1952).
    Gzip,
    /// Snappy (xerial framing or a raw block).
    Snappy,
    /// LZ4 frame.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// The codec id stored in the attributes.
    pub fn id(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// Codec for an attribute id; ids 5..7 are invalid.
    pub fn from_id(id: u8) -> Result<Self, BatchError> {
        match id {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            other => Err(BatchError::UnknownCompression(other)),
        }
    }

    /// Kafka's name for the codec.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// Timestamp type from attribute bit 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    /// Set by the producer.
    CreateTime,
    /// Set by the broker at append.
    LogAppendTime,
}

/// Attribute masks.
pub mod attr {
    /// Compression codec bits.
    pub const COMPRESSION_MASK: i16 = 0x07;
    /// LogAppendTime flag.
    pub const TIMESTAMP_TYPE: i16 = 0x08;
    /// Transactional flag.
    pub const TRANSACTIONAL: i16 = 0x10;
    /// Control batch flag.
    pub const CONTROL: i16 = 0x20;
    /// baseTimestamp holds the compaction delete horizon.
    pub const DELETE_HORIZON: i16 = 0x40;
}

/// The decoded fixed header of one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Bytes after the length field.
    pub batch_length: i32,
    /// Epoch of the leader that appended the batch, -1 for none.
    pub partition_leader_epoch: i32,
    /// Always 2 once parsed.
    pub magic: i8,
    /// Stored CRC-32C.
    pub crc: u32,
    /// Attribute flags.
    pub attributes: i16,
    /// lastOffset - baseOffset.
    pub last_offset_delta: i32,
    /// Timestamp base of record deltas.
    pub base_timestamp: i64,
    /// Largest timestamp in the batch.
    pub max_timestamp: i64,
    /// Producer id, -1 for none.
    pub producer_id: i64,
    /// Producer epoch, -1 for none.
    pub producer_epoch: i16,
    /// Sequence of the first record, -1 for none.
    pub base_sequence: i32,
    /// Number of records.
    pub records_count: i32,
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        a.copy_from_slice(s);
    }
    i64::from_be_bytes(a)
}

fn be_i32(b: &[u8], at: usize) -> i32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        a.copy_from_slice(s);
    }
    i32::from_be_bytes(a)
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    let mut a = [0u8; 2];
    if let Some(s) = b.get(at..at + 2) {
        a.copy_from_slice(s);
    }
    i16::from_be_bytes(a)
}

fn put(b: &mut [u8], at: usize, v: &[u8]) {
    if let Some(s) = b.get_mut(at..at + v.len()) {
        s.copy_from_slice(v);
    }
}

impl BatchHeader {
    /// Parses the fixed header from the start of `buf` (which must hold at least 61 bytes).
    /// Checks the length field and magic; does not check the CRC or that the whole batch
    /// is present (see [`validate_batch`]).
    pub fn parse(buf: &[u8]) -> Result<Self, BatchError> {
        if buf.len() < HEADER_LEN {
            return Err(BatchError::Truncated {
                needed: HEADER_LEN,
                have: buf.len(),
            });
        }
        let batch_length = be_i32(buf, 8);
        if batch_length < MIN_BATCH_LENGTH {
            return Err(BatchError::InvalidLength(batch_length));
        }
        let magic = buf.get(16).map(|b| *b as i8).unwrap_or(0);
        if magic != MAGIC_V2 {
            return Err(BatchError::UnsupportedMagic(magic));
        }
        Ok(BatchHeader {
            base_offset: be_i64(buf, 0),
            batch_length,
            partition_leader_epoch: be_i32(buf, 12),
            magic,
            crc: be_i32(buf, 17) as u32,
            attributes: be_i16(buf, 21),
            last_offset_delta: be_i32(buf, 23),
            base_timestamp: be_i64(buf, 27),
            max_timestamp: be_i64(buf, 35),
            producer_id: be_i64(buf, 43),
            producer_epoch: be_i16(buf, 51),
            base_sequence: be_i32(buf, 53),
            records_count: be_i32(buf, 57),
        })
    }

    /// Writes this header into the first 61 bytes of `buf` (CRC as stored in `self.crc`).
    pub fn write(&self, buf: &mut [u8]) {
        put(buf, 0, &self.base_offset.to_be_bytes());
        put(buf, 8, &self.batch_length.to_be_bytes());
        put(buf, 12, &self.partition_leader_epoch.to_be_bytes());
        put(buf, 16, &[self.magic as u8]);
        put(buf, 17, &self.crc.to_be_bytes());
        put(buf, 21, &self.attributes.to_be_bytes());
        put(buf, 23, &self.last_offset_delta.to_be_bytes());
        put(buf, 27, &self.base_timestamp.to_be_bytes());
        put(buf, 35, &self.max_timestamp.to_be_bytes());
        put(buf, 43, &self.producer_id.to_be_bytes());
        put(buf, 51, &self.producer_epoch.to_be_bytes());
        put(buf, 53, &self.base_sequence.to_be_bytes());
        put(buf, 57, &self.records_count.to_be_bytes());
    }

    /// Whole batch size in bytes (12 + batchLength).
    pub fn total_len(&self) -> usize {
        LOG_OVERHEAD + self.batch_length.max(0) as usize
    }

    /// Offset of the last record.
    pub fn last_offset(&self) -> i64 {
        // Saturating: both fields come from disk or the network, and a damaged base offset
        // near i64::MAX must give an error upstream (offsets out of order), not a panic.
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// The offset after this batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }

    /// Compression codec.
    pub fn compression(&self) -> Result<Compression, BatchError> {
        Compression::from_id((self.attributes & attr::COMPRESSION_MASK) as u8)
    }

    /// Timestamp type.
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & attr::TIMESTAMP_TYPE != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// Control batch (transaction marker)?
    pub fn is_control(&self) -> bool {
        self.attributes & attr::CONTROL != 0
    }

    /// Part of a transaction?
    pub fn is_transactional(&self) -> bool {
        self.attributes & attr::TRANSACTIONAL != 0
    }

    /// Written by an idempotent or transactional producer?
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }
}

/// CRC-32C over bytes 21..end of a whole batch.
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(batch.get(CRC_START..).unwrap_or(&[]))
}

/// Checks that `buf` is exactly one whole, intact batch: length, magic, CRC, codec id and
/// record count. Records themselves are not decoded (that is the hot path's point).
pub fn validate_batch(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(buf)?;
    let total = header.total_len();
    if buf.len() < total {
        return Err(BatchError::Truncated {
            needed: total,
            have: buf.len(),
        });
    }
    if buf.len() > total {
        return Err(BatchError::InvalidLength(header.batch_length));
    }
    let computed = compute_crc(buf);
    if computed != header.crc {
        return Err(BatchError::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    header.compression()?;
    // An empty batch (count 0) only exists after compaction; it still spans lastOffsetDelta.
    let count_ok = header.records_count >= 0
        && header.last_offset_delta >= 0
        && (header.records_count == 0 || header.records_count - 1 <= header.last_offset_delta);
    if !count_ok {
        return Err(BatchError::CountMismatch {
            count: header.records_count,
            last_offset_delta: header.last_offset_delta,
        });
    }
    Ok(header)
}

/// Overwrites baseOffset (outside the CRC).
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    put(batch, 0, &base_offset.to_be_bytes());
}

/// Overwrites partitionLeaderEpoch (outside the CRC).
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    put(batch, 12, &epoch.to_be_bytes());
}

/// Sets LogAppendTime: maxTimestamp = `now_ms`, timestamp-type bit on, CRC recomputed.
pub fn set_log_append_time(batch: &mut [u8], now_ms: i64) {
    let attrs = be_i16(batch, 21) | attr::TIMESTAMP_TYPE;
    put(batch, 21, &attrs.to_be_bytes());
    put(batch, 35, &now_ms.to_be_bytes());
    let crc = compute_crc(batch);
    put(batch, 17, &crc.to_be_bytes());
}

/// Iterates over concatenated batches (a segment slice or a fetch response), yielding
/// each batch's header and bytes. Stops with an error at the first invalid batch; a
/// trailing partial batch yields [`BatchError::Truncated`]. CRCs are checked only when
/// `check_crc` is set.
pub struct BatchIter<'a> {
    buf: &'a [u8],
    pos: usize,
    check_crc: bool,
    failed: bool,
}

impl<'a> BatchIter<'a> {
    /// Iterator over `buf`.
    pub fn new(buf: &'a [u8], check_crc: bool) -> Self {
        BatchIter {
            buf,
            pos: 0,
            check_crc,
            failed: false,
        }
    }

    /// Byte position of the next batch (after the last one yielded).
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = Result<(BatchHeader, &'a [u8]), BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let rest = self.buf.get(self.pos..)?;
        if rest.is_empty() {
            return None;
        }
        let result = BatchHeader::parse(rest).and_then(|h| {
            let bytes = rest.get(..h.total_len()).ok_or(BatchError::Truncated {
                needed: h.total_len(),
                have: rest.len(),
            })?;
            if self.check_crc {
                validate_batch(bytes)?;
            }
            Ok((h, bytes))
        });
        match result {
            Ok((h, bytes)) => {
                self.pos += bytes.len();
                Some(Ok((h, bytes)))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;

    fn empty_batch(attributes: i16) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN];
        let h = BatchHeader {
            base_offset: 0,
            batch_length: 49,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes,
            last_offset_delta: 0,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: 0,
            producer_epoch: 0,
            base_sequence: 0,
            records_count: 0,
        };
        h.write(&mut b);
        b
    }

    #[test]
    fn crc_known_answers() {
        assert_eq!(crc32c::crc32c(b"Some String"), 608512271);
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        // Sarama "empty record" and "control batch" vectors.
        assert_eq!(compute_crc(&empty_batch(0)), 0x595F_B7DD);
        assert_eq!(compute_crc(&empty_batch(0x20)), 0x512E_43D9);
    }

    #[test]
    fn patching_outside_crc_keeps_batch_valid() {
        let mut b = empty_batch(0);
        let crc = compute_crc(&b);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        validate_batch(&b).unwrap();
        set_base_offset(&mut b, 1234);
        set_partition_leader_epoch(&mut b, 7);
        let h = validate_batch(&b).unwrap();
        assert_eq!(h.base_offset, 1234);
        assert_eq!(h.partition_leader_epoch, 7);
        set_log_append_time(&mut b, 99);
        let h = validate_batch(&b).unwrap();
        assert_eq!(h.max_timestamp, 99);
        assert_eq!(h.timestamp_type(), TimestampType::LogAppendTime);
    }

    #[test]
    fn flipped_byte_is_a_crc_mismatch() {
        let mut b = empty_batch(0);
        let crc = compute_crc(&b);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b[40] ^= 0xFF;
        assert!(matches!(
            validate_batch(&b),
            Err(BatchError::CrcMismatch { .. })
        ));
    }

    #[test]
    fn short_and_bad_magic_and_bad_length() {
        assert!(matches!(
            BatchHeader::parse(&[0u8; 10]),
            Err(BatchError::Truncated { .. })
        ));
        let mut b = empty_batch(0);
        b[16] = 1;
        assert!(matches!(
            BatchHeader::parse(&b),
            Err(BatchError::UnsupportedMagic(1))
        ));
        let mut b = empty_batch(0);
        b[8..12].copy_from_slice(&10i32.to_be_bytes());
        assert!(matches!(
            BatchHeader::parse(&b),
            Err(BatchError::InvalidLength(10))
        ));
    }

    #[test]
    fn iter_stops_at_torn_tail() {
        let mut b = empty_batch(0);
        let crc = compute_crc(&b);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        let mut two = b.clone();
        two.extend_from_slice(&b);
        two.extend_from_slice(&b[..30]);
        let mut it = BatchIter::new(&two, true);
        assert!(matches!(it.next(), Some(Ok(_))));
        assert!(matches!(it.next(), Some(Ok(_))));
        assert!(matches!(it.next(), Some(Err(BatchError::Truncated { .. }))));
        assert!(it.next().is_none());
        assert_eq!(it.position(), 2 * HEADER_LEN);
    }
}
