//! Heartbeat (12): keeps the session alive; REBALANCE_IN_PROGRESS tells the member to
//! rejoin.

use weir_protocol::native::v1::{HeartbeatRequest, HeartbeatResponse};

use crate::ctx::BrokerCtx;

/// Records the heartbeat.
pub fn handle(ctx: &BrokerCtx, req: HeartbeatRequest) -> HeartbeatResponse {
    let code = ctx.groups.heartbeat(
        &req.group_id,
        &req.member_id,
        req.group_instance_id.as_deref(),
        req.generation_id,
    );
    HeartbeatResponse {
        error_code: code.as_i32(),
        throttle_time_ms: 0,
    }
}
