//! InitProducerId (22): producer ids come from blocks reserved in the metadata log, so
//! they are never reused across restarts; sequences are enforced by storage.

use weir_protocol::native::v1::{InitProducerIdRequest, InitProducerIdResponse};

use crate::ctx::BrokerCtx;

/// A new id (epoch 0), or the next epoch of the id the producer already has.
pub async fn handle(ctx: &BrokerCtx, req: InitProducerIdRequest) -> InitProducerIdResponse {
    let existing = match (req.producer_id, req.producer_epoch) {
        (Some(pid), Some(epoch)) if pid >= 0 => Some((pid, i16::try_from(epoch).unwrap_or(-1))),
        _ => None,
    };
    match ctx
        .controller
        .init_producer_id(req.transactional_id, existing)
        .await
    {
        Ok((pid, epoch)) => InitProducerIdResponse {
            error_code: 0,
            producer_id: pid,
            producer_epoch: i32::from(epoch),
            throttle_time_ms: 0,
        },
        Err(e) => InitProducerIdResponse {
            error_code: e.code.as_i32(),
            producer_id: -1,
            producer_epoch: -1,
            throttle_time_ms: 0,
        },
    }
}
