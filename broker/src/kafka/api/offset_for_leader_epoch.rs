//! OffsetForLeaderEpoch (23), v2-4: where the asked-for leader epoch ends, from the
//! partition's leader-epoch cache (the native handler); an epoch the log does not know is
//! answered (-1, -1), as Kafka does.

use kafka_protocol::messages::offset_for_leader_epoch_request::OffsetForLeaderEpochRequest;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderEpochResponse, OffsetForLeaderTopicResult,
};
use weir_protocol::native::v1 as n;

use super::{code, epoch, text, topic};
use crate::kafka::error::KafkaError;
use crate::kafka::header::Header;
use crate::kafka::native::native;
use crate::kafka::KafkaCtx;

/// Answers each partition.
pub async fn handle(
    k: &KafkaCtx,
    h: &Header,
    req: OffsetForLeaderEpochRequest,
) -> Result<OffsetForLeaderEpochResponse, KafkaError> {
    let native_req = n::OffsetForLeaderEpochRequest {
        replica_id: req.replica_id.0,
        topics: req
            .topics
            .iter()
            .map(|t| n::OffsetForLeaderTopic {
                name: text(&t.topic.0),
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| n::OffsetForLeaderPartition {
                        partition_index: p.partition,
                        current_leader_epoch: epoch(p.current_leader_epoch),
                        leader_epoch: p.leader_epoch,
                    })
                    .collect(),
            })
            .collect(),
    };
    let r = native!(&k.broker, &h.client_id, OffsetForLeaderEpoch, native_req);
    let mut out = OffsetForLeaderEpochResponse::default();
    out.topics = r
        .topics
        .into_iter()
        .map(|t| {
            let mut o = OffsetForLeaderTopicResult::default();
            o.topic = topic(t.name);
            o.partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let mut e = EpochEndOffset::default();
                    e.partition = p.partition_index;
                    e.error_code = code(p.error_code);
                    e.leader_epoch = p.leader_epoch;
                    e.end_offset = p.end_offset;
                    e
                })
                .collect();
            o
        })
        .collect();
    Ok(out)
}
