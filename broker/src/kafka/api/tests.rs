//! Every response builder, fed a native response with every field set, encodes at every
//! advertised version of its API: a field set on a version that lacks it would make the
//! crate refuse to encode (and the connection close) only for clients that pick that
//! version.

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Encodable, HeaderVersion};
use weir_protocol::native::v1 as n;

use super::*;
use crate::kafka::codec::encode;
use crate::kafka::header::Header;
use crate::kafka::versions::advertised;
use crate::kafka::Node;

fn each_version<R: Encodable + HeaderVersion>(key: ApiKey, build: impl Fn(i16) -> R) {
    let range = advertised(key).unwrap_or_else(|| panic!("{key:?} not advertised"));
    for version in range.min..=range.max {
        let h = Header {
            key,
            version,
            correlation_id: 1,
            client_id: String::new(),
        };
        if let Err(e) = encode(&h, &build(version)) {
            panic!("{key:?} v{version}: {e}");
        }
    }
}

fn node() -> Node {
    Node {
        id: 0,
        host: "127.0.0.1".into(),
        port: 9092,
    }
}

#[test]
fn metadata_encodes_at_every_version() {
    let native = n::MetadataResponse {
        brokers: Vec::new(),
        cluster_id: "c".into(),
        controller_id: 0,
        topics: vec![n::TopicMetadata {
            error_code: 0,
            name: "t".into(),
            topic_id: vec![7; 16].into(),
            is_internal: true,
            partitions: vec![n::PartitionMetadata {
                error_code: 0,
                partition_index: 0,
                leader_id: 0,
                leader_epoch: 3,
                replica_nodes: vec![0],
                isr_nodes: vec![0],
                offline_replicas: vec![1],
                ..Default::default()
            }],
        }],
        throttle_time_ms: 0,
    };
    each_version(ApiKey::Metadata, |v| {
        let other = Node {
            id: 1,
            host: "127.0.0.2".into(),
            port: 9093,
        };
        metadata::response(&[node(), other], v, native.clone())
    });
}

#[test]
fn produce_fetch_list_offsets_encode_at_every_version() {
    let produce = n::ProduceResponse {
        responses: vec![n::TopicProduceResponse {
            name: "t".into(),
            partition_responses: vec![n::PartitionProduceResponse {
                index: 0,
                error_code: 10,
                base_offset: 5,
                log_append_time_ms: 9,
                log_start_offset: 2,
                error_message: "too large".into(),
            }],
        }],
        throttle_time_ms: 0,
    };
    each_version(ApiKey::Produce, |v| produce::response(v, produce.clone()));

    let fetch = n::FetchResponse {
        error_code: 0,
        responses: vec![n::FetchableTopicResponse {
            topic: "t".into(),
            partitions: vec![n::FetchPartitionData {
                partition_index: 0,
                error_code: 0,
                high_watermark: 10,
                last_stable_offset: 10,
                log_start_offset: 1,
                records: Bytes::from_static(b"batches"),
            }],
        }],
        throttle_time_ms: 0,
    };
    each_version(ApiKey::Fetch, |v| fetch::response(v, fetch.clone()));

    let offsets = n::ListOffsetsResponse {
        topics: vec![n::ListOffsetsTopicResponse {
            name: "t".into(),
            partitions: vec![n::ListOffsetsPartitionResponse {
                partition_index: 0,
                error_code: 0,
                timestamp: 5,
                offset: 6,
                leader_epoch: 2,
            }],
        }],
        throttle_time_ms: 0,
    };
    each_version(ApiKey::ListOffsets, |v| {
        list_offsets::response(v, offsets.clone())
    });
}

#[test]
fn group_responses_encode_at_every_version() {
    let find = n::FindCoordinatorResponse {
        error_code: 15,
        error_message: "not yet".into(),
        ..Default::default()
    };
    each_version(ApiKey::FindCoordinator, |v| {
        find_coordinator::response(Some(&node()), v, find.clone())
    });
    let found = n::FindCoordinatorResponse {
        node_id: 0,
        ..Default::default()
    };
    each_version(ApiKey::FindCoordinator, |v| {
        find_coordinator::response(Some(&node()), v, found.clone())
    });

    let join = n::JoinGroupResponse {
        error_code: 0,
        error_message: String::new(),
        generation_id: 1,
        protocol_type: "kafka/consumer".into(),
        protocol_name: "range".into(),
        leader: "m1".into(),
        member_id: "m1".into(),
        members: vec![n::JoinGroupMember {
            member_id: "m1".into(),
            group_instance_id: Some("i1".into()),
            metadata: Bytes::from_static(b"sub"),
        }],
        throttle_time_ms: 0,
    };
    each_version(ApiKey::JoinGroup, |v| join_group::response(v, join.clone()));

    let sync = n::SyncGroupResponse {
        error_code: 0,
        protocol_name: "range".into(),
        assigned_partitions: vec![n::TopicPartitions {
            topic: "t".into(),
            partitions: vec![0, 1],
        }],
        ..Default::default()
    };
    each_version(ApiKey::SyncGroup, |v| {
        sync_group::response(v, Some("consumer".into()), sync.clone())
    });

    let leave = n::LeaveGroupResponse {
        error_code: 0,
        members: vec![n::LeaveGroupMemberResponse {
            member_id: "m1".into(),
            group_instance_id: Some("i1".into()),
            error_code: 25,
        }],
        throttle_time_ms: 0,
    };
    each_version(ApiKey::LeaveGroup, |v| {
        leave_group::response(v, leave.clone())
    });

    let fetch = n::OffsetFetchResponse {
        error_code: 0,
        topics: vec![n::OffsetFetchTopicResponse {
            name: "t".into(),
            partitions: vec![n::OffsetFetchPartitionResponse {
                partition_index: 0,
                committed_offset: 5,
                committed_leader_epoch: 1,
                metadata: "m".into(),
                error_code: 0,
            }],
        }],
        throttle_time_ms: 0,
    };
    each_version(ApiKey::OffsetFetch, |v| {
        if v >= 8 {
            let mut out = kafka_protocol::messages::OffsetFetchResponse::default();
            out.groups = vec![offset_fetch::group_response("g".into(), fetch.clone())];
            out
        } else {
            offset_fetch::response(v, fetch.clone())
        }
    });

    let describe = n::DescribeGroupsResponse {
        groups: vec![n::DescribedGroup {
            error_code: 0,
            group_id: "g".into(),
            group_state: "Stable".into(),
            protocol_type: "kafka/consumer".into(),
            protocol_data: "range".into(),
            generation_id: 1,
            members: vec![n::DescribedGroupMember {
                member_id: "m1".into(),
                group_instance_id: Some("i1".into()),
                client_id: "c".into(),
                client_host: "h".into(),
                member_metadata: Bytes::from_static(b"sub"),
                member_assignment: Bytes::new(),
                assignment: vec![n::TopicPartitions {
                    topic: "t".into(),
                    partitions: vec![0],
                }],
            }],
            offsets: Vec::new(),
        }],
        throttle_time_ms: 0,
    };
    each_version(ApiKey::DescribeGroups, |v| {
        describe_groups::response(v, describe.clone())
    });
}

/// KIP-848 responses, built from a real consumer group, encode at every version; topic
/// ids are those of the metadata image.
#[test]
fn consumer_group_responses_encode_at_every_version() {
    use crate::group::consumer::{ConsumerGroup, Heartbeat, HeartbeatReply};
    use crate::group::{GroupConfig, TopicPartition};
    use std::collections::BTreeMap;

    let mut image = crate::metadata::MetadataImage::new(0);
    image.topics.insert(
        "t".into(),
        crate::metadata::TopicImage {
            id: Bytes::from(vec![7; 16]),
            partitions: Vec::new(),
            configs: Default::default(),
        },
    );
    let ids = TopicIds::new(&image);
    assert_eq!(ids.name(&ids.id("t")), Some("t"));
    assert!(!ids.id("t").is_nil());
    assert!(ids.id("unknown").is_nil());

    let reply = HeartbeatReply {
        member_id: "m".into(),
        member_epoch: 3,
        heartbeat_interval_ms: 500,
        assignment: Some(vec![
            TopicPartition::new("t", 1),
            TopicPartition::new("t", 0),
        ]),
    };
    let r = consumer_group_heartbeat::response(&ids, reply.clone());
    let a = r.assignment.as_ref().unwrap();
    assert_eq!(a.topic_partitions[0].topic_id, ids.id("t"));
    assert_eq!(a.topic_partitions[0].partitions, vec![0, 1]);
    each_version(ApiKey::ConsumerGroupHeartbeat, |_| {
        consumer_group_heartbeat::response(&ids, reply.clone())
    });

    let counts: BTreeMap<String, u32> = [("t".to_string(), 2)].into();
    let mut c = ConsumerGroup::new(GroupConfig::default());
    c.heartbeat(
        0,
        Heartbeat {
            member_id: "m".into(),
            member_epoch: 0,
            subscribed_topics: Some(vec!["t".into()]),
            ..Heartbeat::default()
        },
        &counts,
    )
    .unwrap();
    each_version(ApiKey::ConsumerGroupDescribe, |v| {
        let mut out = kafka_protocol::messages::ConsumerGroupDescribeResponse::default();
        out.groups = vec![consumer_group_describe::described(&ids, v, "g", &c)];
        out
    });
}

#[test]
fn admin_responses_encode_at_every_version() {
    let create = n::CreateTopicsResponse {
        topics: vec![n::CreatableTopicResult {
            name: "t".into(),
            error_code: 36,
            error_message: "exists".into(),
            topic_id: vec![1; 16].into(),
            num_partitions: 3,
            replication_factor: 1,
        }],
        throttle_time_ms: 0,
    };
    each_version(ApiKey::CreateTopics, |v| {
        create_topics::response(v, create.clone())
    });

    let describe = n::DescribeConfigsResponse {
        results: vec![n::DescribeConfigsResult {
            error_code: 0,
            error_message: String::new(),
            resource_type: 2,
            resource_name: "t".into(),
            configs: vec![n::DescribeConfigsEntry {
                name: "retention.ms".into(),
                value: Some("1".into()),
                read_only: false,
                config_source: 1,
                is_sensitive: false,
                is_default: false,
            }],
        }],
        throttle_time_ms: 0,
    };
    each_version(ApiKey::DescribeConfigs, |v| {
        describe_configs::response(v, describe.clone())
    });
}

#[test]
fn api_versions_lists_every_advertised_api() {
    let resp = api_versions::supported();
    assert_eq!(
        resp.api_keys.len(),
        crate::kafka::versions::ADVERTISED.len()
    );
    each_version(ApiKey::ApiVersions, |_| api_versions::supported());
}
