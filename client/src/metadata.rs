//! The metadata cache: brokers, topics, partitions and their leaders, as last told by a
//! broker. It is an immutable snapshot swapped as a whole on refresh, so readers never
//! see half an update.

use std::collections::HashMap;

use crate::fasthash::FastMap;
use std::sync::Arc;
use std::time::Instant;

use weir_protocol::native::v1::MetadataResponse;
use weir_protocol::ErrorCode;

/// One partition as metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMeta {
    /// Partition index.
    pub partition: i32,
    /// Leader node id, -1 if none.
    pub leader: i32,
    /// Leader epoch.
    pub leader_epoch: i32,
    /// Replica node ids.
    pub replicas: Vec<i32>,
    /// In-sync replica node ids.
    pub isr: Vec<i32>,
    /// Partition-level error.
    pub error: ErrorCode,
}

/// One topic as metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMeta {
    /// Topic name.
    pub name: String,
    /// Partitions in index order.
    pub partitions: Vec<PartitionMeta>,
    /// Whether the topic is internal.
    pub is_internal: bool,
}

impl TopicMeta {
    /// Number of partitions.
    pub fn partition_count(&self) -> i32 {
        self.partitions.len() as i32
    }

    /// The leader of `partition`, if it has one.
    pub fn leader(&self, partition: i32) -> Option<i32> {
        let p = self.partitions.get(usize::try_from(partition).ok()?)?;
        (p.leader >= 0).then_some(p.leader)
    }
}

/// A snapshot of cluster metadata.
#[derive(Debug, Clone)]
pub struct ClusterView {
    /// Broker node id → `HOST:PORT`.
    pub brokers: HashMap<i32, String>,
    /// Topics by name (only those asked for, or all after a full refresh).
    pub topics: FastMap<String, Arc<TopicMeta>>,
    /// Topics the broker said do not exist at the last refresh that named them.
    pub missing: Vec<String>,
    /// When each topic was fetched.
    pub fetched_at: HashMap<String, Instant>,
}

impl ClusterView {
    /// An empty view.
    pub fn empty() -> Self {
        ClusterView {
            brokers: HashMap::new(),
            topics: FastMap::default(),
            missing: Vec::new(),
            fetched_at: HashMap::new(),
        }
    }

    /// A new view: `self` updated with `response` (taken at `now`).
    pub fn merged(&self, response: MetadataResponse, now: Instant) -> ClusterView {
        let mut next = self.clone();
        next.missing.clear();
        if !response.brokers.is_empty() {
            next.brokers = response
                .brokers
                .iter()
                .map(|b| (b.node_id, format!("{}:{}", b.host, b.port)))
                .collect();
        }
        for t in response.topics {
            let code = ErrorCode::from_i32(t.error_code);
            if code == ErrorCode::UnknownTopicOrPartition
                || code == ErrorCode::InvalidTopicException
            {
                next.topics.remove(&t.name);
                next.fetched_at.remove(&t.name);
                next.missing.push(t.name);
                continue;
            }
            let mut partitions: Vec<PartitionMeta> = t
                .partitions
                .into_iter()
                .map(|p| PartitionMeta {
                    partition: p.partition_index,
                    leader: p.leader_id,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replica_nodes,
                    isr: p.isr_nodes,
                    error: ErrorCode::from_i32(p.error_code),
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            next.fetched_at.insert(t.name.clone(), now);
            next.topics.insert(
                t.name.clone(),
                Arc::new(TopicMeta {
                    name: t.name,
                    partitions,
                    is_internal: t.is_internal,
                }),
            );
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_protocol::native::v1::{BrokerMetadata, PartitionMetadata, TopicMetadata};

    #[test]
    fn merge_replaces_topics_and_records_missing_ones() {
        let resp = MetadataResponse {
            brokers: vec![BrokerMetadata {
                node_id: 1,
                host: "127.0.0.1".into(),
                port: 9292,
                rack: None,
            }],
            topics: vec![
                TopicMetadata {
                    name: "a".into(),
                    partitions: vec![
                        PartitionMetadata {
                            partition_index: 1,
                            leader_id: 1,
                            ..Default::default()
                        },
                        PartitionMetadata {
                            partition_index: 0,
                            leader_id: -1,
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                },
                TopicMetadata {
                    name: "gone".into(),
                    error_code: 3,
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let v = ClusterView::empty().merged(resp, Instant::now());
        assert_eq!(
            v.brokers.get(&1).map(String::as_str),
            Some("127.0.0.1:9292")
        );
        let a = v
            .topics
            .get("a")
            .cloned()
            .unwrap_or_else(|| panic!("topic a"));
        assert_eq!(a.partition_count(), 2);
        assert_eq!(a.leader(0), None);
        assert_eq!(a.leader(1), Some(1));
        assert_eq!(v.missing, vec!["gone".to_string()]);
    }
}
