//! ConsumerGroupDescribe (69), v0-1. A classic or unknown group is GROUP_ID_NOT_FOUND, as
//! Kafka answers; admin clients then fall back to DescribeGroups (librdkafka's
//! `rd_kafka_admin_describe_consumer_group_do_fallback_to_classic`).

use kafka_protocol::messages::consumer_group_describe_request::ConsumerGroupDescribeRequest;
use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, ConsumerGroupDescribeResponse, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::GroupId;
use weir_protocol::ErrorCode;

use super::{group, kstr, topic, TopicIds};
use crate::group::consumer::ConsumerGroup;
use crate::group::TopicPartition;
use crate::kafka::error::KafkaError;
use crate::kafka::header::Header;
use crate::kafka::KafkaCtx;

/// Describes each group.
pub async fn handle(
    k: &KafkaCtx,
    h: &Header,
    req: ConsumerGroupDescribeRequest,
) -> Result<ConsumerGroupDescribeResponse, KafkaError> {
    let ids = TopicIds::new(&k.broker.controller.image());
    let mut out = ConsumerGroupDescribeResponse::default();
    out.groups = req
        .group_ids
        .iter()
        .map(|g| {
            let id = group(g);
            match k.broker.groups.describe_consumer(&id) {
                Ok(c) => described(&ids, h.version, &id, &c),
                Err(code) => {
                    let mut d = DescribedGroup::default();
                    d.group_id = GroupId(kstr(id));
                    d.error_code = code.code();
                    if code == ErrorCode::GroupIdNotFound {
                        d.error_message = Some(kstr("not a consumer group"));
                    }
                    d
                }
            }
        })
        .collect();
    Ok(out)
}

/// One group as Kafka describes it.
pub fn described(ids: &TopicIds, version: i16, id: &str, c: &ConsumerGroup) -> DescribedGroup {
    let mut d = DescribedGroup::default();
    d.group_id = GroupId(kstr(id));
    d.group_state = kstr(c.state_name());
    d.group_epoch = c.group_epoch();
    d.assignment_epoch = c.assignment_epoch();
    d.assignor_name = kstr(c.assignor_name());
    d.authorized_operations = i32::MIN;
    d.members = c
        .members()
        .values()
        .map(|m| {
            let mut o = Member::default();
            o.member_id = kstr(m.id.clone());
            o.instance_id = m.instance_id.clone().map(kstr);
            o.rack_id = m.rack_id.clone().map(kstr);
            o.member_epoch = m.member_epoch;
            o.client_id = kstr(m.client_id.clone());
            o.client_host = kstr(m.client_host.clone());
            o.subscribed_topic_names = m.subscribed.iter().map(|t| topic(t.clone())).collect();
            let held: Vec<TopicPartition> = m.assigned.iter().cloned().collect();
            o.assignment = assignment(ids, &held);
            let target: Vec<TopicPartition> = c.target(&m.id).into_iter().collect();
            o.target_assignment = assignment(ids, &target);
            if version >= 1 {
                // 1: a member speaking the consumer protocol (0 would be a classic one).
                o.member_type = 1;
            }
            o
        })
        .collect();
    d
}

fn assignment(ids: &TopicIds, parts: &[TopicPartition]) -> Assignment {
    let mut a = Assignment::default();
    a.topic_partitions = ids
        .by_topic_named(parts)
        .into_iter()
        .map(|(id, name, partitions)| {
            let mut t = TopicPartitions::default();
            t.topic_id = id;
            t.topic_name = topic(name);
            t.partitions = partitions;
            t
        })
        .collect();
    a
}
