//! DeleteRecords (21), v0-2.

use kafka_protocol::messages::delete_records_request::DeleteRecordsRequest;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsResponse, DeleteRecordsTopicResult,
};
use weir_protocol::native::v1 as n;

use super::{code, text, topic};
use crate::kafka::error::KafkaError;
use crate::kafka::header::Header;
use crate::kafka::native::native;
use crate::kafka::KafkaCtx;

/// Moves log start offsets forward.
pub async fn handle(
    k: &KafkaCtx,
    h: &Header,
    req: DeleteRecordsRequest,
) -> Result<DeleteRecordsResponse, KafkaError> {
    let native_req = n::DeleteRecordsRequest {
        topics: req
            .topics
            .iter()
            .map(|t| n::DeleteRecordsTopic {
                name: text(&t.name.0),
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| n::DeleteRecordsPartition {
                        partition_index: p.partition_index,
                        offset: p.offset,
                    })
                    .collect(),
            })
            .collect(),
        timeout_ms: req.timeout_ms,
    };
    let r = native!(&k.broker, &h.client_id, DeleteRecords, native_req);
    let mut out = DeleteRecordsResponse::default();
    out.topics = r
        .topics
        .into_iter()
        .map(|t| {
            let mut o = DeleteRecordsTopicResult::default();
            o.name = topic(t.name);
            o.partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let mut o = DeleteRecordsPartitionResult::default();
                    o.partition_index = p.partition_index;
                    o.low_watermark = p.low_watermark;
                    o.error_code = code(p.error_code);
                    o
                })
                .collect();
            o
        })
        .collect();
    Ok(out)
}
