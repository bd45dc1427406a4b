//! Produce (0), v3+: record batches go to the native handler as received (never
//! re-encoded, so duplicate header keys and exact bytes survive), with the connection's
//! append turn so a connection's produces append in arrival order. acks=0 answers nothing.

use kafka_protocol::messages::produce_request::ProduceRequest;
use kafka_protocol::messages::produce_response::{
    PartitionProduceResponse, ProduceResponse, TopicProduceResponse,
};
use weir_protocol::native::v1 as n;
use weir_protocol::native::v1::request_envelope::Body as Req;
use weir_protocol::native::v1::response_envelope::Body as Resp;

use super::{code, kstr, text, topic};
use crate::kafka::error::KafkaError;
use crate::kafka::header::Header;
use crate::kafka::native::call_in_turn;
use crate::kafka::KafkaCtx;
use crate::server::AppendTurn;

/// Appends; `None` for acks=0.
pub async fn handle(
    k: &KafkaCtx,
    h: &Header,
    req: ProduceRequest,
    turn: Option<AppendTurn>,
) -> Result<Option<ProduceResponse>, KafkaError> {
    let native_req = n::ProduceRequest {
        transactional_id: req.transactional_id.map(|t| text(&t.0)),
        acks: i32::from(req.acks),
        timeout_ms: req.timeout_ms,
        topic_data: req
            .topic_data
            .into_iter()
            .map(|t| n::TopicProduceData {
                name: text(&t.name.0),
                partition_data: t
                    .partition_data
                    .into_iter()
                    .map(|p| n::PartitionProduceData {
                        index: p.index,
                        records: p.records.unwrap_or_default(),
                    })
                    .collect(),
            })
            .collect(),
    };
    match call_in_turn(&k.broker, &h.client_id, Req::Produce(native_req), turn).await? {
        None => Ok(None),
        Some(Resp::Produce(r)) => Ok(Some(response(h.version, r))),
        Some(_) => Err(KafkaError::Internal("produce: wrong response".into())),
    }
}

/// The Kafka answer for a native one.
pub fn response(version: i16, r: n::ProduceResponse) -> ProduceResponse {
    let mut out = ProduceResponse::default();
    out.responses = r
        .responses
        .into_iter()
        .map(|t| {
            let mut o = TopicProduceResponse::default();
            o.name = topic(t.name);
            o.partition_responses = t
                .partition_responses
                .into_iter()
                .map(|p| {
                    let mut o = PartitionProduceResponse::default();
                    o.index = p.index;
                    o.error_code = code(p.error_code);
                    o.base_offset = p.base_offset;
                    o.log_append_time_ms = p.log_append_time_ms;
                    if version >= 5 {
                        o.log_start_offset = p.log_start_offset;
                    }
                    if version >= 8 && !p.error_message.is_empty() {
                        o.error_message = Some(kstr(p.error_message));
                    }
                    o
                })
                .collect();
            o
        })
        .collect();
    out
}
