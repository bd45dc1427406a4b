//! The Kafka request header, decoded from the front of a frame. Pure over bytes; fuzzed by
//! `protocol/fuzz` target `kafka_header_decode`, whose corpus `tests/kafka_header_corpus.rs`
//! replays.
//!
//! The header version follows from api_key and api_version (v2 with a tagged section when
//! the API version is flexible, else v1), so both are peeked first; client_id keeps its
//! int16 length in every version (kafka-wire-compat.md §1.2).

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::Decodable;

/// A decoded request header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The API.
    pub key: ApiKey,
    /// The body's version.
    pub version: i16,
    /// Echoed in the response.
    pub correlation_id: i32,
    /// The client's name ("" when null).
    pub client_id: String,
}

/// Why a header cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Fewer than the 8 fixed bytes (api_key, api_version, correlation_id).
    #[error("frame of {0} bytes is shorter than a request header")]
    Truncated(usize),
    /// An api_key Kafka does not define.
    #[error("unknown api key {key} (correlation id {correlation_id})")]
    UnknownApiKey {
        /// The key.
        key: i16,
        /// The request's correlation id.
        correlation_id: i32,
    },
    /// client_id or the tagged section is malformed.
    #[error("malformed {key:?} v{version} header: {reason}")]
    Malformed {
        /// The API.
        key: ApiKey,
        /// The version.
        version: i16,
        /// What the decoder said.
        reason: String,
    },
}

/// Splits the header off `frame`, leaving the body in it.
pub fn decode(frame: &mut Bytes) -> Result<Header, HeaderError> {
    let mut fixed = frame.as_ref();
    if fixed.len() < 8 {
        return Err(HeaderError::Truncated(fixed.len()));
    }
    let raw_key = fixed.get_i16();
    let version = fixed.get_i16();
    let correlation_id = fixed.get_i32();
    let key = ApiKey::try_from(raw_key).map_err(|_| HeaderError::UnknownApiKey {
        key: raw_key,
        correlation_id,
    })?;
    let malformed = |reason: String| HeaderError::Malformed {
        key,
        version,
        reason,
    };
    // An ApiVersions request of a version this build has never heard of is still answered
    // (with v0 UNSUPPORTED_VERSION); its body is never parsed, so no header tail matters.
    let known = key.valid_versions();
    let header_version =
        if key == ApiKey::ApiVersions && !(known.min..=known.max).contains(&version) {
            1
        } else {
            key.request_header_version(version)
        };
    let h = RequestHeader::decode(frame, header_version).map_err(|e| malformed(e.to_string()))?;
    Ok(Header {
        key,
        version,
        correlation_id,
        client_id: h.client_id.map(|c| c.to_string()).unwrap_or_default(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use bytes::BufMut;

    fn frame(key: i16, version: i16, client: Option<&str>, flexible: bool) -> Bytes {
        let mut b = bytes::BytesMut::new();
        b.put_i16(key);
        b.put_i16(version);
        b.put_i32(7);
        match client {
            Some(c) => {
                b.put_i16(i16::try_from(c.len()).unwrap());
                b.put_slice(c.as_bytes());
            }
            None => b.put_i16(-1),
        }
        if flexible {
            b.put_u8(0);
        }
        b.put_slice(b"BODY");
        b.freeze()
    }

    #[test]
    fn v1_and_v2_headers_leave_the_body() {
        let mut f = frame(3, 4, Some("rdkafka"), false);
        let h = decode(&mut f).unwrap();
        assert_eq!(h.key, ApiKey::Metadata);
        assert_eq!((h.version, h.correlation_id), (4, 7));
        assert_eq!(h.client_id, "rdkafka");
        assert_eq!(&f[..], b"BODY");

        let mut f = frame(18, 3, None, true);
        let h = decode(&mut f).unwrap();
        assert_eq!(h.client_id, "");
        assert_eq!(&f[..], b"BODY");
    }

    #[test]
    fn unknown_version_of_api_versions_is_readable() {
        let mut f = frame(18, 77, Some("x"), false);
        let h = decode(&mut f).unwrap();
        assert_eq!((h.key, h.version), (ApiKey::ApiVersions, 77));
    }

    #[test]
    fn bad_headers_are_errors() {
        assert_eq!(
            decode(&mut Bytes::from_static(&[0, 3, 0])),
            Err(HeaderError::Truncated(3))
        );
        let mut f = frame(999, 0, Some("x"), false);
        assert!(matches!(
            decode(&mut f),
            Err(HeaderError::UnknownApiKey {
                key: 999,
                correlation_id: 7
            })
        ));
        // client_id length beyond the frame.
        let mut f = Bytes::from_static(&[0, 3, 0, 4, 0, 0, 0, 1, 0x7f, 0x00, b'a']);
        assert!(matches!(decode(&mut f), Err(HeaderError::Malformed { .. })));
    }

    /// Every prefix of a valid header fails cleanly or succeeds; none panics.
    #[test]
    fn every_cut_is_safe() {
        let full = frame(1, 12, Some("client"), true);
        for cut in 0..full.len() {
            let mut f = full.slice(..cut);
            let _ = decode(&mut f);
        }
    }
}
