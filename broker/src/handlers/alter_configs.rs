//! AlterConfigs (33): set or reset topic-level keys. Broker settings come from the config
//! file and are read-only here.

use weir_protocol::native::v1::{
    AlterConfigOp, AlterConfigsRequest, AlterConfigsResourceResult, AlterConfigsResponse,
    ResourceType,
};
use weir_protocol::ErrorCode;

use crate::ctx::BrokerCtx;

/// Applies each resource's changes atomically (all keys or none).
pub async fn handle(ctx: &BrokerCtx, req: AlterConfigsRequest) -> AlterConfigsResponse {
    let mut responses = Vec::with_capacity(req.resources.len());
    for r in req.resources {
        let outcome = match ResourceType::try_from(r.resource_type) {
            Ok(ResourceType::Topic) => {
                let mut changes = Vec::with_capacity(r.configs.len());
                let mut bad = None;
                for c in r.configs {
                    match AlterConfigOp::try_from(c.op) {
                        Ok(AlterConfigOp::Set) => changes.push((c.name, Some(c.value))),
                        Ok(AlterConfigOp::Delete) => changes.push((c.name, None)),
                        Err(_) => {
                            bad = Some(format!("config {}: unknown operation {}", c.name, c.op))
                        }
                    }
                }
                match bad {
                    Some(msg) => Err((ErrorCode::InvalidRequest, msg)),
                    None => ctx
                        .controller
                        .alter_topic_configs(&r.resource_name, changes, req.validate_only)
                        .await
                        .map_err(|e| (e.code, e.message)),
                }
            }
            Ok(ResourceType::Broker) => Err((
                ErrorCode::InvalidRequest,
                "broker configs are static (set them in the config file)".to_string(),
            )),
            _ => Err((
                ErrorCode::InvalidRequest,
                format!("resource type {} is not supported", r.resource_type),
            )),
        };
        let (code, message) = outcome.err().unwrap_or((ErrorCode::None, String::new()));
        responses.push(AlterConfigsResourceResult {
            error_code: code.as_i32(),
            error_message: message,
            resource_type: r.resource_type,
            resource_name: r.resource_name,
        });
    }
    AlterConfigsResponse {
        responses,
        throttle_time_ms: 0,
    }
}
