//! OffsetFetch (9), v1-7 (one group per request). Nothing committed reads as offset -1
//! with metadata "" and no error; the committed metadata string round-trips (P22).

use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequest;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponse, OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use weir_protocol::native::v1 as n;

use super::{code, group, kstr, text, topic};
use crate::kafka::error::KafkaError;
use crate::kafka::header::Header;
use crate::kafka::native::native;
use crate::kafka::KafkaCtx;

/// Reads committed offsets.
pub async fn handle(
    k: &KafkaCtx,
    h: &Header,
    req: OffsetFetchRequest,
) -> Result<OffsetFetchResponse, KafkaError> {
    let all_topics = req.topics.is_none();
    let native_req = n::OffsetFetchRequest {
        group_id: group(&req.group_id),
        topics: req
            .topics
            .unwrap_or_default()
            .into_iter()
            .map(|t| n::OffsetFetchTopic {
                name: text(&t.name.0),
                partition_indexes: t.partition_indexes,
            })
            .collect(),
        all_topics,
        require_stable: req.require_stable,
    };
    let r = native!(&k.broker, &h.client_id, OffsetFetch, native_req);
    Ok(response(h.version, r))
}

/// The Kafka answer for a native one.
pub fn response(version: i16, r: n::OffsetFetchResponse) -> OffsetFetchResponse {
    let mut out = OffsetFetchResponse::default();
    let top = code(r.error_code);
    if version >= 2 {
        out.error_code = top;
    }
    out.topics = r
        .topics
        .into_iter()
        .map(|t| {
            let mut o = OffsetFetchResponseTopic::default();
            o.name = topic(t.name);
            o.partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let mut o = OffsetFetchResponsePartition::default();
                    o.partition_index = p.partition_index;
                    o.committed_offset = p.committed_offset;
                    if version >= 5 {
                        o.committed_leader_epoch = p.committed_leader_epoch;
                    }
                    o.metadata = Some(kstr(p.metadata));
                    // v1 has no top-level code: a group error shows on each partition.
                    o.error_code = if p.error_code == 0 && version < 2 {
                        top
                    } else {
                        code(p.error_code)
                    };
                    o
                })
                .collect();
            o
        })
        .collect();
    out
}
