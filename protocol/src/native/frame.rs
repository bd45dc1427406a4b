//! Frames: a 4-byte big-endian length of what follows, then one protobuf envelope.
//!
//! The length is checked against the codec's limit *before* any buffer is reserved, so a
//! peer declaring 4 GiB and sending ten bytes costs nothing. A short buffer is not an
//! error: the decoder just asks for more bytes. Any decode error is fatal for the
//! connection (the stream position is lost or the peer speaks something else), and it is
//! only that connection's.

use std::marker::PhantomData;

use bytes::{Buf, BufMut, BytesMut};
use prost::Message;
use tokio_util::codec::{Decoder, Encoder};

use super::v1::{RequestEnvelope, ResponseEnvelope};

/// Length prefix size.
pub const LENGTH_BYTES: usize = 4;

/// Most buffer reserved ahead of bytes actually received for a partial frame.
const RESERVE_CHUNK: usize = 64 * 1024;

/// Default largest frame body (Kafka's `socket.request.max.bytes`).
pub const DEFAULT_MAX_FRAME_BYTES: usize = 100 * 1024 * 1024;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The declared length exceeds the limit; nothing was allocated.
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Declared (or, when encoding, actual) length.
        len: usize,
        /// The codec's limit.
        max: usize,
    },
    /// The frame body is not a valid protobuf envelope.
    #[error("undecodable frame body: {0}")]
    Decode(#[from] prost::DecodeError),
    /// The envelope could not be encoded.
    #[error("unencodable envelope: {0}")]
    Encode(#[from] prost::EncodeError),
    /// The underlying stream failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Splits one frame body off `src`, or `None` if more bytes are needed.
pub fn split_frame(src: &mut BytesMut, max: usize) -> Result<Option<BytesMut>, FrameError> {
    let Some(prefix) = src.get(..LENGTH_BYTES) else {
        return Ok(None);
    };
    let mut len_bytes = [0u8; LENGTH_BYTES];
    len_bytes.copy_from_slice(prefix);
    let len = u32::from_be_bytes(len_bytes) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    let total = LENGTH_BYTES + len;
    if src.len() < total {
        // Grow by at most a chunk: the declared length is only a claim, so a peer that
        // announces a maximal frame and then stalls holds memory for what it sent, not
        // for what it promised (many such connections would otherwise pin max each).
        src.reserve((total - src.len()).min(RESERVE_CHUNK));
        return Ok(None);
    }
    src.advance(LENGTH_BYTES);
    let frame = src.split_to(len);
    // A large frame keeps its allocation to itself (and to the slices decoded from it),
    // so a produce handler can take its records over without copying them: what follows
    // it in the read buffer, usually nothing or the start of the next frame, moves to a
    // new buffer when that is cheap.
    if len >= OWN_ALLOCATION_MIN && src.len() <= len / 8 {
        *src = BytesMut::from(&src[..]);
    }
    Ok(Some(frame))
}

/// Frames at least this large get an allocation of their own (see `split_frame`).
const OWN_ALLOCATION_MIN: usize = 64 * 1024;

/// Appends `msg` as one frame to `dst`.
pub fn write_frame<M: Message>(msg: &M, dst: &mut BytesMut, max: usize) -> Result<(), FrameError> {
    let len = msg.encoded_len();
    if len > max || u32::try_from(len).is_err() {
        return Err(FrameError::TooLarge { len, max });
    }
    dst.reserve(LENGTH_BYTES + len);
    dst.put_u32(len as u32);
    msg.encode(dst)?;
    Ok(())
}

/// A length-prefixed protobuf codec that encodes `E` and decodes `D`.
#[derive(Debug)]
pub struct FrameCodec<E, D> {
    max_frame_bytes: usize,
    _types: PhantomData<fn(E) -> D>,
}

impl<E, D> FrameCodec<E, D> {
    /// A codec accepting frames up to `max_frame_bytes` (body length, prefix excluded).
    pub fn new(max_frame_bytes: usize) -> Self {
        FrameCodec {
            max_frame_bytes,
            _types: PhantomData,
        }
    }

    /// The frame limit.
    pub fn max_frame_bytes(&self) -> usize {
        self.max_frame_bytes
    }
}

impl<E, D> Default for FrameCodec<E, D> {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME_BYTES)
    }
}

impl<E, D> Clone for FrameCodec<E, D> {
    fn clone(&self) -> Self {
        Self::new(self.max_frame_bytes)
    }
}

impl<E: Message, D> Encoder<E> for FrameCodec<E, D> {
    type Error = FrameError;

    fn encode(&mut self, item: E, dst: &mut BytesMut) -> Result<(), FrameError> {
        write_frame(&item, dst, self.max_frame_bytes)
    }
}

impl<E, D: Message + Default> Decoder for FrameCodec<E, D> {
    type Item = D;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<D>, FrameError> {
        match split_frame(src, self.max_frame_bytes)? {
            // Decoding from `Bytes` lets prost slice `bytes` fields instead of copying them.
            Some(body) => Ok(Some(D::decode(body.freeze())?)),
            None => Ok(None),
        }
    }
}

/// Client side: writes requests, reads responses.
pub type ClientCodec = FrameCodec<RequestEnvelope, ResponseEnvelope>;
/// Broker side: reads requests, writes responses.
pub type ServerCodec = FrameCodec<ResponseEnvelope, RequestEnvelope>;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::native::v1::{self, request_envelope, response_envelope};

    fn produce_envelope() -> RequestEnvelope {
        RequestEnvelope {
            correlation_id: 7,
            client_id: "t".into(),
            api_version: 0,
            body: Some(request_envelope::Body::Produce(v1::ProduceRequest {
                acks: -1,
                timeout_ms: 1000,
                topic_data: vec![v1::TopicProduceData {
                    name: "a".into(),
                    partition_data: vec![v1::PartitionProduceData {
                        index: 0,
                        records: bytes::Bytes::from_static(b"0123456789"),
                    }],
                }],
                ..Default::default()
            })),
        }
    }

    #[test]
    fn request_round_trips_through_client_and_server_codecs() {
        let mut client = ClientCodec::default();
        let mut server = ServerCodec::default();
        let mut buf = BytesMut::new();
        client.encode(produce_envelope(), &mut buf).unwrap();
        // Byte by byte: every prefix is "need more", the last byte completes it.
        let all = buf.split();
        let mut partial = BytesMut::new();
        let mut got = None;
        for (i, b) in all.iter().enumerate() {
            partial.put_u8(*b);
            let r = server.decode(&mut partial).unwrap();
            if i + 1 < all.len() {
                assert!(r.is_none());
            } else {
                got = r;
            }
        }
        assert_eq!(got.unwrap(), produce_envelope());
        assert!(partial.is_empty());
    }

    #[test]
    fn response_round_trips() {
        let resp = ResponseEnvelope {
            correlation_id: 3,
            error_code: 0,
            error_message: String::new(),
            body: Some(response_envelope::Body::ApiVersions(
                v1::ApiVersionsResponse {
                    error_code: 0,
                    api_keys: vec![v1::ApiVersionRange {
                        api_key: 18,
                        min_version: 0,
                        max_version: 0,
                    }],
                    throttle_time_ms: 0,
                },
            )),
        };
        let mut buf = BytesMut::new();
        ServerCodec::default()
            .encode(resp.clone(), &mut buf)
            .unwrap();
        assert_eq!(ClientCodec::default().decode(&mut buf).unwrap(), Some(resp));
    }

    /// A large produce's records can be taken over without a copy: once the request is
    /// decoded, nothing else refers to their buffer, even with the start of the next
    /// frame already read behind it.
    #[test]
    fn a_large_frame_owns_its_buffer() {
        let records = bytes::Bytes::from(vec![7u8; 200 * 1024]);
        let mut env = produce_envelope();
        if let Some(request_envelope::Body::Produce(p)) = &mut env.body {
            p.topic_data[0].partition_data[0].records = records.clone();
        }
        let mut buf = BytesMut::new();
        ClientCodec::default().encode(env, &mut buf).unwrap();
        buf.put_slice(b"\0\0\0\x10next"); // part of the next frame
        let got = ServerCodec::default().decode(&mut buf).unwrap().unwrap();
        assert_eq!(&buf[..], b"\0\0\0\x10next");
        let Some(request_envelope::Body::Produce(mut p)) = got.body else {
            panic!("a produce request");
        };
        let taken = std::mem::take(&mut p.topic_data[0].partition_data[0].records);
        drop(p);
        let owned = taken
            .try_into_mut()
            .expect("the records' buffer is not shared");
        assert_eq!(&owned[..], &records[..]);
    }

    #[test]
    fn oversized_length_is_rejected_before_allocating() {
        let mut server = ServerCodec::new(1024);
        let mut buf = BytesMut::from(&u32::MAX.to_be_bytes()[..]);
        buf.put_slice(b"tiny");
        let cap_before = buf.capacity();
        match server.decode(&mut buf) {
            Err(FrameError::TooLarge { len, max }) => {
                assert_eq!(len, u32::MAX as usize);
                assert_eq!(max, 1024);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(buf.capacity(), cap_before);
    }

    #[test]
    fn a_large_declared_length_reserves_only_a_chunk_until_bytes_arrive() {
        let max = 64 << 20;
        let mut server = ServerCodec::new(max);
        let mut buf = BytesMut::new();
        buf.put_u32(max as u32);
        buf.put_slice(b"stall");
        assert!(server.decode(&mut buf).unwrap().is_none());
        assert!(
            buf.capacity() <= 2 * RESERVE_CHUNK,
            "reserved {} bytes for 9 received",
            buf.capacity()
        );
    }

    #[test]
    fn garbage_body_is_a_decode_error() {
        let mut buf = BytesMut::new();
        buf.put_u32(3);
        buf.put_slice(&[0xff, 0xff, 0xff]);
        assert!(matches!(
            ServerCodec::default().decode(&mut buf),
            Err(FrameError::Decode(_))
        ));
    }

    #[test]
    fn empty_frame_is_an_empty_envelope() {
        let mut buf = BytesMut::new();
        buf.put_u32(0);
        let env = ServerCodec::default().decode(&mut buf).unwrap().unwrap();
        assert!(env.body.is_none());
    }

    #[test]
    fn encoding_over_the_limit_fails() {
        let mut buf = BytesMut::new();
        let r = ClientCodec::new(4).encode(produce_envelope(), &mut buf);
        assert!(matches!(r, Err(FrameError::TooLarge { .. })));
        assert!(buf.is_empty());
    }
}
