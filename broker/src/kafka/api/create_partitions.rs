//! CreatePartitions (37), v0-3. Manual replica assignments are not supported (one node):
//! they are ignored.

use kafka_protocol::messages::create_partitions_request::CreatePartitionsRequest;
use kafka_protocol::messages::create_partitions_response::{
    CreatePartitionsResponse, CreatePartitionsTopicResult,
};
use weir_protocol::native::v1 as n;

use super::{code, kstr, text, topic};
use crate::kafka::error::KafkaError;
use crate::kafka::header::Header;
use crate::kafka::native::native;
use crate::kafka::KafkaCtx;

/// Grows the topics.
pub async fn handle(
    k: &KafkaCtx,
    h: &Header,
    req: CreatePartitionsRequest,
) -> Result<CreatePartitionsResponse, KafkaError> {
    let native_req = n::CreatePartitionsRequest {
        topics: req
            .topics
            .iter()
            .map(|t| n::CreatePartitionsTopic {
                name: text(&t.name.0),
                count: t.count,
            })
            .collect(),
        timeout_ms: req.timeout_ms,
        validate_only: req.validate_only,
    };
    let r = native!(&k.broker, &h.client_id, CreatePartitions, native_req);
    let mut out = CreatePartitionsResponse::default();
    out.results = r
        .results
        .into_iter()
        .map(|t| {
            let mut o = CreatePartitionsTopicResult::default();
            o.name = topic(t.name);
            o.error_code = code(t.error_code);
            if !t.error_message.is_empty() {
                o.error_message = Some(kstr(t.error_message));
            }
            o
        })
        .collect();
    Ok(out)
}
