//! The records of `__consumer_offsets` (`protocol/proto/groups.proto`): building them from
//! a group, and replaying them into groups at start. Pure: bytes in, values out.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use prost::Message;
use weir_protocol::native::groups as pb;

use super::assignor::AssignorKind;
use super::machine::Group;
use super::member::{Member, Protocol};
use super::offsets::CommittedOffset;
use super::state::GroupState;
use super::types::{Millis, TopicPartition};

/// Name of the internal topic.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Why a stored record could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The key is missing (every record of this topic has one).
    #[error("record without a key")]
    MissingKey,
    /// Key or value is not the expected protobuf.
    #[error("undecodable group record: {0}")]
    Decode(#[from] prost::DecodeError),
    /// The key names neither an offset nor a group.
    #[error("group record key of unknown type")]
    UnknownKey,
}

/// One replayed record.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupRecord {
    /// A commit (`None`: tombstone).
    Offset {
        /// Group id.
        group: String,
        /// Partition.
        tp: TopicPartition,
        /// The commit, or `None` when deleted.
        value: Option<CommittedOffset>,
    },
    /// Group metadata (`None`: the group was deleted).
    Group {
        /// Group id.
        group: String,
        /// The metadata, or `None` when deleted.
        value: Option<pb::GroupMetadataValue>,
    },
}

/// The partition of `__consumer_offsets` that holds `group`: Java's `String.hashCode` of
/// the id, sign bit cleared, modulo the partition count (what Kafka does), so the mapping
/// is stable across restarts and implementations.
pub fn partition_for(group: &str, partitions: u32) -> i32 {
    let mut h: i32 = 0;
    for unit in group.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(i32::from(unit));
    }
    let n = partitions.max(1) as i64;
    ((h & 0x7fff_ffff) as i64 % n) as i32
}

/// Key and value of a commit record.
pub fn offset_record(
    group: &str,
    tp: &TopicPartition,
    value: Option<&CommittedOffset>,
) -> (Bytes, Option<Bytes>) {
    let key = pb::GroupRecordKey {
        key: Some(pb::group_record_key::Key::Offset(pb::OffsetCommitKey {
            group: group.to_string(),
            topic: tp.topic.clone(),
            partition: tp.partition,
        })),
    };
    let value = value.map(|v| {
        Bytes::from(
            pb::OffsetCommitValue {
                offset: v.offset,
                leader_epoch: v.leader_epoch,
                metadata: v.metadata.clone(),
                commit_timestamp_ms: v.commit_timestamp_ms,
                expire_timestamp_ms: None,
            }
            .encode_to_vec(),
        )
    });
    (Bytes::from(key.encode_to_vec()), value)
}

/// Key and value of a group-metadata record; the value is a tombstone for a Dead group.
pub fn group_record(group: &Group, now: Millis) -> (Bytes, Option<Bytes>) {
    let key = pb::GroupRecordKey {
        key: Some(pb::group_record_key::Key::Group(pb::GroupMetadataKey {
            group: group.id().to_string(),
        })),
    };
    let value = (group.state() != GroupState::Dead)
        .then(|| Bytes::from(metadata_value(group, now).encode_to_vec()));
    (Bytes::from(key.encode_to_vec()), value)
}

fn to_assigned(parts: &BTreeSet<TopicPartition>) -> Vec<pb::AssignedPartitions> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in parts {
        by_topic.entry(&tp.topic).or_default().push(tp.partition);
    }
    by_topic
        .into_iter()
        .map(|(t, p)| pb::AssignedPartitions {
            topic: t.to_string(),
            partitions: p,
        })
        .collect()
}

/// The group as a GroupMetadataValue.
pub fn metadata_value(group: &Group, now: Millis) -> pb::GroupMetadataValue {
    pb::GroupMetadataValue {
        protocol_type: group.protocol_type().unwrap_or_default().to_string(),
        generation: group.generation(),
        protocol: group.protocol().map(|p| p.name().to_string()),
        leader: group.leader().map(str::to_string),
        state_timestamp_ms: now,
        members: group
            .members()
            .values()
            .map(|m| pb::MemberMetadata {
                member_id: m.id.clone(),
                group_instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                session_timeout_ms: m.session_timeout_ms,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                subscription: m.topics.iter().cloned().collect(),
                protocols: m.protocols.iter().map(|p| p.name.clone()).collect(),
                assignment: to_assigned(&m.assignment),
            })
            .collect(),
    }
}

/// Decodes one record of the topic.
pub fn decode(key: Option<&[u8]>, value: Option<&[u8]>) -> Result<GroupRecord, RecordError> {
    let key = pb::GroupRecordKey::decode(key.ok_or(RecordError::MissingKey)?)?;
    match key.key {
        Some(pb::group_record_key::Key::Offset(k)) => {
            let value = match value {
                Some(v) => {
                    let v = pb::OffsetCommitValue::decode(v)?;
                    Some(CommittedOffset {
                        offset: v.offset,
                        leader_epoch: v.leader_epoch,
                        metadata: v.metadata,
                        commit_timestamp_ms: v.commit_timestamp_ms,
                    })
                }
                None => None,
            };
            Ok(GroupRecord::Offset {
                group: k.group,
                tp: TopicPartition::new(k.topic, k.partition),
                value,
            })
        }
        Some(pb::group_record_key::Key::Group(k)) => Ok(GroupRecord::Group {
            group: k.group,
            value: value.map(pb::GroupMetadataValue::decode).transpose()?,
        }),
        None => Err(RecordError::UnknownKey),
    }
}

impl Group {
    /// Restores the group's membership from a replayed GroupMetadataValue. Members get a
    /// fresh session from `now`: they keep their assignment if they heartbeat in time.
    pub fn load_metadata(&mut self, value: &pb::GroupMetadataValue, now: Millis) {
        self.generation = value.generation;
        self.protocol_type = (!value.protocol_type.is_empty()).then(|| value.protocol_type.clone());
        self.protocol = value.protocol.as_deref().and_then(AssignorKind::from_name);
        self.leader = value.leader.clone();
        self.members.clear();
        for m in &value.members {
            let assignment: BTreeSet<TopicPartition> = m
                .assignment
                .iter()
                .flat_map(|a| {
                    a.partitions
                        .iter()
                        .map(|p| TopicPartition::new(a.topic.as_str(), *p))
                })
                .collect();
            self.members.insert(
                m.member_id.clone(),
                Member {
                    id: m.member_id.clone(),
                    instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout_ms: m.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    protocols: m
                        .protocols
                        .iter()
                        .map(|n| Protocol {
                            name: n.clone(),
                            metadata: Bytes::new(),
                        })
                        .collect(),
                    topics: m.subscription.iter().cloned().collect(),
                    reported_owned: assignment.clone(),
                    assignment,
                    revoking: BTreeSet::new(),
                    assignment_blob: None,
                    joined: false,
                    synced: true,
                    last_seen: now,
                },
            );
        }
        let state = if self.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
        self.set_state(state, now);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn partition_matches_java_string_hashcode() {
        // "group".hashCode() == 98629247 in Java.
        assert_eq!(partition_for("group", 50), 98_629_247 % 50);
        assert_eq!(partition_for("", 50), 0);
        for g in ["a", "my-group", "Ünïcode-group", "x".repeat(300).as_str()] {
            let p = partition_for(g, 50);
            assert!((0..50).contains(&p));
            assert_eq!(p, partition_for(g, 50));
        }
        assert_eq!(
            partition_for("a", 0),
            0,
            "zero partitions does not divide by zero"
        );
    }

    #[test]
    fn offset_record_round_trips_and_tombstones() {
        let tp = TopicPartition::new("t", 3);
        let v = CommittedOffset {
            offset: 42,
            leader_epoch: Some(1),
            metadata: "meta".into(),
            commit_timestamp_ms: 1000,
        };
        let (k, val) = offset_record("g", &tp, Some(&v));
        let got = decode(Some(&k), val.as_deref()).unwrap();
        assert_eq!(
            got,
            GroupRecord::Offset {
                group: "g".into(),
                tp: tp.clone(),
                value: Some(v)
            }
        );
        let (k2, none) = offset_record("g", &tp, None);
        assert_eq!(k, k2, "same key bytes, so compaction keeps only the latest");
        assert!(matches!(
            decode(Some(&k2), none.as_deref()).unwrap(),
            GroupRecord::Offset { value: None, .. }
        ));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode(None, None).is_err());
        assert!(decode(Some(&[0xff, 0xff, 0xff]), None).is_err());
        assert!(decode(Some(&[]), None).is_err());
    }
}
