//! DescribeConfigs (32): every topic-level key with its value and where it comes from;
//! for the broker resource, the broker-wide defaults.

use weir_protocol::native::v1::{
    ConfigSource, DescribeConfigsEntry, DescribeConfigsRequest, DescribeConfigsResource,
    DescribeConfigsResponse, DescribeConfigsResult, ResourceType,
};
use weir_protocol::ErrorCode;

use crate::ctx::BrokerCtx;
use crate::topic_config::with_overrides;
use crate::topic_config::{get, TopicConfig, TOPIC_KEYS};

/// Describes each resource.
pub fn handle(ctx: &BrokerCtx, req: DescribeConfigsRequest) -> DescribeConfigsResponse {
    DescribeConfigsResponse {
        results: req
            .resources
            .into_iter()
            .map(|r| describe(ctx, r))
            .collect(),
        throttle_time_ms: 0,
    }
}

fn wanted(keys: &[String]) -> Vec<&str> {
    if keys.is_empty() {
        TOPIC_KEYS.to_vec()
    } else {
        // Unknown keys are left out, as Kafka does.
        TOPIC_KEYS
            .iter()
            .copied()
            .filter(|k| keys.iter().any(|w| w == k))
            .collect()
    }
}

fn describe(ctx: &BrokerCtx, r: DescribeConfigsResource) -> DescribeConfigsResult {
    let mut result = DescribeConfigsResult {
        error_code: 0,
        error_message: String::new(),
        resource_type: r.resource_type,
        resource_name: r.resource_name.clone(),
        configs: Vec::new(),
    };
    let fail = |mut result: DescribeConfigsResult, code: ErrorCode, msg: String| {
        result.error_code = code.as_i32();
        result.error_message = msg;
        result
    };
    match ResourceType::try_from(r.resource_type) {
        Ok(ResourceType::Topic) => {
            // From the image: this broker may hold no replica of the topic.
            let image = ctx.controller.image();
            let Some(topic) = image.topics.get(&r.resource_name) else {
                return fail(
                    result,
                    ErrorCode::UnknownTopicOrPartition,
                    format!("topic {} does not exist", r.resource_name),
                );
            };
            let config = match with_overrides(ctx.controller.defaults(), &topic.configs) {
                Ok(c) => c,
                Err(e) => return fail(result, ErrorCode::InvalidConfig, e.to_string()),
            };
            result.configs = entries(&config, &r.configuration_keys, |k| {
                if topic.configs.contains_key(k) {
                    (ConfigSource::DynamicTopicConfig, false)
                } else {
                    (ConfigSource::StaticBrokerConfig, true)
                }
            });
            result
        }
        Ok(ResourceType::Broker) => {
            let name_ok = r.resource_name.is_empty() || r.resource_name == ctx.node_id.to_string();
            if !name_ok {
                return fail(
                    result,
                    ErrorCode::InvalidRequest,
                    format!("this is broker {}, not {}", ctx.node_id, r.resource_name),
                );
            }
            let mut configs = entries(ctx.controller.defaults(), &r.configuration_keys, |_| {
                (ConfigSource::StaticBrokerConfig, false)
            });
            for c in &mut configs {
                c.read_only = true;
            }
            result.configs = configs;
            result
        }
        _ => fail(
            result,
            ErrorCode::InvalidRequest,
            format!("resource type {} is not supported", r.resource_type),
        ),
    }
}

fn entries(
    cfg: &TopicConfig,
    keys: &[String],
    source: impl Fn(&str) -> (ConfigSource, bool),
) -> Vec<DescribeConfigsEntry> {
    wanted(keys)
        .into_iter()
        .map(|k| {
            let (src, is_default) = source(k);
            DescribeConfigsEntry {
                name: k.to_string(),
                value: get(cfg, k),
                read_only: false,
                config_source: src as i32,
                is_sensitive: false,
                is_default,
            }
        })
        .collect()
}
