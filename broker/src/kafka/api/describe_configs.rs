//! DescribeConfigs (32), v1-4: every key with its value and source (admin
//! read-modify-write needs the full list).

use kafka_protocol::messages::describe_configs_request::DescribeConfigsRequest;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResponse, DescribeConfigsResult,
};
use weir_protocol::native::v1 as n;

use super::{code, kstr, text};
use crate::kafka::error::KafkaError;
use crate::kafka::header::Header;
use crate::kafka::native::native;
use crate::kafka::KafkaCtx;

/// Kafka's config type STRING (v3+): Weir does not type its keys on the wire.
const CONFIG_TYPE_STRING: i8 = 2;

/// Describes the resources.
pub async fn handle(
    k: &KafkaCtx,
    h: &Header,
    req: DescribeConfigsRequest,
) -> Result<DescribeConfigsResponse, KafkaError> {
    let native_req = n::DescribeConfigsRequest {
        resources: req
            .resources
            .iter()
            .map(|r| n::DescribeConfigsResource {
                resource_type: i32::from(r.resource_type),
                resource_name: text(&r.resource_name),
                configuration_keys: r.configuration_keys.iter().flatten().map(text).collect(),
            })
            .collect(),
    };
    let r = native!(&k.broker, &h.client_id, DescribeConfigs, native_req);
    Ok(response(h.version, r))
}

/// The Kafka answer for a native one.
pub fn response(version: i16, r: n::DescribeConfigsResponse) -> DescribeConfigsResponse {
    let mut out = DescribeConfigsResponse::default();
    out.results = r
        .results
        .into_iter()
        .map(|res| {
            let mut o = DescribeConfigsResult::default();
            o.error_code = code(res.error_code);
            if !res.error_message.is_empty() {
                o.error_message = Some(kstr(res.error_message));
            }
            o.resource_type = i8::try_from(res.resource_type).unwrap_or(0);
            o.resource_name = kstr(res.resource_name);
            o.configs = res
                .configs
                .into_iter()
                .map(|c| {
                    let mut e = DescribeConfigsResourceResult::default();
                    e.name = kstr(c.name);
                    e.value = c.value.map(kstr);
                    e.read_only = c.read_only;
                    e.config_source = i8::try_from(c.config_source).unwrap_or(-1);
                    e.is_sensitive = c.is_sensitive;
                    if version >= 3 {
                        e.config_type = CONFIG_TYPE_STRING;
                    }
                    e
                })
                .collect();
            o
        })
        .collect();
    out
}
