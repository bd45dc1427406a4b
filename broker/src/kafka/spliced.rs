//! A Kafka Fetch response frame whose record bytes are sent from segment files
//! (`sendfile`) instead of being encoded into it: the zero-copy path of
//! `handlers/fetch.rs` for Kafka clients.
//!
//! Kafka's encoding is positional, so the frame is assembled level by level: each
//! partition is `kafka-protocol`'s encoding of its `PartitionData` with empty records,
//! whose empty-records tail (a 4-byte 0, or in flexible versions the compact length 1 and
//! no tagged fields) is replaced by the real length, the file's bytes and, in flexible
//! versions, the empty tag section. Topics and the top level are written the same way
//! around their arrays. The result is byte-for-byte what `kafka-protocol` encodes with
//! the records inline (tested for every version this broker speaks).

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::{FetchResponse, FetchableTopicResponse};
use kafka_protocol::messages::ResponseHeader;
use kafka_protocol::protocol::{Encodable, HeaderVersion};
use weir_protocol::native::spliced::Piece;

/// First version with compact (flexible) encodings.
const FLEXIBLE: i16 = 12;

/// Why a frame could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum SplicedError {
    /// `kafka-protocol` refused a part.
    #[error("encoding a fetch response part: {0}")]
    Encode(String),
    /// A part did not end the way this module expects (a library change).
    #[error("unexpected encoding of an empty {0} in fetch response v{1}")]
    Layout(&'static str, i16),
    /// Larger than a frame can be.
    #[error("fetch response of {0} bytes does not fit a frame")]
    TooLarge(usize),
}

/// The frame (4-byte length included) for `resp` at `version`, answering request
/// `correlation_id`, where `external[i]` (partitions in response order) replaces the
/// empty `records` of partition `i` with `len(x)` bytes the caller sends itself.
pub fn fetch_frame<X>(
    correlation_id: i32,
    version: i16,
    resp: &FetchResponse,
    external: Vec<Option<X>>,
    len: impl Fn(&X) -> usize,
) -> Result<Vec<Piece<X>>, SplicedError> {
    let flexible = version >= FLEXIBLE;
    let mut pieces = Vec::new();
    let mut buf = BytesMut::with_capacity(512);
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation_id;
    header
        .encode(&mut buf, FetchResponse::header_version(version))
        .map_err(enc)?;
    buf.put_i32(resp.throttle_time_ms);
    if version >= 7 {
        buf.put_i16(resp.error_code);
        buf.put_i32(resp.session_id);
    }
    put_count(&mut buf, resp.responses.len(), flexible);
    let mut external = external.into_iter();
    let mut total = 0usize;
    for t in &resp.responses {
        let mut head = FetchableTopicResponse::default();
        head.topic = t.topic.clone();
        let mut enc_topic = BytesMut::new();
        head.encode(&mut enc_topic, version).map_err(enc)?;
        // Empty partitions array (+ no tagged fields when flexible).
        let tail: &[u8] = if flexible { &[1, 0] } else { &[0, 0, 0, 0] };
        strip(&mut enc_topic, tail, "topic", version)?;
        buf.extend_from_slice(&enc_topic);
        put_count(&mut buf, t.partitions.len(), flexible);
        for p in &t.partitions {
            let x = external.next().flatten();
            let Some(x) = x else {
                p.encode(&mut buf, version).map_err(enc)?;
                continue;
            };
            let mut empty = p.clone();
            empty.records = Some(Bytes::new());
            let mut enc_part = BytesMut::new();
            empty.encode(&mut enc_part, version).map_err(enc)?;
            // Empty records (+ no tagged fields when flexible).
            strip(&mut enc_part, tail, "partition", version)?;
            buf.extend_from_slice(&enc_part);
            let n = len(&x);
            if flexible {
                put_uvarint(&mut buf, n as u64 + 1);
            } else {
                buf.put_i32(i32::try_from(n).map_err(|_| SplicedError::TooLarge(n))?);
            }
            total += buf.len();
            pieces.push(Piece::Inline(buf.split().freeze()));
            total += n;
            pieces.push(Piece::External(x));
            if flexible {
                buf.put_u8(0);
            }
        }
        if flexible {
            buf.put_u8(0);
        }
    }
    if flexible {
        buf.put_u8(0);
    }
    total += buf.len();
    if !buf.is_empty() {
        pieces.push(Piece::Inline(buf.freeze()));
    }
    // The length goes first, as a piece of its own: it is only known now.
    let body = u32::try_from(total).map_err(|_| SplicedError::TooLarge(total))?;
    pieces.insert(
        0,
        Piece::Inline(Bytes::copy_from_slice(&body.to_be_bytes())),
    );
    Ok(pieces)
}

fn enc(e: impl std::fmt::Display) -> SplicedError {
    SplicedError::Encode(e.to_string())
}

fn strip(
    buf: &mut BytesMut,
    tail: &[u8],
    what: &'static str,
    version: i16,
) -> Result<(), SplicedError> {
    if !buf.ends_with(tail) {
        return Err(SplicedError::Layout(what, version));
    }
    buf.truncate(buf.len() - tail.len());
    Ok(())
}

fn put_count(buf: &mut BytesMut, n: usize, flexible: bool) {
    if flexible {
        put_uvarint(buf, n as u64 + 1);
    } else {
        buf.put_i32(n as i32);
    }
}

fn put_uvarint(buf: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_response::{AbortedTransaction, PartitionData};
    use kafka_protocol::messages::{BrokerId, ProducerId, TopicName};
    use kafka_protocol::protocol::StrBytes;

    fn partition(index: i32, records: Bytes) -> PartitionData {
        let mut p = PartitionData::default();
        p.partition_index = index;
        p.error_code = if index == 2 { 1 } else { 0 };
        p.high_watermark = 1_000 + i64::from(index);
        p.last_stable_offset = 990;
        p.log_start_offset = 3;
        p.preferred_read_replica = BrokerId(-1);
        let mut a = AbortedTransaction::default();
        a.producer_id = ProducerId(7);
        a.first_offset = 5;
        p.aborted_transactions = Some(if index == 1 { vec![a] } else { Vec::new() });
        p.records = Some(records);
        p
    }

    fn response(big: &Bytes) -> FetchResponse {
        let topic = |name: &str, parts: Vec<PartitionData>| {
            let mut t = FetchableTopicResponse::default();
            t.topic = TopicName(StrBytes::from_string(name.into()));
            t.partitions = parts;
            t
        };
        let mut r = FetchResponse::default();
        r.throttle_time_ms = 4;
        r.responses = vec![
            topic(
                "alpha",
                vec![
                    partition(0, big.clone()),
                    partition(1, Bytes::from_static(b"small")),
                    partition(2, Bytes::new()),
                ],
            ),
            topic("b", vec![partition(3, big.slice(..300))]),
            topic("empty", vec![]),
        ];
        r
    }

    /// `kafka-protocol`'s own frame: length, header, body.
    fn whole(correlation_id: i32, version: i16, r: &FetchResponse) -> Vec<u8> {
        let mut header = ResponseHeader::default();
        header.correlation_id = correlation_id;
        let mut body = BytesMut::new();
        header
            .encode(&mut body, FetchResponse::header_version(version))
            .unwrap();
        r.encode(&mut body, version).unwrap();
        let mut out = (body.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn spliced_frames_equal_the_library_encoding_in_every_version() {
        let big = Bytes::from((0..200_000u32).map(|i| i as u8).collect::<Vec<u8>>());
        let full = response(&big);
        for version in 4..=12i16 {
            let want = whole(77, version, &full);
            for mask in 0..16u32 {
                let mut stripped = full.clone();
                let mut external = Vec::new();
                let mut i = 0;
                for t in &mut stripped.responses {
                    for p in &mut t.partitions {
                        if mask & (1 << i) != 0 {
                            external.push(p.records.take());
                            p.records = Some(Bytes::new());
                        } else {
                            external.push(None);
                        }
                        i += 1;
                    }
                }
                let pieces = fetch_frame(77, version, &stripped, external, Bytes::len).unwrap();
                let mut got = Vec::new();
                for piece in pieces {
                    match piece {
                        Piece::Inline(b) | Piece::External(b) => got.extend_from_slice(&b),
                    }
                }
                assert!(got == want, "v{version} mask {mask:04b}");
            }
        }
    }
}
