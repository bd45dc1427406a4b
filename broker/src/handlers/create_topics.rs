//! CreateTopics (19).

use std::collections::HashMap;

use weir_protocol::native::v1::{CreatableTopicResult, CreateTopicsRequest, CreateTopicsResponse};
use weir_protocol::ErrorCode;

use crate::controller::NewTopic;
use crate::ctx::BrokerCtx;
use crate::names::is_internal_topic;

/// Creates each topic independently; a name given twice fails both entries.
pub async fn handle(ctx: &BrokerCtx, req: CreateTopicsRequest) -> CreateTopicsResponse {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for t in &req.topics {
        *counts.entry(t.name.as_str()).or_default() += 1;
    }
    let dupes: Vec<String> = counts
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(k, _)| k.to_string())
        .collect();
    let mut results = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        if is_internal_topic(&t.name) {
            results.push(CreatableTopicResult {
                name: t.name,
                error_code: ErrorCode::InvalidRequest.as_i32(),
                error_message: "internal topics are created by the broker".into(),
                ..Default::default()
            });
            continue;
        }
        if dupes.contains(&t.name) {
            results.push(CreatableTopicResult {
                name: t.name,
                error_code: ErrorCode::InvalidRequest.as_i32(),
                error_message: "topic named more than once in the request".into(),
                ..Default::default()
            });
            continue;
        }
        let new = NewTopic {
            name: t.name.clone(),
            partitions: t.num_partitions,
            replication_factor: t.replication_factor,
            configs: t.configs.into_iter().map(|c| (c.name, c.value)).collect(),
        };
        let result = match ctx.controller.create_topic(new, req.validate_only).await {
            Ok(created) => CreatableTopicResult {
                name: t.name,
                error_code: 0,
                error_message: String::new(),
                topic_id: created.id,
                num_partitions: created.partitions,
                replication_factor: created.replication_factor,
            },
            Err(e) => CreatableTopicResult {
                name: t.name,
                error_code: e.code.as_i32(),
                error_message: e.message,
                ..Default::default()
            },
        };
        results.push(result);
    }
    CreateTopicsResponse {
        topics: results,
        throttle_time_ms: 0,
    }
}
