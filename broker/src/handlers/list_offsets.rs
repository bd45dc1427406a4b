//! ListOffsets (2): earliest (-2), latest (-1), the record with the largest timestamp (-3),
//! or the first offset at or after a timestamp.

use weir_protocol::native::v1::{
    ListOffsetsPartitionResponse, ListOffsetsRequest, ListOffsetsResponse, ListOffsetsTopicResponse,
};
use weir_protocol::ErrorCode;

use crate::ctx::BrokerCtx;
use crate::error::partition_error_code;
use crate::partition::{blocking, PartitionRef};

/// Kafka's special timestamp for the log start.
pub const EARLIEST: i64 = -2;
/// Kafka's special timestamp for the high watermark.
pub const LATEST: i64 = -1;
/// Kafka's special timestamp for the record with the largest timestamp (KIP-734).
pub const MAX_TIMESTAMP: i64 = -3;

/// Looks up each partition's offset.
pub async fn handle(ctx: &BrokerCtx, req: ListOffsetsRequest) -> ListOffsetsResponse {
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let r = match ctx.partition(&t.name, p.partition_index) {
                Err(code) => Err(code),
                Ok(part) => lookup(part, p.current_leader_epoch, p.timestamp).await,
            };
            partitions.push(match r {
                Ok((offset, timestamp, epoch)) => ListOffsetsPartitionResponse {
                    partition_index: p.partition_index,
                    error_code: 0,
                    timestamp,
                    offset,
                    leader_epoch: epoch,
                },
                Err(code) => ListOffsetsPartitionResponse {
                    partition_index: p.partition_index,
                    error_code: code.as_i32(),
                    timestamp: -1,
                    offset: -1,
                    leader_epoch: -1,
                },
            });
        }
        topics.push(ListOffsetsTopicResponse {
            name: t.name,
            partitions,
        });
    }
    ListOffsetsResponse {
        topics,
        throttle_time_ms: 0,
    }
}

async fn lookup(
    p: PartitionRef,
    leader_epoch: Option<i32>,
    ts: i64,
) -> Result<(i64, i64, i32), ErrorCode> {
    let epoch = p.leader_epoch();
    match leader_epoch {
        Some(e) if e < epoch => return Err(ErrorCode::FencedLeaderEpoch),
        Some(e) if e > epoch => return Err(ErrorCode::UnknownLeaderEpoch),
        _ => {}
    }
    match ts {
        LATEST => Ok((p.high_watermark(), -1, epoch)),
        EARLIEST => {
            let start = p.log_start_offset().map_err(|e| partition_error_code(&e))?;
            Ok((start, -1, epoch))
        }
        ts if ts < 0 && ts != MAX_TIMESTAMP => Err(ErrorCode::InvalidRequest),
        ts => {
            let hw = p.high_watermark();
            let found = blocking(
                move || p.with_log(|log| log.offset_for_timestamp(ts)),
                "offset for timestamp",
            )
            .await
            .map_err(|e| partition_error_code(&e))?;
            Ok(match found {
                Some((offset, t)) if offset < hw => (offset, t, epoch),
                _ => (-1, -1, epoch),
            })
        }
    }
}
