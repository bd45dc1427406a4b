//! DescribeGroups (15): state, members with assignments, and (on request) committed
//! offsets with log end and lag in records and in time.

use weir_protocol::native::v1::{
    DescribeGroupsRequest, DescribeGroupsResponse, DescribedGroup, DescribedGroupMember,
    GroupPartitionOffset,
};
use weir_protocol::ErrorCode;

use super::sync_group::by_topic;
use crate::clock::now_ms;
use crate::coordinator::{fill_lag_ms, DescribedGroup as DescribedGroupState};
use crate::ctx::BrokerCtx;
use crate::partition::blocking;

/// Describes each named group.
pub async fn handle(ctx: &BrokerCtx, req: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let mut described: Vec<(String, Option<DescribedGroupState>)> = req
        .groups
        .iter()
        .map(|id| (id.clone(), ctx.groups.describe(id)))
        .collect();
    if req.include_offsets {
        // Lag in time reads each lagging partition's next record: off the async workers.
        let topics = ctx.topics.clone();
        let now = now_ms();
        let filled = blocking(
            move || {
                for (_, g) in described.iter_mut() {
                    if let Some(g) = g {
                        fill_lag_ms(&topics, &mut g.offsets, now);
                    }
                }
                Ok(described)
            },
            "describe groups lag",
        )
        .await;
        described = match filled {
            Ok(d) => d,
            // Only a panicked blocking task gets here; answer without the lag in time.
            Err(_) => req
                .groups
                .iter()
                .map(|id| (id.clone(), ctx.groups.describe(id)))
                .collect(),
        };
    }
    let groups = described
        .into_iter()
        .map(|(id, g)| match g {
            None => DescribedGroup {
                error_code: ErrorCode::GroupIdNotFound.as_i32(),
                group_id: id,
                group_state: "Dead".into(),
                ..Default::default()
            },
            Some(g) => DescribedGroup {
                error_code: 0,
                group_id: g.group_id,
                group_state: g.state_name,
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
                        member_assignment: m.assignment_blob.unwrap_or_default(),
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
                            lag_ms: r.lag_ms,
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
