//! Encoding a whole batch: records are appended uncompressed behind a reserved header,
//! then compressed (if asked) and the header, lengths and CRC are filled in by `build`.

use super::compression::{compress_with_zstd_level, DEFAULT_ZSTD_LEVEL};
use super::header::attr;
use super::record::{encode_record, NewRecord};
use super::{
    compute_crc, BatchError, BatchHeader, Compression, TimestampType, HEADER_LEN, LOG_OVERHEAD,
    MAGIC_V2,
};

/// Kafka's sentinel for "no producer id / epoch / sequence / timestamp".
pub const NO_PRODUCER_ID: i64 = -1;
/// No producer epoch.
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// No sequence.
pub const NO_SEQUENCE: i32 = -1;
/// No timestamp.
pub const NO_TIMESTAMP: i64 = -1;

/// Batch-level fields for [`BatchBuilder`]. `Default` is what a plain (non-idempotent)
/// producer sends: no compression, no producer id, CreateTime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOptions {
    /// Codec for the records payload.
    pub compression: Compression,
    /// baseTimestamp; `None` uses the first record's timestamp as Kafka producers do
    /// (and [`NO_TIMESTAMP`] for an empty batch).
    pub base_timestamp: Option<i64>,
    /// baseOffset; producers send 0 and the leader overwrites it.
    pub base_offset: i64,
    /// partitionLeaderEpoch; -1 from producers.
    pub partition_leader_epoch: i32,
    /// producerId, or [`NO_PRODUCER_ID`].
    pub producer_id: i64,
    /// producerEpoch, or [`NO_PRODUCER_EPOCH`].
    pub producer_epoch: i16,
    /// Sequence of the first record, or [`NO_SEQUENCE`].
    pub base_sequence: i32,
    /// Sets the transactional attribute bit.
    pub transactional: bool,
    /// Sets the control attribute bit (transaction markers).
    pub control: bool,
    /// Timestamp type bit.
    pub timestamp_type: TimestampType,
    /// lastOffsetDelta to write when it must exceed the last record's delta (compaction
    /// keeps a batch's original offset span). `None`: the last record's delta.
    pub last_offset_delta: Option<i32>,
    /// zstd level when `compression` is zstd (Kafka's `compression.zstd.level`).
    pub zstd_level: i32,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            compression: Compression::None,
            base_timestamp: None,
            base_offset: 0,
            partition_leader_epoch: -1,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            base_sequence: NO_SEQUENCE,
            transactional: false,
            control: false,
            timestamp_type: TimestampType::CreateTime,
            last_offset_delta: None,
            zstd_level: DEFAULT_ZSTD_LEVEL,
        }
    }
}

impl BatchOptions {
    /// Defaults with the given codec.
    pub fn new(compression: Compression) -> Self {
        BatchOptions {
            compression,
            ..Self::default()
        }
    }

    /// The attributes field these options produce.
    pub fn attributes(&self) -> i16 {
        let mut a = i16::from(self.compression.id());
        if self.timestamp_type == TimestampType::LogAppendTime {
            a |= attr::TIMESTAMP_TYPE;
        }
        if self.transactional {
            a |= attr::TRANSACTIONAL;
        }
        if self.control {
            a |= attr::CONTROL;
        }
        a
    }
}

/// Builds one RecordBatch v2.
///
/// ```
/// use weir_protocol::batch::{BatchBuilder, BatchOptions, Compression, NewRecord, decode_records};
/// let mut b = BatchBuilder::new(BatchOptions::new(Compression::Lz4));
/// b.push(&NewRecord::new(1_700_000_000_000, Some(b"k"), Some(b"v"))).unwrap();
/// let batch = b.build().unwrap();
/// assert_eq!(decode_records(&batch).unwrap()[0].value.as_deref(), Some(&b"v"[..]));
/// ```
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    options: BatchOptions,
    /// HEADER_LEN placeholder bytes, then the uncompressed records.
    buf: Vec<u8>,
    base_timestamp: Option<i64>,
    max_timestamp: i64,
    count: i32,
    last_delta: i32,
}

impl BatchBuilder {
    /// An empty builder.
    pub fn new(options: BatchOptions) -> Self {
        Self::with_capacity(options, 0)
    }

    /// An empty builder with room for `records_bytes` of encoded records.
    pub fn with_capacity(options: BatchOptions, records_bytes: usize) -> Self {
        let mut buf = Vec::with_capacity(HEADER_LEN + records_bytes);
        buf.resize(HEADER_LEN, 0);
        BatchBuilder {
            options,
            buf,
            base_timestamp: options.base_timestamp,
            max_timestamp: NO_TIMESTAMP,
            count: 0,
            last_delta: -1,
        }
    }

    /// Appends a record with the next offset delta (0, 1, 2, ...).
    pub fn push(&mut self, record: &NewRecord<'_>) -> Result<(), BatchError> {
        let delta = self
            .last_delta
            .checked_add(1)
            .ok_or(BatchError::Unencodable("offset delta overflow"))?;
        self.push_with_offset_delta(delta, record)
    }

    /// Appends a record with an explicit offset delta, which must be greater than the
    /// previous one (gaps are allowed: compaction output keeps original offsets).
    pub fn push_with_offset_delta(
        &mut self,
        offset_delta: i32,
        record: &NewRecord<'_>,
    ) -> Result<(), BatchError> {
        if offset_delta <= self.last_delta {
            return Err(BatchError::Unencodable("offset deltas must increase"));
        }
        let count = self
            .count
            .checked_add(1)
            .ok_or(BatchError::Unencodable("too many records"))?;
        let base = *self.base_timestamp.get_or_insert(record.timestamp);
        let ts_delta = record
            .timestamp
            .checked_sub(base)
            .ok_or(BatchError::Unencodable("timestamp delta overflow"))?;
        encode_record(&mut self.buf, record, ts_delta, offset_delta)?;
        self.count = count;
        self.last_delta = offset_delta;
        self.max_timestamp = self.max_timestamp.max(record.timestamp);
        Ok(())
    }

    /// Records pushed so far.
    pub fn record_count(&self) -> i32 {
        self.count
    }

    /// True when no record was pushed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Batch size so far if it were built uncompressed (what producers compare with
    /// `batch.size`).
    pub fn uncompressed_size(&self) -> usize {
        self.buf.len()
    }

    /// Compresses the records and writes header, lengths and CRC.
    pub fn build(self) -> Result<Vec<u8>, BatchError> {
        let opts = self.options;
        let last_offset_delta = match opts.last_offset_delta {
            Some(d) if d < self.last_delta || d < 0 => {
                return Err(BatchError::Unencodable(
                    "last offset delta below the last record's",
                ))
            }
            Some(d) => d,
            None => self.last_delta.max(0),
        };
        let mut out = if opts.compression == Compression::None {
            self.buf
        } else {
            let records = self.buf.get(HEADER_LEN..).unwrap_or(&[]);
            let mut out = Vec::with_capacity(HEADER_LEN + records.len() / 2 + 64);
            out.resize(HEADER_LEN, 0);
            compress_with_zstd_level(opts.compression, opts.zstd_level, records, &mut out)?;
            out
        };
        let batch_length = i32::try_from(out.len() - LOG_OVERHEAD)
            .map_err(|_| BatchError::Unencodable("batch over 2 GiB"))?;
        let header = BatchHeader {
            base_offset: opts.base_offset,
            batch_length,
            partition_leader_epoch: opts.partition_leader_epoch,
            magic: MAGIC_V2,
            crc: 0,
            attributes: opts.attributes(),
            last_offset_delta,
            base_timestamp: self.base_timestamp.unwrap_or(NO_TIMESTAMP),
            max_timestamp: self.max_timestamp,
            producer_id: opts.producer_id,
            producer_epoch: opts.producer_epoch,
            base_sequence: opts.base_sequence,
            records_count: self.count,
        };
        header.write(&mut out);
        let crc = compute_crc(&out);
        if let Some(c) = out.get_mut(17..21) {
            c.copy_from_slice(&crc.to_be_bytes());
        }
        Ok(out)
    }
}
