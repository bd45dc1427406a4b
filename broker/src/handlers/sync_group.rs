//! SyncGroup (14): the member's partitions for its generation. The coordinator assigned
//! them when the generation formed; in a group whose leader client assigns (Kafka's
//! classic protocol), the leader's plan replaces them and the others wait for it.

use std::collections::BTreeMap;

use weir_protocol::native::v1::{
    SyncGroupAssignment, SyncGroupRequest, SyncGroupResponse, TopicPartitions,
};

use crate::ctx::BrokerCtx;
use crate::group::{PlannedAssignment, TopicPartition, CLIENT_ASSIGNED_PREFIX};
use crate::kafka::consumer_protocol::decode_assignment;

/// Returns the assignment (after the leader's plan, where one is awaited).
pub async fn handle(ctx: &BrokerCtx, req: SyncGroupRequest) -> SyncGroupResponse {
    let plan = (!req.assignments.is_empty()).then(|| plan(&req.protocol_type, &req.assignments));
    let r = ctx
        .groups
        .sync(
            &req.group_id,
            &req.member_id,
            req.group_instance_id.as_deref(),
            req.generation_id,
            plan,
        )
        .await;
    SyncGroupResponse {
        error_code: r.error.as_i32(),
        error_message: String::new(),
        protocol_type: req.protocol_type,
        protocol_name: r.protocol_name,
        assignment: r.assignment_blob.unwrap_or_default(),
        assigned_partitions: by_topic(&r.assignment),
        throttle_time_ms: 0,
    }
}

/// The leader's assignments as the coordinator keeps them: the bytes as sent, and for the
/// consumer protocol the partitions they name (an unreadable blob names none, and is still
/// delivered; the client that wrote it knows its format).
fn plan(protocol_type: &str, assignments: &[SyncGroupAssignment]) -> Vec<PlannedAssignment> {
    let consumer = protocol_type == format!("{CLIENT_ASSIGNED_PREFIX}consumer");
    assignments
        .iter()
        .map(|a| PlannedAssignment {
            member_id: a.member_id.clone(),
            blob: a.assignment.clone(),
            partitions: if consumer {
                decode_assignment(&a.assignment)
                    .unwrap_or_default()
                    .into_iter()
                    .flat_map(|(topic, ps)| {
                        ps.into_iter().map(move |partition| TopicPartition {
                            topic: topic.clone(),
                            partition,
                        })
                    })
                    .collect()
            } else {
                Vec::new()
            },
        })
        .collect()
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
