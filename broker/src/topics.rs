//! The live topic table: name → topic state with its open partitions. The controller
//! replaces entries when metadata changes; handlers look partitions up.
//!
//! One std `RwLock` around the map, held only for lookups and swaps (no I/O, no await).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use weir_protocol::ErrorCode;

use crate::partition::PartitionRef;
use crate::topic_config::TopicConfig;

/// A topic as the broker serves it.
#[derive(Debug)]
pub struct TopicState {
    /// Name.
    pub name: String,
    /// 16-byte id.
    pub id: Bytes,
    /// Effective settings (defaults + overrides).
    pub config: TopicConfig,
    /// The overrides alone, as stored in the metadata log.
    pub overrides: BTreeMap<String, String>,
    /// Index = partition number; `None` where this broker holds no replica (or its log
    /// could not be opened).
    pub partitions: Vec<Option<PartitionRef>>,
    /// Throughput counters; shared by the replacements of this entry (config changes,
    /// added partitions) and gone with the topic, so its series disappear on deletion.
    pub counters: Arc<TopicCounters>,
}

impl TopicState {
    /// The partitions open here, in index order.
    pub fn hosted(&self) -> impl Iterator<Item = &PartitionRef> {
        self.partitions.iter().flatten()
    }
}

/// Per-topic throughput, added to on the hot path with one relaxed atomic add each and
/// rendered by the metrics endpoint.
#[derive(Debug, Default)]
pub struct TopicCounters {
    /// Records appended.
    pub produced_records: AtomicU64,
    /// Batch bytes appended.
    pub produced_bytes: AtomicU64,
    /// Batch bytes returned to fetches.
    pub fetched_bytes: AtomicU64,
}

impl TopicCounters {
    /// Adds one successful append.
    pub fn produced(&self, records: u64, bytes: u64) {
        self.produced_records.fetch_add(records, Ordering::Relaxed);
        self.produced_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Adds bytes returned by a fetch.
    pub fn fetched(&self, bytes: u64) {
        if bytes > 0 {
            self.fetched_bytes.fetch_add(bytes, Ordering::Relaxed);
        }
    }
}

/// Cloneable handle to the topic table.
#[derive(Debug, Clone, Default)]
pub struct Topics {
    inner: Arc<RwLock<HashMap<String, Arc<TopicState>>>>,
}

impl Topics {
    /// The topic called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<TopicState>> {
        match self.inner.read() {
            Ok(map) => map.get(name).cloned(),
            Err(p) => p.into_inner().get(name).cloned(),
        }
    }

    /// A partition, or the error code a client should see.
    pub fn partition(&self, topic: &str, index: i32) -> Result<PartitionRef, ErrorCode> {
        let t = self.get(topic).ok_or(ErrorCode::UnknownTopicOrPartition)?;
        usize::try_from(index)
            .ok()
            .and_then(|i| t.partitions.get(i))
            .cloned()
            .flatten()
            .ok_or(ErrorCode::UnknownTopicOrPartition)
    }

    /// Every topic, sorted by name.
    pub fn all(&self) -> Vec<Arc<TopicState>> {
        let mut v: Vec<_> = match self.inner.read() {
            Ok(map) => map.values().cloned().collect(),
            Err(p) => p.into_inner().values().cloned().collect(),
        };
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Every partition open here with its placement in `image` (partitions the image no
    /// longer has are left out).
    pub fn hosted_placed<'a>(
        &self,
        image: &'a crate::metadata::MetadataImage,
    ) -> Vec<(PartitionRef, &'a crate::metadata::PartitionImage)> {
        let mut out = Vec::new();
        for t in self.all() {
            let Some(placed) = image.topics.get(&t.name) else {
                continue;
            };
            for p in t.hosted() {
                let at = usize::try_from(p.index())
                    .ok()
                    .and_then(|i| placed.partitions.get(i));
                if let Some(at) = at {
                    out.push((p.clone(), at));
                }
            }
        }
        out
    }

    /// Adds or replaces a topic.
    pub fn put(&self, topic: TopicState) {
        let topic = Arc::new(topic);
        match self.inner.write() {
            Ok(mut map) => map.insert(topic.name.clone(), topic),
            Err(p) => p.into_inner().insert(topic.name.clone(), topic),
        };
    }

    /// Removes a topic, returning it.
    pub fn remove(&self, name: &str) -> Option<Arc<TopicState>> {
        match self.inner.write() {
            Ok(mut map) => map.remove(name),
            Err(p) => p.into_inner().remove(name),
        }
    }
}
