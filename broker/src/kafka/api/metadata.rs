//! Metadata (3). Brokers are every live broker at its Kafka address, from the metadata
//! image (never an empty list, P20): the native answer names native addresses, which a
//! Kafka client cannot speak to. Topics come from the native handler. Topic
//! auto-creation follows the broker's `topics.auto_create` (the native handler checks
//! it); v0-3 imply the client allows it.

use kafka_protocol::messages::metadata_request::MetadataRequest;
use kafka_protocol::messages::metadata_response::{
    MetadataResponse, MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::BrokerId;
use weir_protocol::native::v1 as n;

use super::{code, kstr, text, to_uuid, topic, TopicIds};
use crate::kafka::error::KafkaError;
use crate::kafka::header::Header;
use crate::kafka::native::native;
use crate::kafka::{KafkaCtx, Node};

/// Describes the requested topics.
pub async fn handle(
    k: &KafkaCtx,
    h: &Header,
    req: MetadataRequest,
) -> Result<MetadataResponse, KafkaError> {
    let ids = TopicIds::new(&k.broker.controller.image());
    // v10+: a topic may be asked for by id alone (KIP-848 clients look up the ids of
    // their assignment); an id this broker does not know is UNKNOWN_TOPIC_ID.
    let mut unknown_ids = Vec::new();
    let (all_topics, topics) = match req.topics {
        None => (true, Vec::new()),
        // v0: an empty list means every topic.
        Some(t) if t.is_empty() && h.version == 0 => (true, Vec::new()),
        Some(t) => (
            false,
            t.into_iter()
                .filter_map(|t| match t.name {
                    Some(n) => Some(text(&n.0)),
                    None if t.topic_id.is_nil() => None,
                    None => {
                        let name = ids.name(&t.topic_id).map(str::to_string);
                        if name.is_none() {
                            unknown_ids.push(t.topic_id);
                        }
                        name
                    }
                })
                .collect(),
        ),
    };
    let native_req = n::MetadataRequest {
        topics,
        all_topics,
        allow_auto_topic_creation: h.version < 4 || req.allow_auto_topic_creation,
    };
    let r = native!(&k.broker, &h.client_id, Metadata, native_req);
    let mut out = response(&k.brokers(), h.version, r);
    for id in unknown_ids {
        let mut t = MetadataResponseTopic::default();
        t.error_code = weir_protocol::ErrorCode::UnknownTopicId.code();
        t.topic_id = id;
        // The name is nullable from v12 only.
        t.name = (h.version < 12).then(|| topic(""));
        out.topics.push(t);
    }
    Ok(out)
}

/// The Kafka answer for a native one, offering `brokers` (Kafka addresses).
pub fn response(brokers: &[Node], version: i16, r: n::MetadataResponse) -> MetadataResponse {
    let mut out = MetadataResponse::default();
    out.brokers = brokers
        .iter()
        .map(|node| {
            let mut b = MetadataResponseBroker::default();
            b.node_id = BrokerId(node.id);
            b.host = kstr(node.host.clone());
            b.port = node.port;
            b
        })
        .collect();
    if version >= 2 {
        out.cluster_id = Some(kstr(r.cluster_id));
    }
    if version >= 1 {
        out.controller_id = BrokerId(r.controller_id);
    }
    out.topics = r
        .topics
        .into_iter()
        .map(|t| topic_entry(version, t))
        .collect();
    out
}

fn topic_entry(version: i16, t: n::TopicMetadata) -> MetadataResponseTopic {
    let mut out = MetadataResponseTopic::default();
    out.error_code = code(t.error_code);
    out.name = Some(topic(t.name));
    if version >= 10 {
        out.topic_id = to_uuid(&t.topic_id);
    }
    if version >= 1 {
        out.is_internal = t.is_internal;
    }
    out.partitions = t
        .partitions
        .into_iter()
        .map(|p| {
            let mut o = MetadataResponsePartition::default();
            o.error_code = code(p.error_code);
            o.partition_index = p.partition_index;
            o.leader_id = BrokerId(p.leader_id);
            if version >= 7 {
                o.leader_epoch = p.leader_epoch;
            }
            o.replica_nodes = p.replica_nodes.into_iter().map(BrokerId).collect();
            o.isr_nodes = p.isr_nodes.into_iter().map(BrokerId).collect();
            if version >= 5 {
                o.offline_replicas = p.offline_replicas.into_iter().map(BrokerId).collect();
            }
            o
        })
        .collect();
    out
}
