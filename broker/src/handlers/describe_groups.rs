//! DescribeGroups (15): state, members with assignments, and (on request) committed
//! offsets with log end and lag.

use weir_protocol::native::v1::{
    DescribeGroupsRequest, DescribeGroupsResponse, DescribedGroup, DescribedGroupMember,
    GroupPartitionOffset,
};
use weir_protocol::ErrorCode;

use super::sync_group::by_topic;
use crate::ctx::BrokerCtx;

/// Describes each named group.
pub fn handle(ctx: &BrokerCtx, req: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let groups = req
        .groups
        .iter()
        .map(|id| match ctx.groups.describe(id) {
            None => DescribedGroup {
                error_code: ErrorCode::GroupIdNotFound.as_i32(),
                group_id: id.clone(),
                group_state: "Dead".into(),
                ..Default::default()
            },
            Some(g) => DescribedGroup {
                error_code: 0,
                group_id: g.group_id,
                group_state: g.state.name().to_string(),
                protocol_type: g.protocol_type,
                protocol_data: g.protocol,
                generation_id: g.generation,
                members: g
                    .members
                    .into_iter()
                    .map(|m| DescribedGroupMember {
                        member_id: m.member_id,
                        group_instance_id: m.instance_id,
                        client_id: m.client_id,
                        client_host: m.client_host,
                        member_metadata: bytes::Bytes::new(),
                        member_assignment: bytes::Bytes::new(),
                        assignment: by_topic(&m.assignment),
                    })
                    .collect(),
                offsets: if req.include_offsets {
                    g.offsets
                        .into_iter()
                        .map(|r| GroupPartitionOffset {
                            topic: r.topic,
                            partition: r.partition,
                            committed_offset: r.committed,
                            log_end_offset: r.log_end,
                            lag: r.lag,
                            metadata: String::new(),
                        })
                        .collect()
                } else {
                    Vec::new()
                },
            },
        })
        .collect();
    DescribeGroupsResponse {
        groups,
        throttle_time_ms: 0,
    }
}
