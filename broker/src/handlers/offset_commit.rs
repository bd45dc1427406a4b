//! OffsetCommit (8): validated against the group's generation and member, then written to
//! `__consumer_offsets`; answered once durable.

use std::collections::BTreeMap;

use weir_protocol::native::v1::{
    OffsetCommitPartitionResponse, OffsetCommitRequest, OffsetCommitResponse,
    OffsetCommitTopicResponse,
};

use crate::coordinator::CommitPartition;
use crate::ctx::BrokerCtx;
use crate::group::{Committer, TopicPartition};

/// Commits the offsets.
pub async fn handle(ctx: &BrokerCtx, req: OffsetCommitRequest) -> OffsetCommitResponse {
    let parts: Vec<CommitPartition> = req
        .topics
        .into_iter()
        .flat_map(|t| {
            let name = t.name;
            t.partitions.into_iter().map(move |p| CommitPartition {
                tp: TopicPartition::new(name.clone(), p.partition_index),
                offset: p.committed_offset,
                leader_epoch: p.committed_leader_epoch,
                metadata: p.committed_metadata,
            })
        })
        .collect();
    let who = Committer {
        generation: req.generation_id,
        member_id: &req.member_id,
        instance_id: req.group_instance_id.as_deref(),
    };
    let results = ctx.groups.commit(&req.group_id, who, parts).await;
    let mut by_topic: BTreeMap<String, Vec<OffsetCommitPartitionResponse>> = BTreeMap::new();
    for (tp, code) in results {
        by_topic
            .entry(tp.topic)
            .or_default()
            .push(OffsetCommitPartitionResponse {
                partition_index: tp.partition,
                error_code: code.as_i32(),
            });
    }
    OffsetCommitResponse {
        topics: by_topic
            .into_iter()
            .map(|(name, partitions)| OffsetCommitTopicResponse { name, partitions })
            .collect(),
        throttle_time_ms: 0,
    }
}
