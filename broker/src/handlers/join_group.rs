//! JoinGroup (11): parks until the member's generation forms.

use weir_protocol::native::v1::{JoinGroupMember, JoinGroupRequest, JoinGroupResponse};

use crate::ctx::BrokerCtx;
use crate::group::{JoinRequest, Protocol, TopicPartition};

/// Joins (or rejoins) the member; `client_host` is the peer address.
pub async fn handle(ctx: &BrokerCtx, client_id: &str, req: JoinGroupRequest) -> JoinGroupResponse {
    let join = JoinRequest {
        member_id: req.member_id,
        instance_id: req.group_instance_id,
        client_id: client_id.to_string(),
        client_host: String::new(),
        session_timeout_ms: req.session_timeout_ms,
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        protocol_type: req.protocol_type,
        protocols: req
            .protocols
            .into_iter()
            .map(|p| Protocol {
                name: p.name,
                metadata: p.metadata,
            })
            .collect(),
        topics: req.topics,
        owned: req
            .owned_partitions
            .into_iter()
            .flat_map(|t| {
                let topic = t.topic;
                t.partitions
                    .into_iter()
                    .map(move |p| TopicPartition::new(topic.clone(), p))
            })
            .collect(),
    };
    let r = ctx.groups.join(&req.group_id, join).await;
    JoinGroupResponse {
        error_code: r.error.as_i32(),
        error_message: String::new(),
        generation_id: r.generation,
        protocol_type: r.protocol_type,
        protocol_name: r.protocol_name,
        leader: r.leader,
        member_id: r.member_id,
        members: r
            .members
            .into_iter()
            .map(|(member_id, group_instance_id, metadata)| JoinGroupMember {
                member_id,
                group_instance_id,
                metadata,
            })
            .collect(),
        throttle_time_ms: 0,
    }
}
