//! One file per Kafka API. Each `handle` turns the Kafka request into the native
//! handler's request, runs it through [`super::native`], and turns the answer back; the
//! response-building half is a pure function of the native response and the version, so
//! unit tests encode it at every advertised version.

pub mod alter_configs;
pub mod api_versions;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod metadata;
pub mod offset_commit;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod sync_group;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::messages::{GroupId, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::group::TopicPartition;
use crate::metadata::MetadataImage;

/// A Kafka string as an owned `String`.
pub fn text(s: &StrBytes) -> String {
    s.as_str().to_string()
}

/// An owned string as a Kafka string.
pub fn kstr(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

/// A topic name for a response.
pub fn topic(s: impl Into<String>) -> TopicName {
    TopicName(kstr(s))
}

/// A group id as a `String`.
pub fn group(g: &GroupId) -> String {
    text(&g.0)
}

/// A native error code (Kafka's numbers in an i32) as Kafka's i16.
pub fn code(c: i32) -> i16 {
    i16::try_from(c).unwrap_or(-1)
}

/// Kafka's "no epoch" (-1) as the native `None`.
pub fn epoch(e: i32) -> Option<i32> {
    (e >= 0).then_some(e)
}

/// A native topic id (16 raw bytes, empty when unknown) as a Kafka uuid.
pub fn to_uuid(b: &[u8]) -> uuid::Uuid {
    <[u8; 16]>::try_from(b).map_or(uuid::Uuid::nil(), uuid::Uuid::from_bytes)
}

/// Topic names and their Kafka ids, both ways, from one metadata image (the ids Metadata
/// reports). KIP-848 assignments and Metadata-by-id requests speak ids.
#[derive(Debug, Default)]
pub struct TopicIds {
    by_name: HashMap<String, uuid::Uuid>,
    by_id: HashMap<uuid::Uuid, String>,
}

impl TopicIds {
    /// The ids of every topic in `image` (topics without a valid id are left out).
    pub fn new(image: &MetadataImage) -> Self {
        let mut ids = TopicIds::default();
        for (name, t) in &image.topics {
            let id = to_uuid(&t.id);
            if !id.is_nil() {
                ids.by_name.insert(name.clone(), id);
                ids.by_id.insert(id, name.clone());
            }
        }
        ids
    }

    /// The id of `name` (nil when unknown).
    pub fn id(&self, name: &str) -> uuid::Uuid {
        self.by_name.get(name).copied().unwrap_or_default()
    }

    /// The topic named by `id`.
    pub fn name(&self, id: &uuid::Uuid) -> Option<&str> {
        self.by_id.get(id).map(String::as_str)
    }

    /// `parts` grouped by topic: (id, partitions), topics in name order, partitions sorted.
    pub fn by_topic(&self, parts: &[TopicPartition]) -> Vec<(uuid::Uuid, Vec<i32>)> {
        self.by_topic_named(parts)
            .into_iter()
            .map(|(id, _, ps)| (id, ps))
            .collect()
    }

    /// [`TopicIds::by_topic`] with the names too.
    pub fn by_topic_named(&self, parts: &[TopicPartition]) -> Vec<(uuid::Uuid, String, Vec<i32>)> {
        let mut grouped: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for tp in parts {
            grouped.entry(&tp.topic).or_default().push(tp.partition);
        }
        grouped
            .into_iter()
            .map(|(name, mut ps)| {
                ps.sort_unstable();
                (self.id(name), name.to_string(), ps)
            })
            .collect()
    }
}
