//! DeleteTopics (20), v1-5 (by name).

use kafka_protocol::messages::delete_topics_request::DeleteTopicsRequest;
use kafka_protocol::messages::delete_topics_response::{
    DeletableTopicResult, DeleteTopicsResponse,
};
use weir_protocol::native::v1 as n;

use super::{code, kstr, text, topic};
use crate::kafka::error::KafkaError;
use crate::kafka::header::Header;
use crate::kafka::native::native;
use crate::kafka::KafkaCtx;

/// Deletes the topics.
pub async fn handle(
    k: &KafkaCtx,
    h: &Header,
    req: DeleteTopicsRequest,
) -> Result<DeleteTopicsResponse, KafkaError> {
    let native_req = n::DeleteTopicsRequest {
        topic_names: req.topic_names.iter().map(|t| text(&t.0)).collect(),
        timeout_ms: req.timeout_ms,
    };
    let r = native!(&k.broker, &h.client_id, DeleteTopics, native_req);
    let mut out = DeleteTopicsResponse::default();
    out.responses = r
        .responses
        .into_iter()
        .map(|t| {
            let mut o = DeletableTopicResult::default();
            o.name = Some(topic(t.name));
            o.error_code = code(t.error_code);
            if h.version >= 5 && !t.error_message.is_empty() {
                o.error_message = Some(kstr(t.error_message));
            }
            o
        })
        .collect();
    Ok(out)
}
