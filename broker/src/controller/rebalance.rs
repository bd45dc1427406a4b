//! Preferred-leader rebalance (Kafka's `auto.leader.rebalance.enable`), as a pure decision.
//! A partition's preferred leader is its first replica. After a broker returns, the
//! partitions it used to lead stay with whoever took them over, so one broker ends up
//! leading most of the cluster. When the share of a broker's preferred partitions that
//! someone else leads is above the threshold (Kafka's
//! `leader.imbalance.per.broker.percentage`, 10), leadership of those goes back to it —
//! only where it is alive and in the ISR, so no record is lost by moving.

use std::collections::BTreeMap;

use crate::metadata::{MetadataImage, MetadataRecord, PartitionRecord, Record};

/// The records that hand partitions back to their preferred leaders (empty when every
/// broker is within `threshold_percent`).
pub fn decide(image: &MetadataImage, threshold_percent: u32) -> Vec<MetadataRecord> {
    let usable = |id: i32| image.brokers.get(&id).is_some_and(|b| !b.fenced);
    // Per preferred broker: partitions it prefers, and those led by another.
    let mut preferred: BTreeMap<i32, (u64, u64)> = BTreeMap::new();
    for t in image.topics.values() {
        for p in &t.partitions {
            let Some(&first) = p.replicas.first() else {
                continue;
            };
            let e = preferred.entry(first).or_default();
            e.0 += 1;
            if p.leader != first {
                e.1 += 1;
            }
        }
    }
    let imbalanced = |id: i32| {
        preferred
            .get(&id)
            .is_some_and(|(all, off)| *all > 0 && off * 100 > u64::from(threshold_percent) * all)
    };
    let mut out = Vec::new();
    for (name, t) in &image.topics {
        for (i, p) in t.partitions.iter().enumerate() {
            let Some(&first) = p.replicas.first() else {
                continue;
            };
            if p.leader == first || !imbalanced(first) || !usable(first) {
                continue;
            }
            if !p.isr.contains(&first) {
                continue;
            }
            out.push(MetadataRecord {
                record: Some(Record::Partition(PartitionRecord {
                    leader: first,
                    leader_epoch: p.leader_epoch.saturating_add(1),
                    partition_epoch: p.partition_epoch.saturating_add(1),
                    ..p.to_record(name, &t.id, i32::try_from(i).unwrap_or(i32::MAX))
                })),
            });
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::metadata::{BrokerFenceRecord, BrokerRecord, TopicRecord};
    use bytes::Bytes;

    fn rec(r: Record) -> MetadataRecord {
        MetadataRecord { record: Some(r) }
    }

    /// Three brokers, `leaders[i]` leads partition i whose replicas are `replicas[i]`.
    fn image(replicas: &[Vec<i32>], leaders: &[i32]) -> MetadataImage {
        let mut img = MetadataImage::new(1);
        for id in 1..=3 {
            img.apply(&rec(Record::Broker(BrokerRecord {
                broker_id: id,
                host: "127.0.0.1".into(),
                port: 9000 + id,
                incarnation: 1,
                ..Default::default()
            })));
        }
        img.apply(&rec(Record::Topic(TopicRecord {
            name: "t".into(),
            topic_id: Bytes::from_static(b"0123456789abcdef"),
            partition_count: replicas.len() as i32,
            configs: Default::default(),
        })));
        for (i, (r, l)) in replicas.iter().zip(leaders).enumerate() {
            img.apply(&rec(Record::Partition(PartitionRecord {
                adding_replicas: Vec::new(),
                removing_replicas: Vec::new(),
                topic: "t".into(),
                topic_id: Bytes::from_static(b"0123456789abcdef"),
                partition: i as i32,
                leader: *l,
                replicas: r.clone(),
                isr: r.clone(),
                leader_epoch: 3,
                partition_epoch: 5,
            })));
        }
        img
    }

    fn moved(records: &[MetadataRecord]) -> Vec<(i32, i32, i32)> {
        records
            .iter()
            .map(|r| match &r.record {
                Some(Record::Partition(p)) => (p.partition, p.leader, p.leader_epoch),
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    #[test]
    fn balanced_cluster_stays() {
        let img = image(&[vec![1, 2], vec![2, 3], vec![3, 1]], &[1, 2, 3]);
        assert!(decide(&img, 10).is_empty());
    }

    #[test]
    fn returned_broker_gets_its_partitions_back_with_a_new_epoch() {
        // Broker 1 prefers partitions 0 and 3; broker 2 took both over.
        let img = image(
            &[vec![1, 2], vec![2, 3], vec![3, 1], vec![1, 3]],
            &[2, 2, 3, 3],
        );
        let out = decide(&img, 10);
        assert_eq!(moved(&out), vec![(0, 1, 4), (3, 1, 4)]);
        match &out[0].record {
            Some(Record::Partition(p)) => assert_eq!(p.partition_epoch, 6),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn below_threshold_nothing_moves() {
        // Broker 1 prefers 11 partitions, one led elsewhere: 9% <= 10%.
        let mut replicas = vec![vec![1, 2]; 11];
        replicas.push(vec![2, 1]);
        let mut leaders = vec![1; 11];
        leaders[0] = 2;
        leaders.push(2);
        let img = image(&replicas, &leaders);
        assert!(decide(&img, 10).is_empty());
        assert_eq!(moved(&decide(&img, 5)), vec![(0, 1, 4)]);
    }

    #[test]
    fn fenced_or_out_of_sync_preferred_leader_is_skipped() {
        let mut img = image(&[vec![1, 2], vec![1, 2]], &[2, 2]);
        img.apply(&rec(Record::BrokerFence(BrokerFenceRecord {
            broker_id: 1,
            fenced: true,
        })));
        assert!(decide(&img, 10).is_empty());
        let mut img = image(&[vec![1, 2], vec![1, 2]], &[2, 2]);
        img.topics.get_mut("t").unwrap().partitions[1].isr = vec![2];
        assert_eq!(moved(&decide(&img, 10)), vec![(0, 1, 4)]);
    }
}
