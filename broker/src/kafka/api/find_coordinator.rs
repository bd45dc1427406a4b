//! FindCoordinator (10), v0-3: the native answer, pointed at the coordinator's Kafka
//! address (the native one names its native listener).

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
    let coordinator = (r.error_code == 0).then(|| k.broker(r.node_id)).flatten();
    Ok(response(coordinator.as_ref(), h.version, r))
}

/// The Kafka answer for a native one; `coordinator` is the coordinator the native answer
/// names, at its Kafka address. A coordinator without a Kafka listener is answered
/// COORDINATOR_NOT_AVAILABLE rather than with its native address, which a Kafka client
/// cannot speak to.
pub fn response(
    coordinator: Option<&Node>,
    version: i16,
    r: n::FindCoordinatorResponse,
) -> FindCoordinatorResponse {
    let mut out = FindCoordinatorResponse::default();
    let found = coordinator.filter(|c| r.error_code == 0 && c.id == r.node_id);
    let (code_, message) = if r.error_code == 0 && found.is_none() {
        (
            ErrorCode::CoordinatorNotAvailable.as_i32(),
            format!(
                "the coordinator is broker {}, which has no known Kafka address",
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
    if let Some(node) = found {
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
    fn the_coordinator_at_its_kafka_address() {
        let node = Node {
            id: 2,
            host: "h".into(),
            port: 9092,
        };
        let native = n::FindCoordinatorResponse {
            node_id: 2,
            host: "native".into(),
            port: 9292,
            ..Default::default()
        };
        let r = response(Some(&node), 2, native.clone());
        assert_eq!(
            (r.error_code, r.node_id.0, r.host.as_str(), r.port),
            (0, 2, "h", 9092)
        );
        // No Kafka address known for it: never its native one.
        let r = response(None, 2, native);
        assert_eq!((r.error_code, r.node_id.0, r.port), (15, -1, -1));
        let failed = n::FindCoordinatorResponse {
            error_code: 15,
            node_id: -1,
            ..Default::default()
        };
        let r = response(None, 2, failed);
        assert_eq!((r.error_code, r.node_id.0), (15, -1));
    }
}
