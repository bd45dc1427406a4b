//! Small value types shared by the group coordinator's pure logic.

use std::collections::{BTreeMap, HashMap};

/// Milliseconds since the Unix epoch (or any monotonic origin the caller picks); the
/// coordinator never reads a clock itself.
pub type Millis = i64;

/// One partition of one topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
}

impl TopicPartition {
    /// `topic`/`partition` as a value.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// How many partitions a topic has right now; `None` if it does not exist. The I/O layer
/// passes its metadata image; tests pass a map.
pub trait PartitionCounts {
    /// Partition count of `topic`, or `None` when the topic is unknown.
    fn partition_count(&self, topic: &str) -> Option<u32>;
}

impl PartitionCounts for HashMap<String, u32> {
    fn partition_count(&self, topic: &str) -> Option<u32> {
        self.get(topic).copied()
    }
}

impl PartitionCounts for BTreeMap<String, u32> {
    fn partition_count(&self, topic: &str) -> Option<u32> {
        self.get(topic).copied()
    }
}

impl<F: Fn(&str) -> Option<u32>> PartitionCounts for F {
    fn partition_count(&self, topic: &str) -> Option<u32> {
        self(topic)
    }
}
