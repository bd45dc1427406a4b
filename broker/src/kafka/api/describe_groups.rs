//! DescribeGroups (15), v0-5. A member's assignment is the leader client's bytes for it
//! (Kafka's classic protocol), or an Assignment blob of the coordinator's partitions.

use kafka_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use kafka_protocol::messages::describe_groups_response::{
    DescribeGroupsResponse, DescribedGroup, DescribedGroupMember,
};
use kafka_protocol::messages::GroupId;
use weir_protocol::native::v1 as n;

use super::join_group::external_type;
use super::{code, group, kstr};
use crate::kafka::consumer_protocol::encode_assignment;
use crate::kafka::error::KafkaError;
use crate::kafka::header::Header;
use crate::kafka::native::native;
use crate::kafka::KafkaCtx;

/// Describes the groups.
pub async fn handle(
    k: &KafkaCtx,
    h: &Header,
    req: DescribeGroupsRequest,
) -> Result<DescribeGroupsResponse, KafkaError> {
    let native_req = n::DescribeGroupsRequest {
        groups: req.groups.iter().map(group).collect(),
        include_offsets: false,
    };
    let r = native!(&k.broker, &h.client_id, DescribeGroups, native_req);
    Ok(response(h.version, r))
}

/// The Kafka answer for a native one.
pub fn response(version: i16, r: n::DescribeGroupsResponse) -> DescribeGroupsResponse {
    let mut out = DescribeGroupsResponse::default();
    out.groups = r
        .groups
        .into_iter()
        .map(|g| {
            let mut o = DescribedGroup::default();
            o.error_code = code(g.error_code);
            o.group_id = GroupId(kstr(g.group_id));
            o.group_state = kstr(g.group_state);
            o.protocol_type = kstr(external_type(&g.protocol_type));
            o.protocol_data = kstr(g.protocol_data);
            o.members = g
                .members
                .into_iter()
                .map(|m| {
                    let mut d = DescribedGroupMember::default();
                    d.member_id = kstr(m.member_id);
                    if version >= 4 {
                        d.group_instance_id = m.group_instance_id.map(kstr);
                    }
                    d.client_id = kstr(m.client_id);
                    d.client_host = kstr(m.client_host);
                    d.member_metadata = m.member_metadata;
                    let parts: Vec<(String, Vec<i32>)> = m
                        .assignment
                        .into_iter()
                        .map(|t| (t.topic, t.partitions))
                        .collect();
                    // The leader client's bytes as it wrote them (user data included);
                    // the coordinator's assignment otherwise.
                    d.member_assignment = if m.member_assignment.is_empty() {
                        encode_assignment(&parts)
                    } else {
                        m.member_assignment
                    };
                    d
                })
                .collect();
            o
        })
        .collect();
    out
}
