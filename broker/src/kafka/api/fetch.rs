//! Fetch (1), v4-12, sessionless: a request that asks for a fetch session (KIP-227) is
//! answered with session id 0, which declines it; the client stays on full fetches. Every
//! requested partition is in the answer (P7), records are empty bytes rather than null
//! (P5), the preferred read replica is -1 (P4), and no transaction is ever aborted (Weir
//! has no transactions yet), so the aborted list is empty.

use kafka_protocol::messages::fetch_request::FetchRequest;
use kafka_protocol::messages::fetch_response::{
    FetchResponse, FetchableTopicResponse, PartitionData,
};
use weir_protocol::native::v1 as n;

use super::{code, epoch, text, topic};
use crate::kafka::error::KafkaError;
use crate::kafka::header::Header;
use crate::kafka::native::call_zero_copy;
use crate::kafka::KafkaCtx;
use weir_storage::FileSlice;

/// Reads (long-polling in the native handler). Besides the response, per partition in
/// response order: records left in segment files (that partition's `records` is empty).
pub async fn handle(
    k: &KafkaCtx,
    h: &Header,
    req: FetchRequest,
) -> Result<(FetchResponse, Vec<Option<FileSlice>>), KafkaError> {
    let native_req = n::FetchRequest {
        replica_id: None,
        max_wait_ms: req.max_wait_ms,
        min_bytes: req.min_bytes,
        max_bytes: req.max_bytes,
        isolation_level: i32::from(req.isolation_level),
        topics: req
            .topics
            .into_iter()
            .map(|t| n::FetchTopic {
                topic: text(&t.topic.0),
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| n::FetchPartition {
                        partition: p.partition,
                        current_leader_epoch: epoch(p.current_leader_epoch),
                        fetch_offset: p.fetch_offset,
                        partition_max_bytes: p.partition_max_bytes,
                    })
                    .collect(),
            })
            .collect(),
    };
    let body = n::request_envelope::Body::Fetch(native_req);
    match call_zero_copy(&k.broker, &h.client_id, body).await? {
        Some((n::response_envelope::Body::Fetch(r), in_file)) => {
            Ok((response(h.version, r), in_file))
        }
        _ => Err(KafkaError::Internal(
            "native Fetch handler gave no Fetch response".into(),
        )),
    }
}

/// The Kafka answer for a native one.
pub fn response(version: i16, r: n::FetchResponse) -> FetchResponse {
    let mut out = FetchResponse::default();
    if version >= 7 {
        out.error_code = code(r.error_code);
    }
    out.responses = r
        .responses
        .into_iter()
        .map(|t| {
            let mut o = FetchableTopicResponse::default();
            o.topic = topic(t.topic);
            o.partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let mut o = PartitionData::default();
                    o.partition_index = p.partition_index;
                    o.error_code = code(p.error_code);
                    o.high_watermark = p.high_watermark;
                    o.last_stable_offset = p.last_stable_offset;
                    if version >= 5 {
                        o.log_start_offset = p.log_start_offset;
                    }
                    o.aborted_transactions = Some(Vec::new());
                    o.records = Some(p.records);
                    o
                })
                .collect();
            o
        })
        .collect();
    out
}
