//! The in-memory metadata image: what the replayed records say. Pure: `apply` takes a
//! record and changes the image, nothing else.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::{
    BrokerFenceRecord, BrokerRecord, ClusterIdRecord, MetadataRecord, PartitionRecord,
    ProducerIdsRecord, Record, TopicRecord, RESOURCE_TOPIC,
};

/// One partition's placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionImage {
    /// Leader node, -1 if none.
    pub leader: i32,
    /// Replica nodes.
    pub replicas: Vec<i32>,
    /// In-sync replica nodes.
    pub isr: Vec<i32>,
    /// Bumped on every leader change.
    pub leader_epoch: i32,
    /// Bumped on every change of leader, replicas or ISR (Kafka's partition epoch; an
    /// ISR change proposed against an older one is refused).
    pub partition_epoch: i32,
    /// Replicas a reassignment adds (not yet all in the ISR); empty when none runs.
    pub adding: Vec<i32>,
    /// Replicas a reassignment removes once the added ones are in sync.
    pub removing: Vec<i32>,
}

impl PartitionImage {
    /// The record that states this partition as it is; writers change what they change
    /// from here, so fields they do not touch (a reassignment in progress) carry over.
    pub fn to_record(&self, topic: &str, topic_id: &Bytes, partition: i32) -> PartitionRecord {
        PartitionRecord {
            topic: topic.to_string(),
            topic_id: topic_id.clone(),
            partition,
            leader: self.leader,
            replicas: self.replicas.clone(),
            isr: self.isr.clone(),
            leader_epoch: self.leader_epoch,
            partition_epoch: self.partition_epoch,
            adding_replicas: self.adding.clone(),
            removing_replicas: self.removing.clone(),
        }
    }

    /// Whether a reassignment is in progress.
    pub fn reassigning(&self) -> bool {
        !self.adding.is_empty() || !self.removing.is_empty()
    }

    /// The replica set a running reassignment ends with (all replicas when none runs).
    pub fn target_replicas(&self) -> Vec<i32> {
        self.replicas
            .iter()
            .copied()
            .filter(|r| !self.removing.contains(r))
            .collect()
    }
}

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicImage {
    /// 16 random bytes.
    pub id: Bytes,
    /// Index = partition number.
    pub partitions: Vec<PartitionImage>,
    /// Topic-level overrides (Kafka dotted names).
    pub configs: BTreeMap<String, String>,
}

/// A registered broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerImage {
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
    /// Changes at every process start.
    pub incarnation: i64,
    /// Fenced by the controller: leads nothing until it heartbeats again.
    pub fenced: bool,
    /// The Kafka listener's advertised address; `None` when it has none (or registered
    /// before brokers told it), so Kafka clients are never sent to a native port.
    pub kafka: Option<(String, i32)>,
}

impl BrokerImage {
    /// The Kafka address, if the broker has a Kafka listener.
    pub fn kafka_address(&self) -> Option<(&str, i32)> {
        self.kafka.as_ref().map(|(h, p)| (h.as_str(), *p))
    }
}

/// Everything the metadata log says, replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataImage {
    /// By name.
    pub topics: BTreeMap<String, TopicImage>,
    /// Producer ids below this have been handed out.
    pub next_producer_id: i64,
    /// Registered brokers by id.
    pub brokers: BTreeMap<i32, BrokerImage>,
    /// The cluster's id, once the first controller wrote it.
    pub cluster_id: Option<String>,
    /// Leader given to partitions whose PartitionRecord is missing (a torn multi-record
    /// write): on a single node, this node.
    default_leader: i32,
}

/// Most partitions a topic may have (the controller refuses more; the image never
/// allocates for more, whatever a record on disk says).
pub const MAX_PARTITIONS: i32 = 10_000;

impl MetadataImage {
    /// An empty image.
    pub fn new(default_leader: i32) -> Self {
        MetadataImage {
            topics: BTreeMap::new(),
            next_producer_id: 0,
            brokers: BTreeMap::new(),
            cluster_id: None,
            default_leader,
        }
    }

    /// The image after `records`, in order.
    pub fn replay<'a>(
        default_leader: i32,
        records: impl IntoIterator<Item = &'a MetadataRecord>,
    ) -> Self {
        let mut image = MetadataImage::new(default_leader);
        for r in records {
            image.apply(r);
        }
        image
    }

    fn default_partition(&self) -> PartitionImage {
        PartitionImage {
            leader: self.default_leader,
            replicas: vec![self.default_leader],
            isr: vec![self.default_leader],
            leader_epoch: 0,
            partition_epoch: 0,
            adding: Vec::new(),
            removing: Vec::new(),
        }
    }

    /// Records that rebuild this image from an empty one: a snapshot is the image written
    /// this way (KRaft's idea), so there is one encoding to keep compatible, the records'.
    pub fn to_records(&self) -> Vec<MetadataRecord> {
        let mut out = Vec::new();
        if let Some(id) = &self.cluster_id {
            out.push(MetadataRecord {
                record: Some(Record::ClusterId(ClusterIdRecord {
                    cluster_id: id.clone(),
                })),
            });
        }
        for (name, t) in &self.topics {
            out.push(MetadataRecord {
                record: Some(Record::Topic(TopicRecord {
                    name: name.clone(),
                    topic_id: t.id.clone(),
                    partition_count: i32::try_from(t.partitions.len()).unwrap_or(MAX_PARTITIONS),
                    configs: t
                        .configs
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                })),
            });
            for (i, p) in t.partitions.iter().enumerate() {
                out.push(MetadataRecord {
                    record: Some(Record::Partition(p.to_record(
                        name,
                        &t.id,
                        i32::try_from(i).unwrap_or(MAX_PARTITIONS),
                    ))),
                });
            }
        }
        out.push(MetadataRecord {
            record: Some(Record::ProducerIds(ProducerIdsRecord {
                // The image keeps no broker here; -1 keeps images of all brokers identical.
                broker_id: -1,
                next_producer_id: self.next_producer_id,
            })),
        });
        for (id, b) in &self.brokers {
            out.push(MetadataRecord {
                record: Some(Record::Broker(BrokerRecord {
                    broker_id: *id,
                    host: b.host.clone(),
                    port: b.port,
                    incarnation: b.incarnation,
                    kafka_host: b.kafka.as_ref().map(|k| k.0.clone()).unwrap_or_default(),
                    kafka_port: b.kafka.as_ref().map_or(0, |k| k.1),
                })),
            });
            if b.fenced {
                out.push(MetadataRecord {
                    record: Some(Record::BrokerFence(BrokerFenceRecord {
                        broker_id: *id,
                        fenced: true,
                    })),
                });
            }
        }
        out
    }

    /// A checksum of the image (CRC-32C of its records), so replicas can be compared: two
    /// brokers with the same digest hold the same metadata.
    pub fn digest(&self) -> u32 {
        let mut crc = 0u32;
        for r in self.to_records() {
            crc = crc32c::crc32c_append(crc, &prost::Message::encode_to_vec(&r));
        }
        crc
    }

    /// Applies one record.
    pub fn apply(&mut self, record: &MetadataRecord) {
        let Some(r) = &record.record else { return };
        match r {
            Record::Topic(t) => {
                // Bounded: a count read from disk cannot make the image allocate absurdly.
                let count = match usize::try_from(t.partition_count) {
                    Ok(n) if n <= MAX_PARTITIONS as usize => n,
                    _ => {
                        tracing::warn!(topic = %t.name, count = t.partition_count,
                            "metadata record with an impossible partition count; clamped");
                        usize::try_from(t.partition_count.clamp(0, MAX_PARTITIONS)).unwrap_or(0)
                    }
                };
                let topic = TopicImage {
                    id: t.topic_id.clone(),
                    partitions: vec![self.default_partition(); count],
                    configs: t
                        .configs
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                };
                self.topics.insert(t.name.clone(), topic);
            }
            Record::RemoveTopic(t) => {
                let matches = self
                    .topics
                    .get(&t.name)
                    .is_some_and(|img| t.topic_id.is_empty() || img.id == t.topic_id);
                if matches {
                    self.topics.remove(&t.name);
                }
            }
            Record::Config(c) => {
                if c.resource_type != RESOURCE_TOPIC {
                    return;
                }
                if let Some(topic) = self.topics.get_mut(&c.resource_name) {
                    match &c.value {
                        Some(v) => {
                            topic.configs.insert(c.name.clone(), v.clone());
                        }
                        None => {
                            topic.configs.remove(&c.name);
                        }
                    }
                }
            }
            Record::Partition(p) => {
                let default = self.default_partition();
                let Some(topic) = self.topics.get_mut(&p.topic) else {
                    return;
                };
                if !p.topic_id.is_empty() && p.topic_id != topic.id {
                    return;
                }
                let Ok(index) = usize::try_from(p.partition) else {
                    return;
                };
                // Bounded: a record cannot make the image allocate absurd amounts.
                if index >= MAX_PARTITIONS as usize {
                    return;
                }
                if topic.partitions.len() <= index {
                    topic.partitions.resize(index + 1, default);
                }
                if let Some(slot) = topic.partitions.get_mut(index) {
                    *slot = PartitionImage {
                        leader: p.leader,
                        replicas: p.replicas.clone(),
                        isr: p.isr.clone(),
                        leader_epoch: p.leader_epoch,
                        partition_epoch: p.partition_epoch,
                        adding: p.adding_replicas.clone(),
                        removing: p.removing_replicas.clone(),
                    };
                }
            }
            Record::ProducerIds(p) => {
                self.next_producer_id = self.next_producer_id.max(p.next_producer_id);
            }
            Record::Broker(b) => {
                self.brokers.insert(
                    b.broker_id,
                    BrokerImage {
                        host: b.host.clone(),
                        port: b.port,
                        incarnation: b.incarnation,
                        fenced: false,
                        kafka: kafka_address(&b.kafka_host, b.kafka_port),
                    },
                );
            }
            Record::BrokerFence(f) => {
                if let Some(b) = self.brokers.get_mut(&f.broker_id) {
                    b.fenced = f.fenced;
                }
            }
            // Written once; a second one (two controllers racing at the first start) loses.
            Record::ClusterId(c) => {
                if self.cluster_id.is_none() && !c.cluster_id.is_empty() {
                    self.cluster_id = Some(c.cluster_id.clone());
                }
            }
        }
    }
}

/// A registered Kafka address, or `None` for the proto3 defaults (no Kafka listener, or a
/// record written before brokers registered one) and for ports no client could reach.
fn kafka_address(host: &str, port: i32) -> Option<(String, i32)> {
    (!host.is_empty() && (1..=i32::from(u16::MAX)).contains(&port))
        .then(|| (host.to_string(), port))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::metadata::{
        ConfigRecord, PartitionRecord, ProducerIdsRecord, RemoveTopicRecord, TopicRecord,
    };

    fn rec(r: Record) -> MetadataRecord {
        MetadataRecord { record: Some(r) }
    }

    #[test]
    fn to_records_rebuilds_the_same_image() {
        let mut img = MetadataImage::new(0);
        for r in [
            Record::Topic(TopicRecord {
                name: "a".into(),
                topic_id: Bytes::from(vec![1; 16]),
                partition_count: 2,
                configs: [("retention.ms".to_string(), "5".to_string())].into(),
            }),
            Record::Partition(PartitionRecord {
                topic: "a".into(),
                partition: 1,
                leader: 2,
                replicas: vec![2, 3],
                isr: vec![2],
                leader_epoch: 7,
                ..Default::default()
            }),
            Record::ProducerIds(ProducerIdsRecord {
                broker_id: 0,
                next_producer_id: 4000,
            }),
            Record::Broker(BrokerRecord {
                broker_id: 2,
                host: "127.0.0.1".into(),
                port: 9392,
                incarnation: 5,
                kafka_host: "127.0.0.1".into(),
                kafka_port: 9393,
            }),
            Record::Broker(BrokerRecord {
                broker_id: 3,
                host: "127.0.0.1".into(),
                port: 9492,
                incarnation: 6,
                ..Default::default()
            }),
        ] {
            img.apply(&rec(r));
        }
        assert_eq!(img.brokers[&2].kafka_address(), Some(("127.0.0.1", 9393)));
        assert_eq!(img.brokers[&3].kafka_address(), None);
        let again = MetadataImage::replay(0, &img.to_records());
        assert_eq!(again, img);
        assert_eq!(again.digest(), img.digest());
        assert_ne!(MetadataImage::new(0).digest(), img.digest());
    }

    #[test]
    fn a_registration_from_before_kafka_addresses_has_none() {
        // BrokerRecord fields 1-4 only, as brokers wrote it before fields 5 and 6 existed.
        let old: &[u8] = &[0x08, 0x03, 0x12, 0x01, b'h', 0x18, 0x09, 0x20, 0x01];
        let r = <BrokerRecord as prost::Message>::decode(old).unwrap();
        let img = MetadataImage::replay(0, &[rec(Record::Broker(r))]);
        let b = &img.brokers[&3];
        assert_eq!((b.host.as_str(), b.port, b.kafka_address()), ("h", 9, None));
    }

    #[test]
    fn absurd_partition_counts_from_disk_are_bounded() {
        let image = MetadataImage::replay(
            0,
            &[
                rec(Record::Topic(TopicRecord {
                    name: "huge".into(),
                    topic_id: Bytes::from(vec![1; 16]),
                    partition_count: i32::MAX,
                    configs: Default::default(),
                })),
                rec(Record::Partition(PartitionRecord {
                    topic: "huge".into(),
                    partition: i32::MAX - 1,
                    ..Default::default()
                })),
            ],
        );
        assert_eq!(
            image.topics["huge"].partitions.len(),
            MAX_PARTITIONS as usize
        );
    }

    #[test]
    fn topics_partitions_configs_and_removal() {
        let id = Bytes::from(vec![7; 16]);
        let records = vec![
            rec(Record::Topic(TopicRecord {
                name: "t".into(),
                topic_id: id.clone(),
                partition_count: 1,
                configs: [("retention.ms".to_string(), "5".to_string())].into(),
            })),
            rec(Record::Partition(PartitionRecord {
                adding_replicas: Vec::new(),
                removing_replicas: Vec::new(),
                topic: "t".into(),
                topic_id: id.clone(),
                partition: 2,
                leader: 0,
                replicas: vec![0],
                isr: vec![0],
                leader_epoch: 3,
                partition_epoch: 0,
            })),
            rec(Record::Config(ConfigRecord {
                resource_type: RESOURCE_TOPIC,
                resource_name: "t".into(),
                name: "retention.ms".into(),
                value: None,
            })),
            rec(Record::Config(ConfigRecord {
                resource_type: RESOURCE_TOPIC,
                resource_name: "t".into(),
                name: "segment.ms".into(),
                value: Some("9".into()),
            })),
            rec(Record::ProducerIds(ProducerIdsRecord {
                broker_id: 0,
                next_producer_id: 1000,
            })),
        ];
        let img = MetadataImage::replay(0, &records);
        let t = &img.topics["t"];
        assert_eq!(t.partitions.len(), 3);
        assert_eq!(t.partitions[2].leader_epoch, 3);
        assert_eq!(t.partitions[1].leader, 0);
        assert_eq!(t.configs.get("segment.ms").map(String::as_str), Some("9"));
        assert!(!t.configs.contains_key("retention.ms"));
        assert_eq!(img.next_producer_id, 1000);

        let mut img = img;
        img.apply(&rec(Record::RemoveTopic(RemoveTopicRecord {
            name: "t".into(),
            topic_id: id,
        })));
        assert!(img.topics.is_empty());
    }
}
