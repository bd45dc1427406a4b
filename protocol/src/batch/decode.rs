//! Reading the records of one batch: a lazy iterator, an owned `Vec` decode, and the
//! strict structural check the broker runs on produce.
//!
//! None of these check the CRC except [`decode_records`]: the broker has already run
//! [`super::validate_batch`] on the hot path, and running it twice would be waste.

use bytes::Bytes;

use super::control::{ControlRecordType, EndTxnMarker};
use super::header::attr;
use super::record::{parse_record, RawRecord, Record, RecordHeader, MIN_RECORD_LEN};
use super::{validate_batch, BatchError, BatchHeader, Compression, TimestampType, HEADER_LEN};

/// Decompression cap used by [`decode_records`]: far above any batch a broker accepts by
/// default (1 MiB compressed), far below what would hurt a process.
pub const DEFAULT_MAX_DECOMPRESSED: usize = 64 << 20;

/// Parses the header and checks that `batch` is exactly one batch long.
fn split(batch: &[u8]) -> Result<(BatchHeader, &[u8]), BatchError> {
    let header = BatchHeader::parse(batch)?;
    let total = header.total_len();
    if batch.len() < total {
        return Err(BatchError::Truncated {
            needed: total,
            have: batch.len(),
        });
    }
    if batch.len() > total {
        return Err(BatchError::InvalidLength(header.batch_length));
    }
    if header.records_count < 0 {
        return Err(BatchError::CountMismatch {
            count: header.records_count,
            last_offset_delta: header.last_offset_delta,
        });
    }
    Ok((header, batch.get(HEADER_LEN..).unwrap_or(&[])))
}

/// The records payload, decompressed and size-capped. `Err` when compressed bytes are
/// bad; the plain payload is returned as-is.
fn records_payload<'a>(
    header: &BatchHeader,
    payload: &'a [u8],
    max_decompressed: usize,
) -> Result<std::borrow::Cow<'a, [u8]>, BatchError> {
    match header.compression()? {
        Compression::None => {
            if payload.len() > max_decompressed {
                return Err(BatchError::DecompressedTooLarge {
                    codec: Compression::None.name(),
                    limit: max_decompressed,
                });
            }
            Ok(std::borrow::Cow::Borrowed(payload))
        }
        codec => super::compression::decompress(codec, payload, max_decompressed)
            .map(std::borrow::Cow::Owned),
    }
}

/// Lazily decodes the records of one batch. Keys, values and header values are slices of
/// one shared buffer (the decompressed payload, or the batch itself with
/// [`RecordIter::from_bytes`]), so a record costs no copy of its payload.
///
/// Yields exactly `recordsCount` records, then an error if bytes are left over; stops
/// after the first error.
#[derive(Debug, Clone)]
pub struct RecordIter {
    header: BatchHeader,
    payload: Bytes,
    pos: usize,
    index: u32,
    done: bool,
}

impl RecordIter {
    /// Iterator over a batch held in a plain slice (an uncompressed payload is copied
    /// once). Checks length and codec, decompresses up to `max_decompressed` bytes; does
    /// not check the CRC.
    pub fn new(batch: &[u8], max_decompressed: usize) -> Result<Self, BatchError> {
        let (header, payload) = split(batch)?;
        let payload = match records_payload(&header, payload, max_decompressed)? {
            std::borrow::Cow::Borrowed(b) => Bytes::copy_from_slice(b),
            std::borrow::Cow::Owned(v) => Bytes::from(v),
        };
        Ok(Self::with_payload(header, payload))
    }

    /// Like [`RecordIter::new`], sharing `batch` instead of copying when uncompressed.
    pub fn from_bytes(batch: Bytes, max_decompressed: usize) -> Result<Self, BatchError> {
        let (header, payload) = split(&batch)?;
        let payload = match records_payload(&header, payload, max_decompressed)? {
            std::borrow::Cow::Borrowed(b) => batch.slice_ref(b),
            std::borrow::Cow::Owned(v) => Bytes::from(v),
        };
        Ok(Self::with_payload(header, payload))
    }

    fn with_payload(header: BatchHeader, payload: Bytes) -> Self {
        RecordIter {
            header,
            payload,
            pos: 0,
            index: 0,
            done: false,
        }
    }

    /// The batch header.
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    fn owned(&self, raw: &RawRecord<'_>) -> Record {
        let h = &self.header;
        let timestamp = match h.timestamp_type() {
            TimestampType::LogAppendTime => h.max_timestamp,
            TimestampType::CreateTime => h.base_timestamp.wrapping_add(raw.timestamp_delta),
        };
        let slice = |b: Option<&[u8]>| b.map(|b| self.payload.slice_ref(b));
        Record {
            offset_delta: raw.offset_delta,
            timestamp_delta: raw.timestamp_delta,
            offset: h.base_offset.wrapping_add(i64::from(raw.offset_delta)),
            timestamp,
            key: slice(raw.key),
            value: slice(raw.value),
            headers: raw
                .headers()
                .map(|(k, v)| RecordHeader {
                    // Lossy: a consumer must never wedge on a header key some non-Java
                    // client wrote; the strict check lives in `validate_records`.
                    key: String::from_utf8_lossy(k).into_owned(),
                    value: slice(v),
                })
                .collect(),
        }
    }
}

impl Iterator for RecordIter {
    type Item = Result<Record, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let declared = self.header.records_count;
        let left = self.payload.len().saturating_sub(self.pos);
        if i64::from(self.index) >= i64::from(declared) || left == 0 {
            self.done = true;
            if i64::from(self.index) == i64::from(declared) && left == 0 {
                return None;
            }
            return Some(Err(BatchError::RecordCountMismatch {
                declared,
                found: self.index,
                trailing_bytes: left,
            }));
        }
        let raw = match parse_record(&self.payload, &mut self.pos, self.index) {
            Ok(raw) => raw,
            Err(e) => {
                self.done = true;
                return Some(Err(e));
            }
        };
        let record = self.owned(&raw);
        self.index += 1;
        Some(Ok(record))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from(self.header.records_count)
            .unwrap_or(0)
            .saturating_sub(self.index as usize);
        (0, Some(left.saturating_add(1)))
    }
}

/// Validates `batch` (length, magic, CRC) and decodes all its records, decompressing up
/// to [`DEFAULT_MAX_DECOMPRESSED`] bytes.
pub fn decode_records(batch: &[u8]) -> Result<Vec<Record>, BatchError> {
    decode_records_with_limit(batch, DEFAULT_MAX_DECOMPRESSED)
}

/// [`decode_records`] with an explicit decompression cap.
pub fn decode_records_with_limit(
    batch: &[u8],
    max_decompressed: usize,
) -> Result<Vec<Record>, BatchError> {
    validate_batch(batch)?;
    let iter = RecordIter::new(batch, max_decompressed)?;
    // Never trust recordsCount for an allocation: bound it by what the payload can hold.
    let cap = usize::try_from(iter.header().records_count)
        .unwrap_or(0)
        .min(iter.payload.len() / MIN_RECORD_LEN);
    let mut out = Vec::with_capacity(cap);
    for r in iter {
        out.push(r?);
    }
    Ok(out)
}

/// What [`validate_records`] learned about a batch's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordsSummary {
    /// Records in the batch (equals recordsCount).
    pub count: u32,
    /// Records with a null key.
    pub null_keys: u32,
    /// Records with a null value (tombstones).
    pub null_values: u32,
    /// Largest record timestamp (the batch maxTimestamp for LogAppendTime), or -1.
    pub max_timestamp: i64,
    /// Offset delta of the last record, or -1 for an empty batch.
    pub last_record_offset_delta: i32,
    /// Offset deltas are exactly 0, 1, ..., count - 1 (what producers must send).
    pub sequential_offsets: bool,
    /// Size of the records payload after decompression.
    pub uncompressed_bytes: usize,
    /// The marker, for a COMMIT/ABORT control batch.
    pub end_txn_marker: Option<EndTxnMarker>,
}

/// Strictly checks the records of one batch: exactly recordsCount records that each parse
/// to their declared length, nothing left over, offset deltas strictly increasing within
/// [0, lastOffsetDelta], header keys valid UTF-8, a non-null key on every record when
/// `require_keys` (compacted topics), and a well-formed control record in control batches.
/// Decompresses at most `max_decompressed` bytes. Does not check the CRC; run
/// [`super::validate_batch`] first.
pub fn validate_records(
    batch: &[u8],
    require_keys: bool,
    max_decompressed: usize,
) -> Result<RecordsSummary, BatchError> {
    let (header, payload) = split(batch)?;
    let payload = records_payload(&header, payload, max_decompressed)?;
    let declared = header.records_count;
    let mut s = RecordsSummary {
        count: 0,
        null_keys: 0,
        null_values: 0,
        max_timestamp: -1,
        last_record_offset_delta: -1,
        sequential_offsets: true,
        uncompressed_bytes: payload.len(),
        end_txn_marker: None,
    };
    // Zero is legal: compaction empties a control batch once its marker may go.
    if header.is_control() && declared > 1 {
        return Err(BatchError::InvalidControlRecord(
            "control batch holds more than one record",
        ));
    }
    let mut pos = 0;
    while pos < payload.len() && i64::from(s.count) < i64::from(declared) {
        let raw = parse_record(&payload, &mut pos, s.count)?;
        check_record(
            &header,
            &raw,
            s.count,
            s.last_record_offset_delta,
            require_keys,
        )?;
        if header.is_control() {
            s.end_txn_marker = EndTxnMarker::parse(raw.key, raw.value)?;
        }
        s.sequential_offsets &= i64::from(raw.offset_delta) == i64::from(s.count);
        s.last_record_offset_delta = raw.offset_delta;
        s.null_keys += u32::from(raw.key.is_none());
        s.null_values += u32::from(raw.value.is_none());
        let ts = match header.timestamp_type() {
            TimestampType::LogAppendTime => header.max_timestamp,
            TimestampType::CreateTime => header.base_timestamp.wrapping_add(raw.timestamp_delta),
        };
        s.max_timestamp = s.max_timestamp.max(ts);
        s.count += 1;
    }
    let trailing = payload.len().saturating_sub(pos);
    if i64::from(s.count) != i64::from(declared) || trailing != 0 {
        return Err(BatchError::RecordCountMismatch {
            declared,
            found: s.count,
            trailing_bytes: trailing,
        });
    }
    Ok(s)
}

fn check_record(
    header: &BatchHeader,
    raw: &RawRecord<'_>,
    index: u32,
    prev_delta: i32,
    require_keys: bool,
) -> Result<(), BatchError> {
    if raw.offset_delta <= prev_delta || raw.offset_delta > header.last_offset_delta {
        return Err(BatchError::OffsetDeltaOutOfOrder {
            index,
            offset_delta: raw.offset_delta,
            last_offset_delta: header.last_offset_delta,
        });
    }
    if require_keys && raw.key.is_none() && header.attributes & attr::CONTROL == 0 {
        return Err(BatchError::MissingKey {
            offset_delta: raw.offset_delta,
        });
    }
    if !raw.header_keys_utf8() {
        return Err(BatchError::MalformedRecord {
            index,
            reason: "header key is not UTF-8",
        });
    }
    if header.is_control() {
        ControlRecordType::parse_key(raw.key.unwrap_or(&[]))?;
    }
    Ok(())
}
