//! FindCoordinator (10): the coordinator of a group is the broker that leads the group's
//! partition of `__consumer_offsets` (a single node: itself).

use weir_protocol::native::v1::{FindCoordinatorRequest, FindCoordinatorResponse};
use weir_protocol::ErrorCode;

use crate::ctx::BrokerCtx;
use crate::group::records::{partition_for, OFFSETS_TOPIC};

/// Answers with the group's coordinator, for groups (key type 0) only.
pub fn handle(ctx: &BrokerCtx, req: FindCoordinatorRequest) -> FindCoordinatorResponse {
    let error = if req.key_type != 0 {
        Some((
            ErrorCode::InvalidRequest,
            "only group coordinators (key_type 0) exist",
        ))
    } else if req.key.is_empty() {
        Some((ErrorCode::InvalidGroupId, "empty group id"))
    } else {
        None
    };
    let coordinator = coordinator_of(ctx, &req.key);
    let error = error.or(match coordinator {
        None => Some((
            ErrorCode::CoordinatorNotAvailable,
            "the group's offsets partition has no registered leader",
        )),
        Some(_) => None,
    });
    match error {
        Some((code, msg)) => FindCoordinatorResponse {
            error_code: code.as_i32(),
            error_message: msg.into(),
            node_id: -1,
            host: String::new(),
            port: -1,
            throttle_time_ms: 0,
        },
        None => {
            let (node_id, host, port) = coordinator.unwrap_or((
                ctx.node_id,
                ctx.advertised_host.clone(),
                ctx.advertised_port,
            ));
            FindCoordinatorResponse {
                error_code: 0,
                error_message: String::new(),
                node_id,
                host,
                port,
                throttle_time_ms: 0,
            }
        }
    }
}

/// (node, host, port) of the leader of `group`'s `__consumer_offsets` partition; this
/// broker while the topic does not exist yet (it is created at the controller's start).
fn coordinator_of(ctx: &BrokerCtx, group: &str) -> Option<(i32, String, i32)> {
    let image = ctx.controller.image();
    let Some(topic) = image.topics.get(OFFSETS_TOPIC) else {
        return Some((
            ctx.node_id,
            ctx.advertised_host.clone(),
            ctx.advertised_port,
        ));
    };
    let n = u32::try_from(topic.partitions.len()).unwrap_or(1);
    let p = usize::try_from(partition_for(group, n)).ok()?;
    let leader = topic.partitions.get(p)?.leader;
    if leader == ctx.node_id {
        return Some((
            ctx.node_id,
            ctx.advertised_host.clone(),
            ctx.advertised_port,
        ));
    }
    let b = image.brokers.get(&leader)?;
    Some((leader, b.host.clone(), b.port))
}
