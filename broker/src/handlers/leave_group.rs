//! LeaveGroup (13): members leave at once (their partitions move in the next generation).

use weir_protocol::native::v1::{LeaveGroupMemberResponse, LeaveGroupRequest, LeaveGroupResponse};

use crate::ctx::BrokerCtx;

/// Removes the members.
pub fn handle(ctx: &BrokerCtx, req: LeaveGroupRequest) -> LeaveGroupResponse {
    let who: Vec<(String, Option<String>)> = req
        .members
        .iter()
        .map(|m| (m.member_id.clone(), m.group_instance_id.clone()))
        .collect();
    match ctx.groups.leave(&req.group_id, &who) {
        Ok(codes) => LeaveGroupResponse {
            error_code: 0,
            members: req
                .members
                .into_iter()
                .zip(codes)
                .map(|(m, code)| LeaveGroupMemberResponse {
                    member_id: m.member_id,
                    group_instance_id: m.group_instance_id,
                    error_code: code.as_i32(),
                })
                .collect(),
            throttle_time_ms: 0,
        },
        Err(code) => LeaveGroupResponse {
            error_code: code.as_i32(),
            members: Vec::new(),
            throttle_time_ms: 0,
        },
    }
}
