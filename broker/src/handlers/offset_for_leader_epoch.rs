//! OffsetForLeaderEpoch (23): where a leader epoch ends in this leader's log, from the
//! log's leader-epoch cache. Followers ask it (for the epoch of their last record) to find
//! where their log diverges from a new leader's; consumers ask it after a leader change.

use weir_protocol::native::v1::{
    EpochEndOffset, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
    OffsetForLeaderTopicResult,
};
use weir_protocol::ErrorCode;

use crate::ctx::BrokerCtx;
use crate::error::partition_error_code;
use crate::partition::{blocking, PartitionRef};

/// Answers each partition.
pub async fn handle(
    ctx: &BrokerCtx,
    req: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let r = match ctx.partition(&t.name, p.partition_index) {
                Err(code) => Err(code),
                Ok(part) => end_offset(part, p.current_leader_epoch, p.leader_epoch).await,
            };
            let (error, (leader_epoch, end_offset)) = match r {
                Ok(found) => (ErrorCode::None, found.unwrap_or((-1, -1))),
                Err(code) => (code, (-1, -1)),
            };
            partitions.push(EpochEndOffset {
                partition_index: p.partition_index,
                error_code: error.as_i32(),
                leader_epoch,
                end_offset,
            });
        }
        topics.push(OffsetForLeaderTopicResult {
            name: t.name,
            partitions,
        });
    }
    OffsetForLeaderEpochResponse { topics }
}

async fn end_offset(
    p: PartitionRef,
    current: Option<i32>,
    epoch: i32,
) -> Result<Option<(i32, i64)>, ErrorCode> {
    let now = p.leader_epoch();
    match current {
        Some(e) if e < now => return Err(ErrorCode::FencedLeaderEpoch),
        Some(e) if e > now => return Err(ErrorCode::UnknownLeaderEpoch),
        _ => {}
    }
    blocking(
        move || p.with_log(|log| Ok(log.end_offset_for_epoch(epoch))),
        "offset for leader epoch",
    )
    .await
    .map_err(|e| partition_error_code(&e))
}
