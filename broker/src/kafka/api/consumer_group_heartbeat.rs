//! ConsumerGroupHeartbeat (68), v0-1: KIP-848 consumer groups (`group.protocol=consumer`).
//! There is no native API to bridge to (native consumers use the native group protocol),
//! so this calls the coordinator directly. Assignments travel as topic ids, which must be
//! those Metadata reports (librdkafka looks the ids up with a Metadata request).

use kafka_protocol::messages::consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest;
use kafka_protocol::messages::consumer_group_heartbeat_response::{
    Assignment, ConsumerGroupHeartbeatResponse, TopicPartitions,
};
use weir_protocol::ErrorCode;

use super::{group, kstr, text, TopicIds};
use crate::group::consumer::{Heartbeat, HeartbeatReply};
use crate::group::TopicPartition;
use crate::kafka::error::KafkaError;
use crate::kafka::header::Header;
use crate::kafka::KafkaCtx;

/// Joins, keeps alive, reconciles or leaves.
pub async fn handle(
    k: &KafkaCtx,
    h: &Header,
    req: ConsumerGroupHeartbeatRequest,
) -> Result<ConsumerGroupHeartbeatResponse, KafkaError> {
    let ids = TopicIds::new(&k.broker.controller.image());
    let group_id = group(&req.group_id);
    if req.subscribed_topic_regex.is_some() && req.subscribed_topic_names.is_none() {
        // Pattern subscriptions are not resolved by the coordinator yet.
        return Ok(error(
            ErrorCode::InvalidRequest,
            "subscribed_topic_regex is not supported by this broker".into(),
        ));
    }
    let hb = request(&ids, h, req);
    Ok(match k.broker.groups.consumer_heartbeat(&group_id, hb) {
        Ok(reply) => response(&ids, reply),
        Err(e) => error(e.code(), e.to_string()),
    })
}

/// The coordinator's heartbeat for a Kafka one. Owned partitions of topics this broker
/// does not know (deleted since) are left out: nobody can be holding them.
pub fn request(ids: &TopicIds, h: &Header, req: ConsumerGroupHeartbeatRequest) -> Heartbeat {
    Heartbeat {
        member_id: text(&req.member_id),
        member_epoch: req.member_epoch,
        instance_id: req.instance_id.as_ref().map(text),
        rack_id: req.rack_id.as_ref().map(text),
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        subscribed_topics: req
            .subscribed_topic_names
            .map(|ts| ts.iter().map(|t| text(&t.0)).collect()),
        server_assignor: req.server_assignor.as_ref().map(text),
        owned: req.topic_partitions.map(|tps| {
            tps.iter()
                .filter_map(|t| Some((ids.name(&t.topic_id)?, &t.partitions)))
                .flat_map(|(name, ps)| ps.iter().map(move |p| TopicPartition::new(name, *p)))
                .collect()
        }),
        client_id: h.client_id.clone(),
        client_host: String::new(),
    }
}

/// The Kafka answer for the coordinator's.
pub fn response(ids: &TopicIds, r: HeartbeatReply) -> ConsumerGroupHeartbeatResponse {
    let mut out = ConsumerGroupHeartbeatResponse::default();
    out.member_id = Some(kstr(r.member_id));
    out.member_epoch = r.member_epoch;
    out.heartbeat_interval_ms = r.heartbeat_interval_ms;
    out.assignment = r.assignment.map(|parts| {
        let mut a = Assignment::default();
        a.topic_partitions = ids
            .by_topic(&parts)
            .into_iter()
            .map(|(id, partitions)| {
                let mut t = TopicPartitions::default();
                t.topic_id = id;
                t.partitions = partitions;
                t
            })
            .collect();
        a
    });
    out
}

fn error(code: ErrorCode, message: String) -> ConsumerGroupHeartbeatResponse {
    let mut out = ConsumerGroupHeartbeatResponse::default();
    out.error_code = code.code();
    out.error_message = Some(kstr(message));
    out
}
