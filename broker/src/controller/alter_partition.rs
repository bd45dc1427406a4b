//! ISR changes proposed by partition leaders (Kafka's AlterPartition, KIP-497), validated
//! against the image as a pure function: the proposal must come from the current leader,
//! carry the current leader and partition epochs (a stale one is refused, so two changes
//! can never both apply to the same state), keep the leader in the ISR, and name only
//! replicas; members that join must not be fenced. A valid change is one PartitionRecord
//! with the partition epoch bumped (the leader epoch stays).

use weir_protocol::ErrorCode;

use crate::metadata::{MetadataImage, PartitionRecord};

/// One proposed change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal<'a> {
    /// The proposing broker.
    pub from: i32,
    /// Topic.
    pub topic: &'a str,
    /// Partition index.
    pub partition: i32,
    /// The proposer's leader epoch.
    pub leader_epoch: i32,
    /// The proposer's partition epoch.
    pub partition_epoch: i32,
    /// The ISR it wants.
    pub new_isr: &'a [i32],
}

/// The record that makes the change, or why it is refused.
pub fn validate(image: &MetadataImage, p: &Proposal<'_>) -> Result<PartitionRecord, ErrorCode> {
    let topic = image
        .topics
        .get(p.topic)
        .ok_or(ErrorCode::UnknownTopicOrPartition)?;
    let current = usize::try_from(p.partition)
        .ok()
        .and_then(|i| topic.partitions.get(i))
        .ok_or(ErrorCode::UnknownTopicOrPartition)?;
    if p.leader_epoch > current.leader_epoch || p.partition_epoch > current.partition_epoch {
        // The proposer saw a newer state than this controller: this one is stale.
        return Err(ErrorCode::NotController);
    }
    if p.leader_epoch < current.leader_epoch {
        return Err(ErrorCode::FencedLeaderEpoch);
    }
    if p.from != current.leader {
        return Err(ErrorCode::InvalidRequest);
    }
    if p.partition_epoch < current.partition_epoch {
        return Err(ErrorCode::InvalidUpdateVersion);
    }
    let mut isr: Vec<i32> = Vec::with_capacity(p.new_isr.len());
    for id in p.new_isr {
        if !current.replicas.contains(id) || isr.contains(id) {
            return Err(ErrorCode::InvalidRequest);
        }
        isr.push(*id);
    }
    if !isr.contains(&current.leader) {
        return Err(ErrorCode::InvalidRequest);
    }
    let joins_fenced = isr
        .iter()
        .any(|id| !current.isr.contains(id) && image.brokers.get(id).is_none_or(|b| b.fenced));
    if joins_fenced {
        return Err(ErrorCode::IneligibleReplica);
    }
    Ok(PartitionRecord {
        isr,
        partition_epoch: current.partition_epoch.saturating_add(1),
        ..current.to_record(p.topic, &topic.id, p.partition)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::metadata::{BrokerFenceRecord, BrokerRecord, MetadataRecord, Record, TopicRecord};
    use bytes::Bytes;

    fn image() -> MetadataImage {
        let mut img = MetadataImage::new(1);
        let rec = |r| MetadataRecord { record: Some(r) };
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
            partition_count: 1,
            configs: Default::default(),
        })));
        img.apply(&rec(Record::Partition(PartitionRecord {
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
            topic: "t".into(),
            topic_id: Bytes::from_static(b"0123456789abcdef"),
            partition: 0,
            leader: 1,
            replicas: vec![1, 2, 3],
            isr: vec![1, 2, 3],
            leader_epoch: 4,
            partition_epoch: 7,
        })));
        img
    }

    fn proposal(new_isr: &[i32]) -> Proposal<'_> {
        Proposal {
            from: 1,
            topic: "t",
            partition: 0,
            leader_epoch: 4,
            partition_epoch: 7,
            new_isr,
        }
    }

    #[test]
    fn the_leader_shrinks_and_expands_with_current_epochs() {
        let img = image();
        let r = validate(&img, &proposal(&[1, 2])).unwrap();
        assert_eq!(
            (r.isr, r.leader_epoch, r.partition_epoch),
            (vec![1, 2], 4, 8)
        );
    }

    #[test]
    fn stale_or_foreign_proposals_are_refused() {
        let img = image();
        let mut p = proposal(&[1, 2]);
        p.leader_epoch = 3;
        assert_eq!(validate(&img, &p), Err(ErrorCode::FencedLeaderEpoch));
        let mut p = proposal(&[1, 2]);
        p.partition_epoch = 6;
        assert_eq!(validate(&img, &p), Err(ErrorCode::InvalidUpdateVersion));
        let mut p = proposal(&[1, 2]);
        p.partition_epoch = 9;
        assert_eq!(validate(&img, &p), Err(ErrorCode::NotController));
        let mut p = proposal(&[2, 3]);
        p.from = 2;
        assert_eq!(validate(&img, &p), Err(ErrorCode::InvalidRequest));
        assert_eq!(
            validate(&img, &proposal(&[2, 3])),
            Err(ErrorCode::InvalidRequest),
            "leader left out"
        );
        assert_eq!(
            validate(&img, &proposal(&[1, 4])),
            Err(ErrorCode::InvalidRequest),
            "not a replica"
        );
        let mut p = proposal(&[1]);
        p.topic = "nope";
        assert_eq!(validate(&img, &p), Err(ErrorCode::UnknownTopicOrPartition));
    }

    #[test]
    fn a_fenced_broker_cannot_join() {
        let mut img = image();
        img.apply(&MetadataRecord {
            record: Some(Record::BrokerFence(BrokerFenceRecord {
                broker_id: 3,
                fenced: true,
            })),
        });
        let shrunk = validate(&img, &proposal(&[1, 2])).unwrap();
        img.apply(&MetadataRecord {
            record: Some(Record::Partition(shrunk)),
        });
        let mut p = proposal(&[1, 2, 3]);
        p.partition_epoch = 8;
        assert_eq!(validate(&img, &p), Err(ErrorCode::IneligibleReplica));
    }
}
