//! What this broker must change locally so its open partitions match the metadata image,
//! as a pure function of the image and a summary of what is open. The applier executes the
//! plan (file I/O) and publishes the result.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::metadata::MetadataImage;

/// What is open here for one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalTopic {
    /// The id of the topic the open partitions belong to.
    pub id: Bytes,
    /// Its config overrides as applied.
    pub overrides: BTreeMap<String, String>,
    /// Open partitions: index → leader epoch.
    pub open: BTreeMap<i32, i32>,
}

/// The changes for one topic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicPlan {
    /// Topic name.
    pub name: String,
    /// The local partitions belong to a deleted topic (or one deleted and created again
    /// under the same name): close them and remove their data first.
    pub drop_local: bool,
    /// Partitions to open (creating their directories): index → leader epoch.
    pub open: BTreeMap<i32, i32>,
    /// Partitions this broker no longer holds a replica of (a reassignment moved them
    /// away): close them and delete their data, as Kafka's brokers do when the metadata
    /// removes them from a replica set. The committed image no longer counts this copy
    /// for anything, so nothing acknowledged depends on it.
    pub remove: Vec<i32>,
    /// Open partitions whose leader epoch changed: index → new epoch.
    pub epochs: BTreeMap<i32, i32>,
    /// The config overrides changed: re-apply them to every open partition.
    pub reconfigure: bool,
    /// Whether the topic is still in the image (a topic entry is kept while it is).
    pub in_image: bool,
}

/// One plan per topic that needs any change, sorted by name.
pub fn plan(
    image: &MetadataImage,
    local: &BTreeMap<String, LocalTopic>,
    me: i32,
) -> Vec<TopicPlan> {
    let mut out = Vec::new();
    let mut names: Vec<&String> = image.topics.keys().chain(local.keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        let placed = image.topics.get(name);
        let here = local.get(name);
        let mut p = TopicPlan {
            name: name.clone(),
            in_image: placed.is_some(),
            ..Default::default()
        };
        let same_topic = match (placed, here) {
            (Some(t), Some(l)) => t.id == l.id,
            _ => false,
        };
        if here.is_some() && !same_topic {
            p.drop_local = true;
        }
        let open_now: BTreeMap<i32, i32> = match here {
            Some(l) if same_topic => l.open.clone(),
            _ => BTreeMap::new(),
        };
        if let Some(t) = placed {
            for (i, part) in t.partitions.iter().enumerate() {
                let Ok(index) = i32::try_from(i) else { break };
                let hosted = part.replicas.contains(&me);
                match open_now.get(&index) {
                    None if hosted => {
                        p.open.insert(index, part.leader_epoch);
                    }
                    Some(epoch) if hosted && *epoch != part.leader_epoch => {
                        p.epochs.insert(index, part.leader_epoch);
                    }
                    _ => {}
                }
            }
            p.remove = open_now
                .keys()
                .copied()
                .filter(|i| {
                    usize::try_from(*i)
                        .ok()
                        .and_then(|i| t.partitions.get(i))
                        .is_none_or(|part| !part.replicas.contains(&me))
                })
                .collect();
            p.reconfigure = same_topic && here.is_some_and(|l| l.overrides != t.configs);
        }
        let changes = p.drop_local
            || !p.open.is_empty()
            || !p.remove.is_empty()
            || !p.epochs.is_empty()
            || p.reconfigure;
        if changes {
            out.push(p);
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::metadata::{
        ConfigRecord, MetadataRecord, PartitionRecord, Record, RemoveTopicRecord, TopicRecord,
        RESOURCE_TOPIC,
    };

    const ID: Bytes = Bytes::from_static(b"0123456789abcdef");

    fn rec(r: Record) -> MetadataRecord {
        MetadataRecord { record: Some(r) }
    }

    /// Topic "t" with partitions placed on `replicas[i]`, led by their first replica.
    fn image(replicas: &[Vec<i32>]) -> MetadataImage {
        let mut img = MetadataImage::new(1);
        img.apply(&rec(Record::Topic(TopicRecord {
            name: "t".into(),
            topic_id: ID,
            partition_count: replicas.len() as i32,
            configs: Default::default(),
        })));
        for (i, r) in replicas.iter().enumerate() {
            img.apply(&rec(Record::Partition(PartitionRecord {
                adding_replicas: Vec::new(),
                removing_replicas: Vec::new(),
                topic: "t".into(),
                topic_id: ID,
                partition: i as i32,
                leader: r[0],
                replicas: r.clone(),
                isr: r.clone(),
                leader_epoch: 0,
                partition_epoch: 0,
            })));
        }
        img
    }

    fn local(open: &[(i32, i32)]) -> BTreeMap<String, LocalTopic> {
        BTreeMap::from([(
            "t".to_string(),
            LocalTopic {
                id: ID,
                overrides: BTreeMap::new(),
                open: open.iter().copied().collect(),
            },
        )])
    }

    #[test]
    fn opens_only_the_partitions_placed_here() {
        let img = image(&[vec![1, 2], vec![2, 3], vec![3, 1]]);
        let p = plan(&img, &BTreeMap::new(), 1);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].open, BTreeMap::from([(0, 0), (2, 0)]));
        assert!(!p[0].drop_local);
        // Broker 4 holds nothing: no plan at all.
        assert!(plan(&img, &BTreeMap::new(), 4).is_empty());
    }

    #[test]
    fn nothing_to_do_when_in_line() {
        let img = image(&[vec![1, 2], vec![2, 3], vec![3, 1]]);
        assert!(plan(&img, &local(&[(0, 0), (2, 0)]), 1).is_empty());
    }

    #[test]
    fn epoch_changes_and_added_partitions() {
        let mut img = image(&[vec![1, 2], vec![2, 1]]);
        img.topics.get_mut("t").unwrap().partitions[1].leader_epoch = 4;
        img.apply(&rec(Record::Partition(PartitionRecord {
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
            topic: "t".into(),
            topic_id: ID,
            partition: 2,
            leader: 1,
            replicas: vec![1],
            isr: vec![1],
            leader_epoch: 0,
            partition_epoch: 0,
        })));
        let p = plan(&img, &local(&[(0, 0), (1, 0)]), 1);
        assert_eq!(p[0].epochs, BTreeMap::from([(1, 4)]));
        assert_eq!(p[0].open, BTreeMap::from([(2, 0)]));
    }

    #[test]
    fn deleted_and_recreated_topics_drop_local_data() {
        let mut img = image(&[vec![1]]);
        img.apply(&rec(Record::RemoveTopic(RemoveTopicRecord {
            name: "t".into(),
            topic_id: ID,
        })));
        let p = plan(&img, &local(&[(0, 0)]), 1);
        assert!(p[0].drop_local && !p[0].in_image && p[0].open.is_empty());

        // Same name, new id: drop the old data, open the new partition.
        img.apply(&rec(Record::Topic(TopicRecord {
            name: "t".into(),
            topic_id: Bytes::from_static(b"fedcba9876543210"),
            partition_count: 1,
            configs: Default::default(),
        })));
        let p = plan(&img, &local(&[(0, 0)]), 1);
        assert!(p[0].drop_local && p[0].in_image);
        assert_eq!(p[0].open.len(), 1);
    }

    #[test]
    fn config_changes_reconfigure() {
        let mut img = image(&[vec![1]]);
        img.apply(&rec(Record::Config(ConfigRecord {
            resource_type: RESOURCE_TOPIC,
            resource_name: "t".into(),
            name: "retention.ms".into(),
            value: Some("1000".into()),
        })));
        let p = plan(&img, &local(&[(0, 0)]), 1);
        assert!(p[0].reconfigure);
    }

    #[test]
    fn replicas_moved_away_are_closed() {
        let img = image(&[vec![2, 3], vec![1, 2]]);
        let p = plan(&img, &local(&[(0, 0), (1, 0)]), 1);
        assert_eq!(p[0].remove, vec![0]);
    }
}
