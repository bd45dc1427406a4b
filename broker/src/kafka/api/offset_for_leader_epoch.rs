//! OffsetForLeaderEpoch (23), v2-4: where the asked-for leader epoch ends. Weir keeps no
//! epoch history yet, so every epoch up to the current one ends at the log end (correct
//! while a partition has had one leader epoch, which holds on a single node); a newer
//! epoch than the broker's is unknown (-1, -1), as Kafka answers. The current-epoch fence
//! is the native ListOffsets check.

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

/// Kafka's special ListOffsets timestamp for the high watermark.
const LATEST: i64 = -1;

/// Answers each partition.
pub async fn handle(
    k: &KafkaCtx,
    h: &Header,
    req: OffsetForLeaderEpochRequest,
) -> Result<OffsetForLeaderEpochResponse, KafkaError> {
    let asked: Vec<Vec<i32>> = req
        .topics
        .iter()
        .map(|t| t.partitions.iter().map(|p| p.leader_epoch).collect())
        .collect();
    let native_req = n::ListOffsetsRequest {
        isolation_level: 0,
        topics: req
            .topics
            .iter()
            .map(|t| n::ListOffsetsTopic {
                name: text(&t.topic.0),
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| n::ListOffsetsPartition {
                        partition_index: p.partition,
                        current_leader_epoch: epoch(p.current_leader_epoch),
                        timestamp: LATEST,
                    })
                    .collect(),
            })
            .collect(),
    };
    let r = native!(&k.broker, &h.client_id, ListOffsets, native_req);
    let mut out = OffsetForLeaderEpochResponse::default();
    out.topics = r
        .topics
        .into_iter()
        .zip(asked)
        .map(|(t, asked)| {
            let mut o = OffsetForLeaderTopicResult::default();
            o.topic = topic(t.name);
            o.partitions = t
                .partitions
                .into_iter()
                .zip(asked)
                .map(|(p, asked)| {
                    let mut e = EpochEndOffset::default();
                    e.partition = p.partition_index;
                    e.error_code = code(p.error_code);
                    if p.error_code == 0 && asked <= p.leader_epoch {
                        e.leader_epoch = p.leader_epoch;
                        e.end_offset = p.offset;
                    } else {
                        e.leader_epoch = -1;
                        e.end_offset = -1;
                    }
                    e
                })
                .collect();
            o
        })
        .collect();
    Ok(out)
}
