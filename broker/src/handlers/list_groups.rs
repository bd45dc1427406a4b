//! ListGroups (16).

use weir_protocol::native::v1::{ListGroupsRequest, ListGroupsResponse, ListedGroup};

use crate::ctx::BrokerCtx;
use crate::group::GroupState;

/// Every group, optionally filtered by state names (unknown names match nothing).
pub fn handle(ctx: &BrokerCtx, req: ListGroupsRequest) -> ListGroupsResponse {
    let states: Vec<GroupState> = req
        .states_filter
        .iter()
        .filter_map(|s| GroupState::from_name(s))
        .collect();
    let groups = if !req.states_filter.is_empty() && states.is_empty() {
        Vec::new()
    } else {
        ctx.groups.list(&states)
    };
    ListGroupsResponse {
        error_code: 0,
        groups: groups
            .into_iter()
            .map(|(group_id, protocol_type, state)| ListedGroup {
                group_id,
                protocol_type,
                group_state: state.name().to_string(),
            })
            .collect(),
        throttle_time_ms: 0,
    }
}
