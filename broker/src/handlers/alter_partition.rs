//! AlterPartition (56): ISR changes from partition leaders, answered by the active
//! controller (others answer NOT_CONTROLLER and the leader retries there).

use weir_protocol::native::v1::{AlterPartitionRequest, AlterPartitionResponse};

use crate::ctx::BrokerCtx;

/// Validates and writes the proposed changes.
pub async fn handle(ctx: &BrokerCtx, req: AlterPartitionRequest) -> AlterPartitionResponse {
    match ctx.controller.alter_partitions(req).await {
        Ok(r) => r,
        Err(e) => AlterPartitionResponse {
            error_code: e.code.as_i32(),
            topics: Vec::new(),
        },
    }
}
