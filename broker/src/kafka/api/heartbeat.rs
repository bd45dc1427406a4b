//! Heartbeat (12), v0-4.

use kafka_protocol::messages::heartbeat_request::HeartbeatRequest;
use kafka_protocol::messages::heartbeat_response::HeartbeatResponse;
use weir_protocol::native::v1 as n;

use super::{code, group, text};
use crate::kafka::error::KafkaError;
use crate::kafka::header::Header;
use crate::kafka::native::native;
use crate::kafka::KafkaCtx;

/// Keeps the member alive; REBALANCE_IN_PROGRESS tells it to rejoin.
pub async fn handle(
    k: &KafkaCtx,
    h: &Header,
    req: HeartbeatRequest,
) -> Result<HeartbeatResponse, KafkaError> {
    let native_req = n::HeartbeatRequest {
        group_id: group(&req.group_id),
        generation_id: req.generation_id,
        member_id: text(&req.member_id),
        group_instance_id: req.group_instance_id.as_ref().map(text),
    };
    let r = native!(&k.broker, &h.client_id, Heartbeat, native_req);
    let mut out = HeartbeatResponse::default();
    out.error_code = code(r.error_code);
    Ok(out)
}
