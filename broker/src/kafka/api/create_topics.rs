//! CreateTopics (19), v2-7.

use kafka_protocol::messages::create_topics_request::CreateTopicsRequest;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicResult, CreateTopicsResponse,
};
use weir_protocol::native::v1 as n;

use super::{code, kstr, text, to_uuid, topic};
use crate::kafka::error::KafkaError;
use crate::kafka::header::Header;
use crate::kafka::native::native;
use crate::kafka::KafkaCtx;

/// Creates the topics.
pub async fn handle(
    k: &KafkaCtx,
    h: &Header,
    req: CreateTopicsRequest,
) -> Result<CreateTopicsResponse, KafkaError> {
    let native_req = n::CreateTopicsRequest {
        topics: req
            .topics
            .into_iter()
            .map(|t| n::CreatableTopic {
                name: text(&t.name.0),
                num_partitions: t.num_partitions,
                replication_factor: i32::from(t.replication_factor),
                configs: t
                    .configs
                    .into_iter()
                    .map(|c| n::ConfigEntry {
                        name: text(&c.name),
                        value: c.value.as_ref().map(text).unwrap_or_default(),
                    })
                    .collect(),
            })
            .collect(),
        timeout_ms: req.timeout_ms,
        validate_only: req.validate_only,
    };
    let r = native!(&k.broker, &h.client_id, CreateTopics, native_req);
    Ok(response(h.version, r))
}

/// The Kafka answer for a native one.
pub fn response(version: i16, r: n::CreateTopicsResponse) -> CreateTopicsResponse {
    let mut out = CreateTopicsResponse::default();
    out.topics = r
        .topics
        .into_iter()
        .map(|t| {
            let mut o = CreatableTopicResult::default();
            o.name = topic(t.name);
            o.error_code = code(t.error_code);
            if !t.error_message.is_empty() {
                o.error_message = Some(kstr(t.error_message));
            }
            if version >= 5 {
                o.num_partitions = t.num_partitions;
                o.replication_factor = i16::try_from(t.replication_factor).unwrap_or(-1);
            }
            if version >= 7 {
                o.topic_id = to_uuid(&t.topic_id);
            }
            o
        })
        .collect();
    out
}
