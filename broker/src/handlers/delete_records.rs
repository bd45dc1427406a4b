//! DeleteRecords (21): move a partition's log start forward.

use weir_protocol::native::v1::{
    DeleteRecordsPartitionResult, DeleteRecordsRequest, DeleteRecordsResponse,
    DeleteRecordsTopicResult,
};
use weir_protocol::ErrorCode;

use crate::ctx::BrokerCtx;
use crate::error::partition_error_code;
use crate::names::is_internal_topic;
use crate::partition::blocking;

/// Deletes records before each given offset (-1 = the high watermark).
pub async fn handle(ctx: &BrokerCtx, req: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            // The internal topic holds committed offsets the coordinator replays at start.
            let r = match ctx.partition(&t.name, p.partition_index) {
                Err(code) => Err(code),
                Ok(_) if is_internal_topic(&t.name) => Err(ErrorCode::InvalidTopicException),
                Ok(part) => {
                    let hw = part.high_watermark();
                    let target = if p.offset == -1 { hw } else { p.offset };
                    if target < 0 || target > hw {
                        Err(ErrorCode::OffsetOutOfRange)
                    } else {
                        blocking(
                            move || part.with_log_mut(|log| log.delete_records_before(target)),
                            "delete records",
                        )
                        .await
                        .map_err(|e| partition_error_code(&e))
                    }
                }
            };
            partitions.push(match r {
                Ok(low) => DeleteRecordsPartitionResult {
                    partition_index: p.partition_index,
                    low_watermark: low,
                    error_code: 0,
                },
                Err(code) => DeleteRecordsPartitionResult {
                    partition_index: p.partition_index,
                    low_watermark: -1,
                    error_code: code.as_i32(),
                },
            });
        }
        topics.push(DeleteRecordsTopicResult {
            name: t.name,
            partitions,
        });
    }
    DeleteRecordsResponse {
        topics,
        throttle_time_ms: 0,
    }
}
