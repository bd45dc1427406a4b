//! FindCoordinator (10), v0-3: the native answer, pointed at this broker's Kafka address.

use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::find_coordinator_response::FindCoordinatorResponse;
use kafka_protocol::messages::BrokerId;
use weir_protocol::native::v1 as n;
use weir_protocol::ErrorCode;

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

/// The Kafka answer for a native one. The Kafka addresses of other brokers are not known
/// yet (brokers register their native address only), so a coordinator elsewhere in a
/// cluster is answered COORDINATOR_NOT_AVAILABLE rather than with a wrong address.
pub fn response(
    node: &Node,
    version: i16,
    r: n::FindCoordinatorResponse,
) -> FindCoordinatorResponse {
    let mut out = FindCoordinatorResponse::default();
    let (code_, message) = if r.error_code == 0 && r.node_id != node.id {
        (
            ErrorCode::CoordinatorNotAvailable.as_i32(),
            format!(
                "the coordinator is broker {}, whose Kafka address is not known",
                r.node_id
            ),
        )
    } else {
        (r.error_code, r.error_message)
    };
    out.error_code = code(code_);
    if version >= 1 && !message.is_empty() {
        out.error_message = Some(kstr(message));
    }
    if code_ == 0 {
        out.node_id = BrokerId(node.id);
        out.host = kstr(node.host.clone());
        out.port = node.port;
    } else {
        out.node_id = BrokerId(-1);
        out.port = -1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_coordinator_elsewhere_is_not_available() {
        let node = Node {
            id: 0,
            host: "h".into(),
            port: 9092,
        };
        let here = n::FindCoordinatorResponse {
            node_id: 0,
            ..Default::default()
        };
        let r = response(&node, 2, here);
        assert_eq!((r.error_code, r.node_id.0, r.port), (0, 0, 9092));
        let elsewhere = n::FindCoordinatorResponse {
            node_id: 2,
            ..Default::default()
        };
        let r = response(&node, 2, elsewhere);
        assert_eq!((r.error_code, r.node_id.0), (15, -1));
    }
}
