//! OffsetFetch (9): committed offsets; -1 / "" where nothing was committed.

use std::collections::BTreeMap;

use weir_protocol::native::v1::{
    OffsetFetchPartitionResponse, OffsetFetchRequest, OffsetFetchResponse, OffsetFetchTopicResponse,
};
use weir_protocol::ErrorCode;

use crate::ctx::BrokerCtx;
use crate::group::TopicPartition;

/// Looks the offsets up.
pub fn handle(ctx: &BrokerCtx, req: OffsetFetchRequest) -> OffsetFetchResponse {
    if req.group_id.is_empty() {
        return OffsetFetchResponse {
            error_code: ErrorCode::InvalidGroupId.as_i32(),
            topics: Vec::new(),
            throttle_time_ms: 0,
        };
    }
    if !ctx.groups.owns(&req.group_id) {
        return OffsetFetchResponse {
            error_code: ErrorCode::NotCoordinator.as_i32(),
            topics: Vec::new(),
            throttle_time_ms: 0,
        };
    }
    let wanted = (!req.all_topics).then(|| {
        req.topics
            .iter()
            .flat_map(|t| {
                t.partition_indexes
                    .iter()
                    .map(|p| TopicPartition::new(t.name.as_str(), *p))
            })
            .collect()
    });
    let mut by_topic: BTreeMap<String, Vec<OffsetFetchPartitionResponse>> = BTreeMap::new();
    for (tp, c) in ctx.groups.fetch_offsets(&req.group_id, wanted) {
        let p = match c {
            Some(c) => OffsetFetchPartitionResponse {
                partition_index: tp.partition,
                committed_offset: c.offset,
                committed_leader_epoch: c.leader_epoch.unwrap_or(-1),
                metadata: c.metadata,
                error_code: 0,
            },
            None => OffsetFetchPartitionResponse {
                partition_index: tp.partition,
                committed_offset: -1,
                committed_leader_epoch: -1,
                metadata: String::new(),
                error_code: 0,
            },
        };
        by_topic.entry(tp.topic).or_default().push(p);
    }
    OffsetFetchResponse {
        error_code: 0,
        topics: by_topic
            .into_iter()
            .map(|(name, partitions)| OffsetFetchTopicResponse { name, partitions })
            .collect(),
        throttle_time_ms: 0,
    }
}
