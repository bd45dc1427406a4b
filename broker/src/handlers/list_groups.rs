//! ListGroups (16).

use weir_protocol::native::v1::{ListGroupsRequest, ListGroupsResponse, ListedGroup};

use crate::ctx::BrokerCtx;

/// Every group, optionally filtered by state names (case-insensitive; a consumer group's
/// states are Kafka's: Empty, Assigning, Reconciling, Stable).
pub fn handle(ctx: &BrokerCtx, req: ListGroupsRequest) -> ListGroupsResponse {
    let groups = ctx.groups.list(&req.states_filter);
    ListGroupsResponse {
        error_code: 0,
        groups: groups
            .into_iter()
            .map(|g| ListedGroup {
                group_id: g.group_id,
                protocol_type: g.protocol_type,
                group_state: g.state_name,
                group_type: if g.consumer { "consumer" } else { "classic" }.to_string(),
            })
            .collect(),
        throttle_time_ms: 0,
    }
}
