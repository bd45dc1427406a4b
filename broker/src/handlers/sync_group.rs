//! SyncGroup (14): the member's partitions for its generation (the coordinator assigned
//! them when the generation formed).

use std::collections::BTreeMap;

use weir_protocol::native::v1::{SyncGroupRequest, SyncGroupResponse, TopicPartitions};

use crate::ctx::BrokerCtx;
use crate::group::TopicPartition;

/// Returns the assignment.
pub fn handle(ctx: &BrokerCtx, req: SyncGroupRequest) -> SyncGroupResponse {
    let r = ctx.groups.sync(
        &req.group_id,
        &req.member_id,
        req.group_instance_id.as_deref(),
        req.generation_id,
    );
    SyncGroupResponse {
        error_code: r.error.as_i32(),
        error_message: String::new(),
        protocol_type: req.protocol_type,
        protocol_name: r.protocol_name,
        assignment: bytes::Bytes::new(),
        assigned_partitions: by_topic(&r.assignment),
        throttle_time_ms: 0,
    }
}

/// Groups partitions by topic, topics and partitions sorted.
pub fn by_topic(parts: &[TopicPartition]) -> Vec<TopicPartitions> {
    let mut m: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in parts {
        m.entry(&tp.topic).or_default().push(tp.partition);
    }
    m.into_iter()
        .map(|(topic, mut partitions)| {
            partitions.sort_unstable();
            TopicPartitions {
                topic: topic.to_string(),
                partitions,
            }
        })
        .collect()
}
