//! ListPartitionReassignments (46): the moves in progress, as this broker's metadata image
//! has them (the client asks the active controller, whose image is the newest).

use weir_protocol::native::v1::{
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
};

use crate::ctx::BrokerCtx;

/// Lists running moves.
pub fn handle(
    ctx: &BrokerCtx,
    req: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    ctx.controller.list_reassignments(&req.topics)
}
