//! FindCoordinator (10), v0-3: the native answer, pointed at this broker's Kafka address.

use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::find_coordinator_response::FindCoordinatorResponse;
use kafka_protocol::messages::BrokerId;
use weir_protocol::native::v1 as n;

use super::{code, kstr, text};
use crate::kafka::error::KafkaError;
use crate::kafka::header::Header;
use crate::kafka::native::native;
use crate::kafka::{KafkaCtx, Node};

/// Finds the group (or transaction) coordinator.
pub async fn handle(
    k: &KafkaCtx,
    h: &Header,
    req: FindCoordinatorRequest,
) -> Result<FindCoordinatorResponse, KafkaError> {
    let native_req = n::FindCoordinatorRequest {
        key: text(&req.key),
        key_type: i32::from(req.key_type),
    };
    let r = native!(&k.broker, &h.client_id, FindCoordinator, native_req);
    Ok(response(&k.node(), h.version, r))
}

/// The Kafka answer for a native one.
pub fn response(
    node: &Node,
    version: i16,
    r: n::FindCoordinatorResponse,
) -> FindCoordinatorResponse {
    let mut out = FindCoordinatorResponse::default();
    out.error_code = code(r.error_code);
    if version >= 1 && !r.error_message.is_empty() {
        out.error_message = Some(kstr(r.error_message));
    }
    if r.error_code == 0 {
        out.node_id = BrokerId(r.node_id);
        out.host = kstr(node.host.clone());
        out.port = node.port;
    } else {
        out.node_id = BrokerId(-1);
        out.port = -1;
    }
    out
}
