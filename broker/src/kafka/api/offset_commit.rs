//! OffsetCommit (8), v2-9. For a KIP-848 consumer group, `generation_id_or_member_epoch`
//! is the member epoch (v9, as librdkafka sends it); the coordinator checks it against the
//! member's (STALE_MEMBER_EPOCH, UNKNOWN_MEMBER_ID).

use kafka_protocol::messages::offset_commit_request::OffsetCommitRequest;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponse, OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use weir_protocol::native::v1 as n;

use super::{code, epoch, group, text, topic};
use crate::kafka::error::KafkaError;
use crate::kafka::header::Header;
use crate::kafka::native::native;
use crate::kafka::KafkaCtx;

/// Commits the offsets (durably, as the native handler does).
pub async fn handle(
    k: &KafkaCtx,
    h: &Header,
    req: OffsetCommitRequest,
) -> Result<OffsetCommitResponse, KafkaError> {
    let native_req = n::OffsetCommitRequest {
        group_id: group(&req.group_id),
        generation_id: req.generation_id_or_member_epoch,
        member_id: text(&req.member_id),
        group_instance_id: req.group_instance_id.as_ref().map(text),
        // Negative means "broker default" (P22).
        retention_time_ms: req.retention_time_ms.max(-1),
        topics: req
            .topics
            .into_iter()
            .map(|t| n::OffsetCommitTopic {
                name: text(&t.name.0),
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| n::OffsetCommitPartition {
                        partition_index: p.partition_index,
                        committed_offset: p.committed_offset,
                        committed_leader_epoch: epoch(p.committed_leader_epoch),
                        committed_metadata: p.committed_metadata.as_ref().map(text),
                    })
                    .collect(),
            })
            .collect(),
    };
    let r = native!(&k.broker, &h.client_id, OffsetCommit, native_req);
    let mut out = OffsetCommitResponse::default();
    out.topics = r
        .topics
        .into_iter()
        .map(|t| {
            let mut o = OffsetCommitResponseTopic::default();
            o.name = topic(t.name);
            o.partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let mut o = OffsetCommitResponsePartition::default();
                    o.partition_index = p.partition_index;
                    o.error_code = code(p.error_code);
                    o
                })
                .collect();
            o
        })
        .collect();
    Ok(out)
}
