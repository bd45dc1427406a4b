//! ApiVersions (18): which APIs and versions this broker speaks.

use weir_protocol::native::v1::{ApiVersionRange, ApiVersionsResponse};
use weir_protocol::native::versions::SUPPORTED;

/// The supported list; never fails.
pub fn handle() -> ApiVersionsResponse {
    ApiVersionsResponse {
        error_code: 0,
        api_keys: SUPPORTED
            .iter()
            .map(|(k, r)| ApiVersionRange {
                api_key: i32::from(k.code()),
                min_version: i32::from(r.min),
                max_version: i32::from(r.max),
            })
            .collect(),
        throttle_time_ms: 0,
    }
}
