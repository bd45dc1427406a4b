//! One record inside a batch: the owned decoded form, the borrowed input form, and the
//! byte-level encoder/parser shared by the builder, the decoders and the validator.
//!
//! Layout (varint = zig-zag, see [`super::varint`]):
//!
//! | field | encoding |
//! |-------|----------|
//! | length | varint: bytes of everything below |
//! | attributes | int8 (unused, 0) |
//! | timestampDelta | varlong |
//! | offsetDelta | varint |
//! | keyLength, key | varint (-1 = null), bytes |
//! | valueLength, value | varint (-1 = null), bytes |
//! | headersCount | varint |
//! | per header: keyLength, key, valueLength, value | varint (>= 0), UTF-8; varint (-1 = null), bytes |

use bytes::Bytes;

use super::varint::{put_varint, put_varlong, read_varint, read_varlong, varint_len, varlong_len};
use super::BatchError;

/// Smallest possible encoded record: length, attributes, timestampDelta, offsetDelta,
/// keyLength, valueLength and headersCount of one byte each. Bounds record counts
/// against payload size before anything is allocated.
pub const MIN_RECORD_LEN: usize = 7;

/// A record header as decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeader {
    /// Header key (UTF-8 on the wire).
    pub key: String,
    /// Header value; `None` is a null value.
    pub value: Option<Bytes>,
}

/// A decoded record with its absolute offset and timestamp resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Offset relative to the batch's base offset.
    pub offset_delta: i32,
    /// Timestamp relative to the batch's base timestamp, as stored.
    pub timestamp_delta: i64,
    /// baseOffset + offsetDelta.
    pub offset: i64,
    /// baseTimestamp + timestampDelta, or the batch maxTimestamp for LogAppendTime batches.
    pub timestamp: i64,
    /// Key; `None` is a null key.
    pub key: Option<Bytes>,
    /// Value; `None` is a null value (a tombstone on compacted topics).
    pub value: Option<Bytes>,
    /// Headers in wire order.
    pub headers: Vec<RecordHeader>,
}

impl Record {
    /// This record as builder input, e.g. to re-encode it during compaction.
    pub fn as_new(&self) -> NewRecord<'_> {
        NewRecord {
            timestamp: self.timestamp,
            key: self.key.as_deref(),
            value: self.value.as_deref(),
            headers: &self.headers,
        }
    }
}

/// A record read in place: key, value and headers borrow the batch's payload, so reading
/// it costs no allocation and no reference count (see [`super::RecordIter::next_view`]).
#[derive(Debug, Clone, Copy)]
pub struct RecordView<'a> {
    /// baseOffset + offsetDelta.
    pub offset: i64,
    /// baseTimestamp + timestampDelta, or the batch maxTimestamp for LogAppendTime batches.
    pub timestamp: i64,
    /// Key; `None` is a null key.
    pub key: Option<&'a [u8]>,
    /// Value; `None` is a null value.
    pub value: Option<&'a [u8]>,
    raw: RawRecord<'a>,
    /// The buffer the slices point into, for [`RecordView::to_record`].
    payload: &'a Bytes,
}

impl<'a> RecordView<'a> {
    /// Headers in wire order, as (key bytes, value).
    pub fn headers(&self) -> impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)> {
        self.raw.headers()
    }

    /// The owned record; key and values share the payload buffer (no copy).
    pub fn to_record(&self) -> Record {
        let slice = |b: Option<&[u8]>| b.map(|b| self.payload.slice_ref(b));
        Record {
            offset_delta: self.raw.offset_delta,
            timestamp_delta: self.raw.timestamp_delta,
            offset: self.offset,
            timestamp: self.timestamp,
            key: slice(self.key),
            value: slice(self.value),
            headers: self
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

/// A record to append with [`super::BatchBuilder::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewRecord<'a> {
    /// Absolute timestamp in ms (CreateTime).
    pub timestamp: i64,
    /// Key; `None` writes a null key.
    pub key: Option<&'a [u8]>,
    /// Value; `None` writes a null value.
    pub value: Option<&'a [u8]>,
    /// Headers.
    pub headers: &'a [RecordHeader],
}

impl<'a> NewRecord<'a> {
    /// A record without headers.
    pub fn new(timestamp: i64, key: Option<&'a [u8]>, value: Option<&'a [u8]>) -> Self {
        NewRecord {
            timestamp,
            key,
            value,
            headers: &[],
        }
    }
}

fn nullable_len(b: Option<&[u8]>) -> Result<usize, BatchError> {
    match b {
        None => Ok(varint_len(-1)),
        Some(b) => {
            let n =
                i32::try_from(b.len()).map_err(|_| BatchError::Unencodable("field over 2 GiB"))?;
            Ok(varint_len(n) + b.len())
        }
    }
}

fn put_nullable(buf: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => put_varint(buf, -1),
        Some(b) => {
            // Lengths were checked by `body_len`, which always runs first.
            put_varint(buf, b.len() as i32);
            buf.extend_from_slice(b);
        }
    }
}

/// Size of everything after the length prefix.
fn body_len(
    r: &NewRecord<'_>,
    timestamp_delta: i64,
    offset_delta: i32,
) -> Result<usize, BatchError> {
    let count =
        i32::try_from(r.headers.len()).map_err(|_| BatchError::Unencodable("too many headers"))?;
    let mut n = 1 + varlong_len(timestamp_delta) + varint_len(offset_delta);
    n += nullable_len(r.key)? + nullable_len(r.value)? + varint_len(count);
    for h in r.headers {
        n += nullable_len(Some(h.key.as_bytes()))? + nullable_len(h.value.as_deref())?;
    }
    Ok(n)
}

/// Appends one encoded record to `buf`.
pub(crate) fn encode_record(
    buf: &mut Vec<u8>,
    r: &NewRecord<'_>,
    timestamp_delta: i64,
    offset_delta: i32,
) -> Result<(), BatchError> {
    let len = body_len(r, timestamp_delta, offset_delta)?;
    let len_i32 = i32::try_from(len).map_err(|_| BatchError::Unencodable("record over 2 GiB"))?;
    buf.reserve(varint_len(len_i32) + len);
    put_varint(buf, len_i32);
    buf.push(0);
    put_varlong(buf, timestamp_delta);
    put_varint(buf, offset_delta);
    put_nullable(buf, r.key);
    put_nullable(buf, r.value);
    put_varint(buf, r.headers.len() as i32);
    for h in r.headers {
        put_nullable(buf, Some(h.key.as_bytes()));
        put_nullable(buf, h.value.as_deref());
    }
    Ok(())
}

/// A bounds-checked reader over a record payload; errors are short reasons that the
/// caller attaches to a record index.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn varint(&mut self) -> Result<i32, &'static str> {
        let rest = self.buf.get(self.pos..).unwrap_or(&[]);
        let (v, n) = read_varint(rest).map_err(|_| "bad varint")?;
        self.pos += n;
        Ok(v)
    }

    fn varlong(&mut self) -> Result<i64, &'static str> {
        let rest = self.buf.get(self.pos..).unwrap_or(&[]);
        let (v, n) = read_varlong(rest).map_err(|_| "bad varlong")?;
        self.pos += n;
        Ok(v)
    }

    fn byte(&mut self) -> Result<u8, &'static str> {
        let b = *self.buf.get(self.pos).ok_or("record ends early")?;
        self.pos += 1;
        Ok(b)
    }

    fn bytes(&mut self, len: usize) -> Result<&'a [u8], &'static str> {
        let end = self.pos.checked_add(len).ok_or("length past end")?;
        let b = self.buf.get(self.pos..end).ok_or("length past end")?;
        self.pos = end;
        Ok(b)
    }

    fn nullable(&mut self) -> Result<Option<&'a [u8]>, &'static str> {
        match self.varint()? {
            -1 => Ok(None),
            n if n < -1 => Err("negative length"),
            n => self.bytes(n as usize).map(Some),
        }
    }

    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }
}

/// A record parsed in place; headers are validated but left as raw bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawRecord<'a> {
    pub(crate) timestamp_delta: i64,
    pub(crate) offset_delta: i32,
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) value: Option<&'a [u8]>,
    header_count: usize,
    headers: &'a [u8],
}

impl<'a> RawRecord<'a> {
    /// The record with its offset and timestamp resolved against the batch header;
    /// `payload` is the buffer the record was parsed from.
    pub(crate) fn view(self, h: &super::BatchHeader, payload: &'a Bytes) -> RecordView<'a> {
        let timestamp = match h.timestamp_type() {
            super::TimestampType::LogAppendTime => h.max_timestamp,
            super::TimestampType::CreateTime => h.base_timestamp.wrapping_add(self.timestamp_delta),
        };
        RecordView {
            offset: h.base_offset.wrapping_add(i64::from(self.offset_delta)),
            timestamp,
            key: self.key,
            value: self.value,
            raw: self,
            payload,
        }
    }

    /// Headers as (key bytes, value); they were fully checked by [`parse_record`].
    pub(crate) fn headers(&self) -> impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)> {
        let mut cur = Cursor {
            buf: self.headers,
            pos: 0,
        };
        (0..self.header_count).map_while(move |_| read_header(&mut cur).ok())
    }

    /// Whether every header key is valid UTF-8 (Kafka keys are Java strings).
    pub(crate) fn header_keys_utf8(&self) -> bool {
        self.headers().all(|(k, _)| std::str::from_utf8(k).is_ok())
    }
}

fn read_header<'a>(cur: &mut Cursor<'a>) -> Result<(&'a [u8], Option<&'a [u8]>), &'static str> {
    let key = cur.nullable()?.ok_or("null header key")?;
    let value = cur.nullable()?;
    Ok((key, value))
}

/// Parses the record starting at `*pos` in `payload` and advances `*pos` past it.
/// The record must consume exactly its declared length.
pub(crate) fn parse_record<'a>(
    payload: &'a [u8],
    pos: &mut usize,
    index: u32,
) -> Result<RawRecord<'a>, BatchError> {
    let bad = |reason| BatchError::MalformedRecord { index, reason };
    let mut outer = Cursor {
        buf: payload,
        pos: *pos,
    };
    let len = outer.varint().map_err(bad)?;
    let len = usize::try_from(len).map_err(|_| bad("negative record length"))?;
    let body = outer
        .bytes(len)
        .map_err(|_| bad("record length past end of batch"))?;
    let mut cur = Cursor { buf: body, pos: 0 };
    cur.byte().map_err(bad)?;
    let timestamp_delta = cur.varlong().map_err(bad)?;
    let offset_delta = cur.varint().map_err(bad)?;
    let key = cur.nullable().map_err(bad)?;
    let value = cur.nullable().map_err(bad)?;
    let count = cur.varint().map_err(bad)?;
    let count = usize::try_from(count).map_err(|_| bad("negative header count"))?;
    // Each header needs at least two length bytes.
    if count > cur.remaining() / 2 {
        return Err(bad("header count larger than record"));
    }
    let headers_start = cur.pos;
    for _ in 0..count {
        read_header(&mut cur).map_err(bad)?;
    }
    if cur.remaining() != 0 {
        return Err(bad("bytes left after headers"));
    }
    *pos = outer.pos;
    Ok(RawRecord {
        timestamp_delta,
        offset_delta,
        key,
        value,
        header_count: count,
        headers: body.get(headers_start..).unwrap_or(&[]),
    })
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Record bytes from Sarama's record_test.go "uncompressed record" case.
    const SARAMA_RECORD: [u8; 21] = [
        0x28, 0x00, 0x0A, 0x00, 0x08, 0x01, 0x02, 0x03, 0x04, 0x06, 0x05, 0x06, 0x07, 0x02, 0x06,
        0x08, 0x09, 0x0A, 0x04, 0x0B, 0x0C,
    ];

    #[test]
    fn sarama_record_parses_and_re_encodes() {
        let mut pos = 0;
        let r = parse_record(&SARAMA_RECORD, &mut pos, 0).unwrap();
        assert_eq!(pos, 21);
        assert_eq!(r.timestamp_delta, 5);
        assert_eq!(r.offset_delta, 0);
        assert_eq!(r.key, Some(&[1, 2, 3, 4][..]));
        assert_eq!(r.value, Some(&[5, 6, 7][..]));
        let headers: Vec<_> = r.headers().collect();
        assert_eq!(headers, vec![(&[8, 9, 10][..], Some(&[11, 12][..]))]);

        let h = [RecordHeader {
            key: "\u{8}\u{9}\u{a}".to_string(),
            value: Some(Bytes::from_static(&[11, 12])),
        }];
        let new = NewRecord {
            timestamp: 0,
            key: Some(&[1, 2, 3, 4]),
            value: Some(&[5, 6, 7]),
            headers: &h,
        };
        let mut buf = Vec::new();
        encode_record(&mut buf, &new, 5, 0).unwrap();
        assert_eq!(buf, SARAMA_RECORD);
    }

    #[test]
    fn null_and_empty_fields_differ() {
        let mut buf = Vec::new();
        encode_record(&mut buf, &NewRecord::new(0, None, Some(b"")), 0, 3).unwrap();
        assert_eq!(buf, [0x0C, 0, 0, 6, 1, 0, 0]);
        let mut pos = 0;
        let r = parse_record(&buf, &mut pos, 0).unwrap();
        assert_eq!((r.key, r.value, r.offset_delta), (None, Some(&[][..]), 3));
    }

    #[test]
    fn malformed_records_rejected() {
        let cases: [&[u8]; 8] = [
            &[],                                // nothing
            &[0x01],                            // negative length
            &[0x0E, 0, 0],                      // length past end
            &[0x06, 0, 0, 0, 0x03, 0, 0],       // key length -2
            &[0x06, 0, 0, 0, 0x01, 0x01, 0x01], // header count -1
            &[0x06, 0, 0, 0, 0x01, 0x01, 0x02], // header count 1 with no bytes
            &[0x0E, 0, 0, 0, 0x01, 0x01, 0, 0], // trailing byte inside the record
            &[
                0x18, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 0x00,
            ], // varlong too long
        ];
        for (i, c) in cases.iter().enumerate() {
            let mut pos = 0;
            assert!(
                matches!(
                    parse_record(c, &mut pos, 7),
                    Err(BatchError::MalformedRecord { index: 7, .. })
                ),
                "case {i}"
            );
        }
    }
}
