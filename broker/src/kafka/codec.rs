//! Body decoding and response encoding around the `kafka-protocol` message types. Frames
//! (the 4-byte length) are `tokio_util`'s `LengthDelimitedCodec`; this file only deals with
//! what is inside a frame.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::ResponseHeader;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};

use super::error::KafkaError;
use super::header::Header;

/// Decodes a request body at the header's version.
pub fn decode<R: Decodable>(h: &Header, mut body: Bytes) -> Result<R, KafkaError> {
    R::decode(&mut body, h.version).map_err(|e| KafkaError::Decode {
        key: h.key,
        version: h.version,
        reason: e.to_string(),
    })
}

/// Encodes response header + body at the request's version (the frame length is added by
/// the codec).
pub fn encode<R: Encodable + HeaderVersion>(h: &Header, resp: &R) -> Result<Bytes, KafkaError> {
    encode_at(h, h.version, resp)
}

/// Like [`encode`] at an explicit body version (ApiVersions errors are always v0).
pub fn encode_at<R: Encodable + HeaderVersion>(
    h: &Header,
    version: i16,
    resp: &R,
) -> Result<Bytes, KafkaError> {
    let err = |e: &dyn std::fmt::Display| KafkaError::Encode {
        key: h.key,
        version,
        reason: e.to_string(),
    };
    let header_version = R::header_version(version);
    let mut header = ResponseHeader::default();
    header.correlation_id = h.correlation_id;
    let size = header
        .compute_size(header_version)
        .and_then(|a| resp.compute_size(version).map(|b| a + b))
        .map_err(|e| err(&e))?;
    let mut out = BytesMut::with_capacity(size);
    header
        .encode(&mut out, header_version)
        .map_err(|e| err(&e))?;
    resp.encode(&mut out, version).map_err(|e| err(&e))?;
    Ok(out.freeze())
}
