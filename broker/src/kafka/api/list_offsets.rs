//! ListOffsets (2), v1-7: earliest (-2), latest (-1), by timestamp, or (v7) the record
//! with the largest timestamp (-3).

use kafka_protocol::messages::list_offsets_request::ListOffsetsRequest;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsResponse, ListOffsetsTopicResponse,
};
use weir_protocol::native::v1 as n;

use super::{code, epoch, text, topic};
use crate::kafka::error::KafkaError;
use crate::kafka::header::Header;
use crate::kafka::native::native;
use crate::kafka::KafkaCtx;

/// Looks the offsets up.
pub async fn handle(
    k: &KafkaCtx,
    h: &Header,
    req: ListOffsetsRequest,
) -> Result<ListOffsetsResponse, KafkaError> {
    let native_req = n::ListOffsetsRequest {
        isolation_level: i32::from(req.isolation_level),
        topics: req
            .topics
            .into_iter()
            .map(|t| n::ListOffsetsTopic {
                name: text(&t.name.0),
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| n::ListOffsetsPartition {
                        partition_index: p.partition_index,
                        current_leader_epoch: epoch(p.current_leader_epoch),
                        timestamp: p.timestamp,
                    })
                    .collect(),
            })
            .collect(),
    };
    let r = native!(&k.broker, &h.client_id, ListOffsets, native_req);
    Ok(response(h.version, r))
}

/// The Kafka answer for a native one.
pub fn response(version: i16, r: n::ListOffsetsResponse) -> ListOffsetsResponse {
    let mut out = ListOffsetsResponse::default();
    out.topics = r
        .topics
        .into_iter()
        .map(|t| {
            let mut o = ListOffsetsTopicResponse::default();
            o.name = topic(t.name);
            o.partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let mut o = ListOffsetsPartitionResponse::default();
                    o.partition_index = p.partition_index;
                    o.error_code = code(p.error_code);
                    o.timestamp = p.timestamp;
                    o.offset = p.offset;
                    if version >= 4 {
                        o.leader_epoch = p.leader_epoch;
                    }
                    o
                })
                .collect();
            o
        })
        .collect();
    out
}
