//! InitProducerId (22), v0-4: a new idempotent producer id, or (v3+, both id and epoch
//! given) an epoch bump of the caller's own id (KIP-360).

use kafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use kafka_protocol::messages::init_producer_id_response::InitProducerIdResponse;
use kafka_protocol::messages::ProducerId;
use weir_protocol::native::v1 as n;

use super::{code, text};
use crate::kafka::error::KafkaError;
use crate::kafka::header::Header;
use crate::kafka::native::native;
use crate::kafka::KafkaCtx;

/// Allocates (or bumps) a producer id.
pub async fn handle(
    k: &KafkaCtx,
    h: &Header,
    req: InitProducerIdRequest,
) -> Result<InitProducerIdResponse, KafkaError> {
    let bump = req.producer_id.0 >= 0 && req.producer_epoch >= 0;
    let native_req = n::InitProducerIdRequest {
        transactional_id: req.transactional_id.as_ref().map(|t| text(&t.0)),
        transaction_timeout_ms: req.transaction_timeout_ms,
        producer_id: bump.then_some(req.producer_id.0),
        producer_epoch: bump.then_some(i32::from(req.producer_epoch)),
    };
    let r = native!(&k.broker, &h.client_id, InitProducerId, native_req);
    let mut out = InitProducerIdResponse::default();
    out.error_code = code(r.error_code);
    out.producer_id = ProducerId(r.producer_id);
    out.producer_epoch = i16::try_from(r.producer_epoch).unwrap_or(-1);
    Ok(out)
}
