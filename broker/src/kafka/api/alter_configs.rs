//! AlterConfigs (33), v0-2: Kafka's legacy form replaces a resource's whole set of
//! overrides, so keys that are overridden now and not named go back to their default.
//! Weir's native AlterConfigs is incremental: the current overrides are read first.

use kafka_protocol::messages::alter_configs_request::AlterConfigsRequest;
use kafka_protocol::messages::alter_configs_response::{
    AlterConfigsResourceResponse, AlterConfigsResponse,
};
use weir_protocol::native::v1 as n;

use super::{code, kstr, text};
use crate::kafka::error::KafkaError;
use crate::kafka::header::Header;
use crate::kafka::native::native;
use crate::kafka::KafkaCtx;

/// Replaces the overrides of each resource.
pub async fn handle(
    k: &KafkaCtx,
    h: &Header,
    req: AlterConfigsRequest,
) -> Result<AlterConfigsResponse, KafkaError> {
    let describe = n::DescribeConfigsRequest {
        resources: req
            .resources
            .iter()
            .map(|r| n::DescribeConfigsResource {
                resource_type: i32::from(r.resource_type),
                resource_name: text(&r.resource_name),
                configuration_keys: Vec::new(),
            })
            .collect(),
    };
    let current = native!(&k.broker, &h.client_id, DescribeConfigs, describe);
    let resources = req
        .resources
        .iter()
        .zip(
            current
                .results
                .iter()
                .map(Some)
                .chain(std::iter::repeat(None)),
        )
        .map(|(r, now)| {
            let named: Vec<String> = r.configs.iter().map(|c| text(&c.name)).collect();
            let mut configs: Vec<n::AlterableConfig> = r
                .configs
                .iter()
                .map(|c| match &c.value {
                    Some(v) => n::AlterableConfig {
                        name: text(&c.name),
                        op: n::AlterConfigOp::Set as i32,
                        value: text(v),
                    },
                    None => n::AlterableConfig {
                        name: text(&c.name),
                        op: n::AlterConfigOp::Delete as i32,
                        value: String::new(),
                    },
                })
                .collect();
            let dynamic = n::ConfigSource::DynamicTopicConfig as i32;
            for c in now.map(|n| n.configs.as_slice()).unwrap_or_default() {
                if c.config_source == dynamic && !named.contains(&c.name) {
                    configs.push(n::AlterableConfig {
                        name: c.name.clone(),
                        op: n::AlterConfigOp::Delete as i32,
                        value: String::new(),
                    });
                }
            }
            n::AlterConfigsResource {
                resource_type: i32::from(r.resource_type),
                resource_name: text(&r.resource_name),
                configs,
            }
        })
        .collect();
    let native_req = n::AlterConfigsRequest {
        resources,
        validate_only: req.validate_only,
    };
    let r = native!(&k.broker, &h.client_id, AlterConfigs, native_req);
    let mut out = AlterConfigsResponse::default();
    out.responses = r.responses.into_iter().map(result).collect();
    Ok(out)
}

/// One resource's result.
pub fn result(r: n::AlterConfigsResourceResult) -> AlterConfigsResourceResponse {
    let mut o = AlterConfigsResourceResponse::default();
    o.error_code = code(r.error_code);
    if !r.error_message.is_empty() {
        o.error_message = Some(kstr(r.error_message));
    }
    o.resource_type = i8::try_from(r.resource_type).unwrap_or(0);
    o.resource_name = kstr(r.resource_name);
    o
}
