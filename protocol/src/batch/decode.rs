//! Reading the records of one batch: a lazy iterator, an owned `Vec` decode, and the
//! strict structural check the broker runs on produce.
//!
//! None of these check the CRC except [`decode_records`]: the broker has already run
//! [`super::validate_batch`] on the hot path, and running it twice would be waste.

use bytes::Bytes;

use super::control::{ControlRecordType, EndTxnMarker};
use super::header::attr;
use super::record::{parse_record, RawRecord, Record, RecordView, MIN_RECORD_LEN};
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

    /// The next record, read in place (no allocation, no reference count): the borrowing
    /// form of [`Iterator::next`], with the same errors.
    pub fn next_view(&mut self) -> Option<Result<RecordView<'_>, BatchError>> {
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
        match parse_record(&self.payload, &mut self.pos, self.index) {
            Ok(raw) => {
                self.index += 1;
                Some(Ok(raw.view(&self.header, &self.payload)))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl Iterator for RecordIter {
    type Item = Result<Record, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.next_view()?.map(|v| v.to_record()))
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
    match header.compression()? {
        Compression::None => {
            if payload.len() > max_decompressed {
                return Err(BatchError::DecompressedTooLarge {
                    codec: Compression::None.name(),
                    limit: max_decompressed,
                });
            }
            walk_records(&header, payload, require_keys)
        }
        codec => with_scratch(|buf| {
            super::compression::decompress_into(codec, payload, max_decompressed, buf)?;
            walk_records(&header, buf, require_keys)
        }),
    }
}

/// Decompressed payloads above this are not kept for the next batch: one odd batch near
/// the cap must not pin hundreds of megabytes per thread.
const SCRATCH_KEEP: usize = 8 << 20;

thread_local! {
    // The broker validates every compressed batch on its I/O threads; one buffer per
    // thread saves an allocation (and its page faults) per batch.
    static SCRATCH: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

fn with_scratch<T>(f: impl FnOnce(&mut Vec<u8>) -> T) -> T {
    // Taken out, not borrowed: a nested call or a thread being torn down simply gets an
    // empty buffer of its own.
    let mut buf = SCRATCH.try_with(std::cell::Cell::take).unwrap_or_default();
    let out = f(&mut buf);
    if buf.capacity() <= SCRATCH_KEEP {
        let _ = SCRATCH.try_with(|c| c.set(buf));
    }
    out
}

/// The record walk of [`validate_records`] over a decompressed payload: parses each record
/// in place (keys, values and headers stay slices of `payload`).
fn walk_records(
    header: &BatchHeader,
    payload: &[u8],
    require_keys: bool,
) -> Result<RecordsSummary, BatchError> {
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
        let raw = parse_record(payload, &mut pos, s.count)?;
        check_record(
            header,
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

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::super::compression::{compress, single_frame_size};
    use super::super::record::{encode_record, NewRecord, RecordHeader};
    use super::super::{compute_crc, LOG_OVERHEAD, MAGIC_V2};
    use super::*;

    const CODECS: [Compression; 3] = [Compression::None, Compression::Zstd, Compression::Lz4];

    /// Encoded records with offset deltas 0..n and values of `size` bytes.
    fn records(n: usize, size: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..n {
            let value = vec![b'a' + (i % 26) as u8; size];
            let r = NewRecord::new(1_000 + i as i64, Some(&b"key"[..]), Some(&value[..]));
            encode_record(&mut out, &r, i as i64, i as i32).unwrap();
        }
        out
    }

    /// The borrowed walk yields exactly what the owned one does, headers included, and
    /// fails where it fails.
    #[test]
    fn record_views_equal_decoded_records() {
        use super::super::{BatchBuilder, BatchOptions};
        for codec in CODECS {
            let mut b = BatchBuilder::new(BatchOptions {
                compression: codec,
                ..BatchOptions::default()
            });
            let headers = [RecordHeader {
                key: "h".into(),
                value: Some(Bytes::from_static(b"hv")),
            }];
            for i in 0..20i64 {
                let value = vec![b'v'; i as usize];
                let key = (i % 3 != 0).then_some(&b"k"[..]);
                let hs: &[RecordHeader] = if i % 2 == 0 { &headers } else { &[] };
                b.push(&NewRecord {
                    timestamp: 1_000 + i,
                    key,
                    value: (i != 7).then_some(&value[..]),
                    headers: hs,
                })
                .unwrap();
            }
            let batch = b.build().unwrap();
            let owned: Vec<Record> = RecordIter::new(&batch, 1 << 20)
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let mut it = RecordIter::new(&batch, 1 << 20).unwrap();
            let mut n = 0;
            while let Some(v) = it.next_view() {
                let v = v.unwrap();
                let r = &owned[n];
                assert_eq!((v.offset, v.timestamp), (r.offset, r.timestamp));
                assert_eq!(v.key, r.key.as_deref());
                assert_eq!(v.value, r.value.as_deref());
                let hs: Vec<(Vec<u8>, Option<Vec<u8>>)> = v
                    .headers()
                    .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
                    .collect();
                let want: Vec<(Vec<u8>, Option<Vec<u8>>)> = r
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.key.as_bytes().to_vec(),
                            h.value.as_ref().map(|v| v.to_vec()),
                        )
                    })
                    .collect();
                assert_eq!(hs, want);
                n += 1;
            }
            assert_eq!(n, 20, "{codec:?}");
        }
        // A count the payload does not hold: both walks end in the same error.
        let payload = records(3, 10);
        let bad = batch(Compression::None, &payload, 4, 3);
        let mut it = RecordIter::new(&bad, 1 << 20).unwrap();
        let mut last = None;
        while let Some(v) = it.next_view() {
            last = Some(v.map(|v| v.offset));
        }
        assert!(matches!(
            last,
            Some(Err(BatchError::RecordCountMismatch { .. }))
        ));
    }

    /// A batch with a valid CRC around any records payload, so only the record walk can
    /// reject it.
    fn batch(codec: Compression, payload: &[u8], count: i32, last_offset_delta: i32) -> Vec<u8> {
        let mut compressed = Vec::new();
        compress(codec, payload, &mut compressed).unwrap();
        wrap(codec, &compressed, count, last_offset_delta)
    }

    /// A batch around an already compressed (or deliberately broken) payload.
    fn wrap(codec: Compression, payload: &[u8], count: i32, last_offset_delta: i32) -> Vec<u8> {
        let mut out = vec![0u8; HEADER_LEN];
        out.extend_from_slice(payload);
        BatchHeader {
            base_offset: 0,
            batch_length: (out.len() - LOG_OVERHEAD) as i32,
            partition_leader_epoch: -1,
            magic: MAGIC_V2,
            crc: 0,
            attributes: i16::from(codec.id()),
            last_offset_delta,
            base_timestamp: 1_000,
            max_timestamp: 1_000 + i64::from(last_offset_delta),
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            records_count: count,
        }
        .write(&mut out);
        let crc = compute_crc(&out);
        out[17..21].copy_from_slice(&crc.to_be_bytes());
        validate_batch(&out).unwrap();
        out
    }

    #[test]
    fn valid_batches_summarized() {
        for codec in CODECS {
            let payload = records(3, 1000);
            let s = validate_records(&batch(codec, &payload, 3, 2), true, 1 << 20).unwrap();
            assert_eq!(s.count, 3, "{codec:?}");
            assert_eq!(s.last_record_offset_delta, 2);
            assert!(s.sequential_offsets);
            assert_eq!((s.null_keys, s.null_values), (0, 0));
            assert_eq!(s.max_timestamp, 1_002);
            assert_eq!(s.uncompressed_bytes, payload.len());
        }
    }

    #[test]
    fn truncated_record_rejected() {
        for codec in CODECS {
            let payload = records(3, 100);
            let cut = &payload[..payload.len() - 1];
            let err = validate_records(&batch(codec, cut, 3, 2), false, 1 << 20).unwrap_err();
            assert_eq!(
                err,
                BatchError::MalformedRecord {
                    index: 2,
                    reason: "record length past end of batch"
                },
                "{codec:?}"
            );
        }
    }

    #[test]
    fn bad_varint_rejected() {
        for codec in CODECS {
            // A record length whose fifth byte has bits past 32.
            let mut payload = records(2, 100);
            payload.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF, 0x7F]);
            let err = validate_records(&batch(codec, &payload, 3, 2), false, 1 << 20).unwrap_err();
            assert_eq!(
                err,
                BatchError::MalformedRecord {
                    index: 2,
                    reason: "bad varint"
                },
                "{codec:?}"
            );
            // The same inside a record: its offset delta never ends.
            let mut payload = records(1, 10);
            payload.extend_from_slice(&[0x0C, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
            let err = validate_records(&batch(codec, &payload, 2, 1), false, 1 << 20).unwrap_err();
            assert_eq!(
                err,
                BatchError::MalformedRecord {
                    index: 1,
                    reason: "bad varint"
                },
                "{codec:?}"
            );
        }
    }

    #[test]
    fn record_count_mismatch_rejected() {
        for codec in CODECS {
            let payload = records(3, 100);
            let err = validate_records(&batch(codec, &payload, 4, 3), false, 1 << 20).unwrap_err();
            assert_eq!(
                err,
                BatchError::RecordCountMismatch {
                    declared: 4,
                    found: 3,
                    trailing_bytes: 0
                },
                "{codec:?}"
            );
            let last = records(1, 100).len();
            let err = validate_records(&batch(codec, &payload, 2, 2), false, 1 << 20).unwrap_err();
            assert_eq!(
                err,
                BatchError::RecordCountMismatch {
                    declared: 2,
                    found: 2,
                    trailing_bytes: last
                },
                "{codec:?}"
            );
        }
    }

    #[test]
    fn reused_buffer_never_leaks_into_the_next_batch() {
        // A large batch leaves a long buffer behind; a short one after it must see only
        // its own bytes (a stale tail would parse as trailing records).
        for codec in [Compression::Zstd, Compression::Lz4, Compression::Gzip] {
            let big = batch(codec, &records(200, 1000), 200, 199);
            let small = batch(codec, &records(1, 10), 1, 0);
            assert_eq!(validate_records(&big, false, 1 << 20).unwrap().count, 200);
            assert_eq!(
                validate_records(&small, false, 1 << 20).unwrap().count,
                1,
                "{codec:?}"
            );
        }
        let big = batch(Compression::Zstd, &records(200, 1000), 200, 199);
        let small = batch(Compression::Zstd, &records(1, 10), 1, 0);
        for _ in 0..3 {
            assert_eq!(validate_records(&big, false, 1 << 20).unwrap().count, 200);
            assert_eq!(validate_records(&small, false, 1 << 20).unwrap().count, 1);
            let mut frame = Vec::new();
            compress(Compression::Zstd, &records(1, 10), &mut frame).unwrap();
            frame.truncate(frame.len() - 2);
            let garbage = wrap(Compression::Zstd, &frame, 1, 0);
            assert!(matches!(
                validate_records(&garbage, false, 1 << 20),
                Err(BatchError::Compression { .. })
            ));
        }
    }

    #[test]
    fn zstd_caps_and_odd_frames() {
        let payload = records(50, 1000);
        let b = batch(Compression::Zstd, &payload, 50, 49);
        assert!(single_frame_size(&b[HEADER_LEN..], payload.len()).is_some());
        // Declared size over the cap: refused before decompressing.
        assert!(matches!(
            validate_records(&b, false, payload.len() - 1),
            Err(BatchError::DecompressedTooLarge { .. })
        ));
        assert_eq!(
            validate_records(&b, false, payload.len()).unwrap().count,
            50
        );
        // Two frames (as a streaming writer may emit) and a frame without a declared size
        // both take the streaming path and still validate.
        let (first, second) = payload.split_at(records(20, 1000).len());
        let mut two = Vec::new();
        compress(Compression::Zstd, first, &mut two).unwrap();
        compress(Compression::Zstd, second, &mut two).unwrap();
        let mut unsized_frame = Vec::new();
        let mut enc = zstd::stream::write::Encoder::new(&mut unsized_frame, 3).unwrap();
        std::io::Write::write_all(&mut enc, &payload).unwrap();
        enc.finish().unwrap();
        for compressed in [two, unsized_frame] {
            let out = wrap(Compression::Zstd, &compressed, 50, 49);
            assert_eq!(validate_records(&out, false, 1 << 20).unwrap().count, 50);
            assert!(matches!(
                validate_records(&out, false, 1000),
                Err(BatchError::DecompressedTooLarge { .. })
            ));
        }
    }
}
