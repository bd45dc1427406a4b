//! DeleteGroups (42): only groups without members; their offsets go with them.

use weir_protocol::native::v1::{DeletableGroupResult, DeleteGroupsRequest, DeleteGroupsResponse};

use crate::ctx::BrokerCtx;

/// Deletes each named group.
pub async fn handle(ctx: &BrokerCtx, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(req.groups_names.len());
    for group_id in req.groups_names {
        let code = ctx.groups.delete(&group_id).await;
        results.push(DeletableGroupResult {
            group_id,
            error_code: code.as_i32(),
        });
    }
    DeleteGroupsResponse {
        results,
        throttle_time_ms: 0,
    }
}
