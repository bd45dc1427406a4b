//! FindCoordinator (10): a single node coordinates every group itself.

use weir_protocol::native::v1::{FindCoordinatorRequest, FindCoordinatorResponse};
use weir_protocol::ErrorCode;

use crate::ctx::BrokerCtx;

/// Answers with this broker, for groups (key type 0) only.
pub fn handle(ctx: &BrokerCtx, req: FindCoordinatorRequest) -> FindCoordinatorResponse {
    let error = if req.key_type != 0 {
        Some((
            ErrorCode::InvalidRequest,
            "only group coordinators (key_type 0) exist",
        ))
    } else if req.key.is_empty() {
        Some((ErrorCode::InvalidGroupId, "empty group id"))
    } else {
        None
    };
    match error {
        Some((code, msg)) => FindCoordinatorResponse {
            error_code: code.as_i32(),
            error_message: msg.into(),
            node_id: -1,
            host: String::new(),
            port: -1,
            throttle_time_ms: 0,
        },
        None => FindCoordinatorResponse {
            error_code: 0,
            error_message: String::new(),
            node_id: ctx.node_id,
            host: ctx.advertised_host.clone(),
            port: ctx.advertised_port,
            throttle_time_ms: 0,
        },
    }
}
