//! AlterPartitionReassignments (45): starts or cancels partition moves. Answered by the
//! active controller (others answer NOT_CONTROLLER and the client retries there).

use weir_protocol::native::v1::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
};

use crate::ctx::BrokerCtx;

/// Validates and writes the moves.
pub async fn handle(
    ctx: &BrokerCtx,
    req: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    match ctx.controller.reassign_partitions(req).await {
        Ok(r) => r,
        Err(e) => AlterPartitionReassignmentsResponse {
            error_code: e.code.as_i32(),
            error_message: e.message,
            topics: Vec::new(),
        },
    }
}
