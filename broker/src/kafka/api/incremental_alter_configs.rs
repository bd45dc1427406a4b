//! IncrementalAlterConfigs (44), v0-1: SET and DELETE map onto the native operations;
//! APPEND and SUBTRACT (list-valued keys) are refused with INVALID_REQUEST.

use kafka_protocol::messages::incremental_alter_configs_request::IncrementalAlterConfigsRequest;
use kafka_protocol::messages::incremental_alter_configs_response::{
    AlterConfigsResourceResponse, IncrementalAlterConfigsResponse,
};
use weir_protocol::native::v1 as n;
use weir_protocol::ErrorCode;

use super::{code, kstr, text};
use crate::kafka::error::KafkaError;
use crate::kafka::header::Header;
use crate::kafka::native::native;
use crate::kafka::KafkaCtx;

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;

/// Applies the changes.
pub async fn handle(
    k: &KafkaCtx,
    h: &Header,
    req: IncrementalAlterConfigsRequest,
) -> Result<IncrementalAlterConfigsResponse, KafkaError> {
    let mut refused = Vec::new();
    let mut resources = Vec::new();
    for r in &req.resources {
        let mut configs = Vec::new();
        let mut bad = None;
        for c in &r.configs {
            let op = match c.config_operation {
                OP_SET => n::AlterConfigOp::Set,
                OP_DELETE => n::AlterConfigOp::Delete,
                other => {
                    bad = Some(format!("config operation {other} is not supported"));
                    break;
                }
            };
            configs.push(n::AlterableConfig {
                name: text(&c.name),
                op: op as i32,
                value: c.value.as_ref().map(text).unwrap_or_default(),
            });
        }
        match bad {
            Some(msg) => refused.push(n::AlterConfigsResourceResult {
                error_code: ErrorCode::InvalidRequest.as_i32(),
                error_message: msg,
                resource_type: i32::from(r.resource_type),
                resource_name: text(&r.resource_name),
            }),
            None => resources.push(n::AlterConfigsResource {
                resource_type: i32::from(r.resource_type),
                resource_name: text(&r.resource_name),
                configs,
            }),
        }
    }
    let mut results = refused;
    if !resources.is_empty() {
        let native_req = n::AlterConfigsRequest {
            resources,
            validate_only: req.validate_only,
        };
        let r = native!(&k.broker, &h.client_id, AlterConfigs, native_req);
        results.extend(r.responses);
    }
    let mut out = IncrementalAlterConfigsResponse::default();
    out.responses = results
        .into_iter()
        .map(|r| {
            let mut o = AlterConfigsResourceResponse::default();
            o.error_code = code(r.error_code);
            if !r.error_message.is_empty() {
                o.error_message = Some(kstr(r.error_message));
            }
            o.resource_type = i8::try_from(r.resource_type).unwrap_or(0);
            o.resource_name = kstr(r.resource_name);
            o
        })
        .collect();
    Ok(out)
}
