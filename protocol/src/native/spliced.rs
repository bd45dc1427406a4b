//! A Fetch response frame whose record bytes are sent from elsewhere (a segment file,
//! by `sendfile`) instead of being encoded into the frame.
//!
//! Protobuf decoders accept a message's fields in any order, so a partition's
//! `FetchPartitionData` can be written as prost's encoding of every other field followed
//! by the `records` field's key and length, with the record bytes themselves left out of
//! the buffer. The enclosing messages (`FetchableTopicResponse.partitions`,
//! `FetchResponse.responses`, `ResponseEnvelope.fetch`) are framed the same way: prost
//! encodes their scalar fields, this module writes the nested fields' keys and lengths.
//! The result decodes to exactly the message with the records filled in (tested below
//! against prost's own encoding), so clients see no difference.

use bytes::{BufMut, Bytes, BytesMut};
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, key_len, WireType};
use prost::Message;

use super::frame::{FrameError, LENGTH_BYTES};
use super::v1::response_envelope::Body;
use super::v1::{FetchPartitionData, FetchResponse, FetchableTopicResponse, ResponseEnvelope};

/// Field numbers of the nested fields written here (`proto/weir.proto`).
const ENVELOPE_FETCH: u32 = 101;
const FETCH_RESPONSES: u32 = 2;
const TOPIC_PARTITIONS: u32 = 2;
const PARTITION_RECORDS: u32 = 6;

/// One piece of a frame, in send order.
#[derive(Debug)]
pub enum Piece<X> {
    /// Bytes encoded here.
    Inline(Bytes),
    /// Bytes the caller sends itself.
    External(X),
}

/// Encodes `envelope` (a Fetch response) as a frame in which each partition with an
/// external entry in `records` (one entry per partition, in response order) carries
/// those bytes (`len` of them) as its `records` field. Such partitions must have empty
/// inline `records`. Entries past the response's partitions are ignored.
pub fn fetch_frame<X>(
    envelope: &ResponseEnvelope,
    records: Vec<Option<X>>,
    len: impl Fn(&X) -> usize,
    max: usize,
) -> Result<Vec<Piece<X>>, FrameError> {
    let Some(Body::Fetch(fetch)) = &envelope.body else {
        let mut buf = BytesMut::new();
        super::frame::write_frame(envelope, &mut buf, max)?;
        return Ok(vec![Piece::Inline(buf.freeze())]);
    };
    let mut records = records.into_iter();
    let mut topics = Vec::with_capacity(fetch.responses.len());
    for t in &fetch.responses {
        let parts: Vec<(&FetchPartitionData, Option<X>)> = t
            .partitions
            .iter()
            .map(|p| (p, records.next().flatten()))
            .collect();
        topics.push((t, parts));
    }

    let part_len = |p: &FetchPartitionData, x: &Option<X>| {
        p.encoded_len()
            + x.as_ref()
                .map_or(0, |x| bytes_field_len(PARTITION_RECORDS, len(x)))
    };
    let topic_size = |t: &FetchableTopicResponse, parts: &[(&FetchPartitionData, Option<X>)]| {
        let head = FetchableTopicResponse {
            topic: t.topic.clone(),
            partitions: Vec::new(),
        };
        head.encoded_len()
            + parts
                .iter()
                .map(|(p, x)| bytes_field_len(TOPIC_PARTITIONS, part_len(p, x)))
                .sum::<usize>()
    };
    let fetch_head = FetchResponse {
        error_code: fetch.error_code,
        responses: Vec::new(),
        throttle_time_ms: fetch.throttle_time_ms,
    };
    let topic_lens: Vec<usize> = topics
        .iter()
        .map(|(t, parts)| topic_size(t, parts))
        .collect();
    let fetch_len = fetch_head.encoded_len()
        + topic_lens
            .iter()
            .map(|l| bytes_field_len(FETCH_RESPONSES, *l))
            .sum::<usize>();
    let envelope_head = ResponseEnvelope {
        correlation_id: envelope.correlation_id,
        error_code: envelope.error_code,
        error_message: envelope.error_message.clone(),
        body: None,
    };
    let total = envelope_head.encoded_len() + bytes_field_len(ENVELOPE_FETCH, fetch_len);
    if total > max || u32::try_from(total).is_err() {
        return Err(FrameError::TooLarge { len: total, max });
    }

    let mut pieces = Vec::new();
    let mut buf = BytesMut::with_capacity(LENGTH_BYTES + 256);
    buf.put_u32(total as u32);
    envelope_head.encode(&mut buf)?;
    encode_len_prefix(ENVELOPE_FETCH, fetch_len, &mut buf);
    fetch_head.encode(&mut buf)?;
    for ((t, parts), topic_len) in topics.into_iter().zip(topic_lens) {
        encode_len_prefix(FETCH_RESPONSES, topic_len, &mut buf);
        FetchableTopicResponse {
            topic: t.topic.clone(),
            partitions: Vec::new(),
        }
        .encode(&mut buf)?;
        for (p, x) in parts {
            encode_len_prefix(TOPIC_PARTITIONS, part_len(p, &x), &mut buf);
            p.encode(&mut buf)?;
            if let Some(x) = x {
                encode_len_prefix(PARTITION_RECORDS, len(&x), &mut buf);
                pieces.push(Piece::Inline(buf.split().freeze()));
                pieces.push(Piece::External(x));
            }
        }
    }
    if !buf.is_empty() {
        pieces.push(Piece::Inline(buf.freeze()));
    }
    Ok(pieces)
}

/// Encoded size of a length-delimited field of `len` bytes.
fn bytes_field_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

fn encode_len_prefix(tag: u32, len: usize, buf: &mut BytesMut) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(len as u64, buf);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::native::frame::split_frame;

    fn partition(index: i32, records: &[u8]) -> FetchPartitionData {
        FetchPartitionData {
            partition_index: index,
            error_code: if index == 3 { 6 } else { 0 },
            high_watermark: 1_000 + i64::from(index),
            last_stable_offset: 900,
            log_start_offset: 7,
            records: Bytes::copy_from_slice(records),
        }
    }

    fn envelope(topics: Vec<FetchableTopicResponse>) -> ResponseEnvelope {
        ResponseEnvelope {
            correlation_id: 42,
            error_code: 0,
            error_message: String::new(),
            body: Some(Body::Fetch(FetchResponse {
                error_code: 0,
                responses: topics,
                throttle_time_ms: 5,
            })),
        }
    }

    /// Encodes with some partitions' records moved out as external pieces, joins the
    /// pieces back into one frame, and decodes it.
    fn round_trip(full: &ResponseEnvelope, external: &[bool]) -> ResponseEnvelope {
        let mut stripped = full.clone();
        let mut records = Vec::new();
        let mut i = 0;
        if let Some(Body::Fetch(f)) = &mut stripped.body {
            for t in &mut f.responses {
                for p in &mut t.partitions {
                    if external.get(i).copied().unwrap_or(false) {
                        records.push(Some(std::mem::take(&mut p.records)));
                    } else {
                        records.push(None);
                    }
                    i += 1;
                }
            }
        }
        let pieces = fetch_frame(&stripped, records, Bytes::len, usize::MAX).unwrap();
        let mut frame = BytesMut::new();
        for p in pieces {
            match p {
                Piece::Inline(b) | Piece::External(b) => frame.extend_from_slice(&b),
            }
        }
        let body = split_frame(&mut frame, usize::MAX).unwrap().unwrap();
        assert!(frame.is_empty(), "the length prefix covers the whole frame");
        ResponseEnvelope::decode(body.freeze()).unwrap()
    }

    #[test]
    fn external_records_decode_as_if_encoded_inline() {
        let big = vec![9u8; 70_000]; // lengths needing 3-byte varints
        let full = envelope(vec![
            FetchableTopicResponse {
                topic: "a".into(),
                partitions: vec![partition(0, b"abc"), partition(1, &big), partition(2, b"")],
            },
            FetchableTopicResponse {
                topic: "bb".into(),
                partitions: vec![partition(3, b""), partition(4, &big[..200])],
            },
            FetchableTopicResponse {
                topic: "empty".into(),
                partitions: vec![],
            },
        ]);
        for mask in 0..32u32 {
            let external: Vec<bool> = (0..5).map(|i| mask & (1 << i) != 0).collect();
            assert_eq!(round_trip(&full, &external), full, "mask {mask:05b}");
        }
    }

    #[test]
    fn other_responses_and_limits() {
        let other = ResponseEnvelope {
            correlation_id: 1,
            error_code: 35,
            error_message: "no".into(),
            body: None,
        };
        let pieces =
            fetch_frame(&other, Vec::<Option<Bytes>>::new(), Bytes::len, usize::MAX).unwrap();
        assert_eq!(pieces.len(), 1);
        let full = envelope(vec![FetchableTopicResponse {
            topic: "a".into(),
            partitions: vec![partition(0, b"")],
        }]);
        let big = vec![Some(Bytes::from(vec![0u8; 100]))];
        let err = fetch_frame(&full, big, Bytes::len, 50).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { .. }));
    }
}
