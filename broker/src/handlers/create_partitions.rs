//! CreatePartitions (37): raise a topic's partition count.

use weir_protocol::native::v1::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreatePartitionsTopicResult,
};
use weir_protocol::ErrorCode;

use crate::ctx::BrokerCtx;
use crate::names::is_internal_topic;

/// Grows each named topic to its requested count.
pub async fn handle(ctx: &BrokerCtx, req: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let mut results = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let (code, message) = if is_internal_topic(&t.name) {
            // Groups map to partitions by hash of the group id: a new count would move
            // groups away from their committed offsets.
            (
                ErrorCode::InvalidTopicException,
                format!("the partition count of internal topic {} is fixed", t.name),
            )
        } else {
            match ctx
                .controller
                .create_partitions(&t.name, t.count, req.validate_only)
                .await
            {
                Ok(()) => (ErrorCode::None, String::new()),
                Err(e) => (e.code, e.message),
            }
        };
        results.push(CreatePartitionsTopicResult {
            name: t.name,
            error_code: code.as_i32(),
            error_message: message,
        });
    }
    CreatePartitionsResponse {
        results,
        throttle_time_ms: 0,
    }
}
