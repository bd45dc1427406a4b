//! ApiVersions (18). Answered at any version: one this listener does not know gets a v0
//! body with UNSUPPORTED_VERSION and the ApiVersions range, so the client retries with a
//! version both sides share (kafka-wire-compat.md §2.2, P2, P3). The body is not parsed.

use bytes::Bytes;
use kafka_protocol::messages::api_versions_response::{ApiVersion, ApiVersionsResponse};
use kafka_protocol::messages::ApiKey;
use weir_protocol::ErrorCode;

use crate::kafka::codec::{encode, encode_at};
use crate::kafka::error::KafkaError;
use crate::kafka::header::Header;
use crate::kafka::versions::{advertised, ADVERTISED};

/// The encoded answer.
pub fn handle(h: &Header, _body: Bytes) -> Result<Bytes, KafkaError> {
    match advertised(ApiKey::ApiVersions) {
        Some(r) if r.contains(h.version) => encode(h, &supported()),
        r => {
            let mut resp = ApiVersionsResponse::default();
            resp.error_code = super::code(ErrorCode::UnsupportedVersion.as_i32());
            if let Some(r) = r {
                resp.api_keys = vec![entry(ApiKey::ApiVersions, r.min, r.max)];
            }
            encode_at(h, 0, &resp)
        }
    }
}

/// The full list.
pub fn supported() -> ApiVersionsResponse {
    let mut resp = ApiVersionsResponse::default();
    resp.api_keys = ADVERTISED
        .iter()
        .map(|(k, r)| entry(*k, r.min, r.max))
        .collect();
    resp
}

fn entry(key: ApiKey, min: i16, max: i16) -> ApiVersion {
    let mut v = ApiVersion::default();
    v.api_key = key as i16;
    v.min_version = min;
    v.max_version = max;
    v
}
