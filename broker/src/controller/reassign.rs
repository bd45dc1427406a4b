//! Partition reassignment (Kafka's KIP-455), as pure functions over the image.
//!
//! A move from replicas `O` to target `T` is two partition records:
//! 1. start: replicas = `T` followed by `O − T`, adding = `T − O`, removing = `O − T`; the
//!    ISR and leader stay. Every broker's applier opens the added replicas, which fetch
//!    from the leader like any follower and are added to the ISR by the leader once
//!    caught up (AlterPartition).
//! 2. complete, once every target replica is in the ISR: replicas = `T`, ISR = ISR ∩ `T`,
//!    adding and removing empty; a leader that is leaving hands over to the first target
//!    replica (new leader epoch). The removed brokers' appliers delete their copies.
//!
//! No acknowledged record is at risk at any point: the ISR only grows until step 2, and
//! step 2 keeps only members that were in sync.

use std::collections::BTreeSet;

use weir_protocol::ErrorCode;

use crate::metadata::{MetadataImage, PartitionImage, PartitionRecord};

/// Why a reassignment request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Protocol code.
    pub code: ErrorCode,
    /// What to tell the operator.
    pub message: String,
}

fn refused(code: ErrorCode, message: impl Into<String>) -> Refused {
    Refused {
        code,
        message: message.into(),
    }
}

/// What a reassignment request asks for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// Move to these replicas, preferred leader first.
    MoveTo(&'a [i32]),
    /// Revert a running move to the replicas it started from.
    Cancel,
}

fn partition<'a>(
    image: &'a MetadataImage,
    topic: &str,
    index: i32,
) -> Result<(&'a crate::metadata::TopicImage, &'a PartitionImage), Refused> {
    let t = image.topics.get(topic).ok_or_else(|| {
        refused(
            ErrorCode::UnknownTopicOrPartition,
            format!("topic {topic} does not exist"),
        )
    })?;
    let p = usize::try_from(index)
        .ok()
        .and_then(|i| t.partitions.get(i))
        .ok_or_else(|| {
            refused(
                ErrorCode::UnknownTopicOrPartition,
                format!("partition {topic}-{index} does not exist"),
            )
        })?;
    Ok((t, p))
}

/// The replicas a partition had before its running move (all replicas when none runs).
pub fn original_replicas(p: &PartitionImage) -> Vec<i32> {
    p.replicas
        .iter()
        .copied()
        .filter(|r| !p.adding.contains(r))
        .collect()
}

/// The record that starts (or, when nothing needs to catch up, at once completes) a
/// move of `topic`-`index`, or why it is refused.
pub fn start(
    image: &MetadataImage,
    topic: &str,
    index: i32,
    request: Request<'_>,
) -> Result<PartitionRecord, Refused> {
    let (t, p) = partition(image, topic, index)?;
    let original = original_replicas(p);
    let target: Vec<i32> = match request {
        Request::Cancel if !p.reassigning() => {
            return Err(refused(
                ErrorCode::NoReassignmentInProgress,
                format!("no reassignment of {topic}-{index} is running"),
            ))
        }
        Request::Cancel => original.clone(),
        Request::MoveTo(target) => {
            validate_target(image, target)?;
            target.to_vec()
        }
    };
    let moving = PartitionImage {
        replicas: target
            .iter()
            .copied()
            .chain(original.iter().copied().filter(|r| !target.contains(r)))
            .collect(),
        adding: target
            .iter()
            .copied()
            .filter(|r| !original.contains(r))
            .collect(),
        removing: original
            .iter()
            .copied()
            .filter(|r| !target.contains(r))
            .collect(),
        // Members of a cancelled move's target that already joined leave the ISR at once.
        isr: p
            .isr
            .iter()
            .copied()
            .filter(|r| target.contains(r) || original.contains(r))
            .collect(),
        partition_epoch: p.partition_epoch.saturating_add(1),
        ..p.clone()
    };
    if !moving.isr.contains(&moving.leader) {
        return Err(refused(
            ErrorCode::InvalidReplicaAssignment,
            format!("{topic}-{index}: its leader would leave without handing over"),
        ));
    }
    if let Some(done) = completion(image, &moving) {
        return Ok(PartitionRecord {
            partition_epoch: moving.partition_epoch,
            ..done.to_record(topic, &t.id, index)
        });
    }
    Ok(moving.to_record(topic, &t.id, index))
}

fn validate_target(image: &MetadataImage, target: &[i32]) -> Result<(), Refused> {
    if target.is_empty() {
        return Err(refused(
            ErrorCode::InvalidReplicaAssignment,
            "a replica set needs at least one broker",
        ));
    }
    let distinct: BTreeSet<i32> = target.iter().copied().collect();
    if distinct.len() != target.len() {
        return Err(refused(
            ErrorCode::InvalidReplicaAssignment,
            format!("replica list {target:?} names a broker twice"),
        ));
    }
    if let Some(unknown) = target.iter().find(|b| !image.brokers.contains_key(b)) {
        return Err(refused(
            ErrorCode::InvalidReplicaAssignment,
            format!("broker {unknown} is not registered"),
        ));
    }
    Ok(())
}

/// The partition after its running move completes, once every target replica is in the
/// ISR; `None` while one is still catching up (or when no move runs).
pub fn completion(image: &MetadataImage, p: &PartitionImage) -> Option<PartitionImage> {
    if !p.reassigning() {
        return None;
    }
    let target = p.target_replicas();
    if !target.iter().all(|r| p.isr.contains(r)) {
        return None;
    }
    let isr: Vec<i32> = p
        .isr
        .iter()
        .copied()
        .filter(|r| target.contains(r))
        .collect();
    let usable = |id: &i32| image.brokers.get(id).is_some_and(|b| !b.fenced);
    let leader = if target.contains(&p.leader) {
        p.leader
    } else {
        // Target replicas are all in sync; a live one takes over, the preferred first.
        *target.iter().find(|r| usable(r))?
    };
    Some(PartitionImage {
        leader,
        replicas: target,
        isr,
        leader_epoch: if leader == p.leader {
            p.leader_epoch
        } else {
            p.leader_epoch.saturating_add(1)
        },
        partition_epoch: p.partition_epoch.saturating_add(1),
        adding: Vec::new(),
        removing: Vec::new(),
    })
}

/// Completion records for every running move that can complete now.
pub fn completions(image: &MetadataImage) -> Vec<PartitionRecord> {
    let mut out = Vec::new();
    for (name, t) in &image.topics {
        for (i, p) in t.partitions.iter().enumerate() {
            if let Some(done) = completion(image, p) {
                out.push(done.to_record(name, &t.id, i32::try_from(i).unwrap_or(i32::MAX)));
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::metadata::{BrokerFenceRecord, BrokerRecord, MetadataRecord, Record, TopicRecord};
    use bytes::Bytes;

    fn rec(r: Record) -> MetadataRecord {
        MetadataRecord { record: Some(r) }
    }

    /// Brokers 1–4; t-0 on [1, 2, 3] led by 1, all in sync.
    fn image() -> MetadataImage {
        let mut img = MetadataImage::new(1);
        for id in 1..=4 {
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
            topic_id: Bytes::from(vec![1; 16]),
            partition_count: 1,
            configs: Default::default(),
        })));
        img.apply(&rec(Record::Partition(PartitionRecord {
            topic: "t".into(),
            partition: 0,
            leader: 1,
            replicas: vec![1, 2, 3],
            isr: vec![1, 2, 3],
            leader_epoch: 5,
            partition_epoch: 7,
            ..Default::default()
        })));
        img
    }

    fn p0(img: &MetadataImage) -> &PartitionImage {
        &img.topics["t"].partitions[0]
    }

    fn apply(img: &mut MetadataImage, r: PartitionRecord) {
        img.apply(&rec(Record::Partition(r)));
    }

    fn set_isr(img: &mut MetadataImage, isr: &[i32]) {
        let p = p0(img).clone();
        let r = PartitionRecord {
            isr: isr.to_vec(),
            partition_epoch: p.partition_epoch + 1,
            ..p.to_record("t", &Bytes::from(vec![1; 16]), 0)
        };
        apply(img, r);
    }

    #[test]
    fn a_move_adds_first_then_removes_once_the_new_replica_is_in_sync() {
        let mut img = image();
        let r = start(&img, "t", 0, Request::MoveTo(&[1, 2, 4])).unwrap();
        assert_eq!(r.replicas, vec![1, 2, 4, 3]);
        assert_eq!(
            (r.adding_replicas.clone(), r.removing_replicas.clone()),
            (vec![4], vec![3])
        );
        assert_eq!(
            (r.isr.clone(), r.leader, r.leader_epoch),
            (vec![1, 2, 3], 1, 5)
        );
        assert_eq!(r.partition_epoch, 8);
        apply(&mut img, r);
        assert!(completion(&img, p0(&img)).is_none(), "4 is not in sync yet");
        assert!(completions(&img).is_empty());

        set_isr(&mut img, &[1, 2, 3, 4]);
        let done = completions(&img);
        assert_eq!(done.len(), 1);
        let d = &done[0];
        assert_eq!(
            (d.replicas.clone(), d.isr.clone()),
            (vec![1, 2, 4], vec![1, 2, 4])
        );
        assert!(d.adding_replicas.is_empty() && d.removing_replicas.is_empty());
        assert_eq!((d.leader, d.leader_epoch, d.partition_epoch), (1, 5, 10));
    }

    #[test]
    fn a_leaving_leader_hands_over_to_the_first_live_target_with_a_new_epoch() {
        let mut img = image();
        let r = start(&img, "t", 0, Request::MoveTo(&[4, 2, 3])).unwrap();
        apply(&mut img, r);
        img.apply(&rec(Record::BrokerFence(BrokerFenceRecord {
            broker_id: 4,
            fenced: true,
        })));
        set_isr(&mut img, &[1, 2, 3, 4]);
        let d = completion(&img, p0(&img)).unwrap();
        assert_eq!((d.leader, d.leader_epoch), (2, 6), "4 is fenced: 2 leads");
        assert_eq!(d.replicas, vec![4, 2, 3]);
    }

    #[test]
    fn shrinking_to_in_sync_replicas_or_reordering_completes_at_once() {
        let img = image();
        let r = start(&img, "t", 0, Request::MoveTo(&[2, 1])).unwrap();
        assert_eq!(
            (r.replicas.clone(), r.isr.clone()),
            (vec![2, 1], vec![1, 2])
        );
        assert!(r.adding_replicas.is_empty() && r.removing_replicas.is_empty());
        assert_eq!((r.leader, r.partition_epoch), (1, 8));
    }

    #[test]
    fn removing_a_lagging_replica_waits_for_the_targets_to_be_in_sync() {
        let mut img = image();
        set_isr(&mut img, &[1, 3]);
        let r = start(&img, "t", 0, Request::MoveTo(&[1, 2])).unwrap();
        assert_eq!(
            (r.adding_replicas.clone(), r.removing_replicas.clone()),
            (vec![], vec![3])
        );
        apply(&mut img, r);
        assert!(completion(&img, p0(&img)).is_none(), "2 is not in sync");
    }

    #[test]
    fn cancel_reverts_to_the_original_replicas_and_drops_joined_targets() {
        let mut img = image();
        let r = start(&img, "t", 0, Request::MoveTo(&[4, 2, 3])).unwrap();
        apply(&mut img, r);
        // 4 joined, then 3 fell out; the move cannot complete yet.
        set_isr(&mut img, &[1, 2, 4]);
        let r = start(&img, "t", 0, Request::Cancel).unwrap();
        apply(&mut img, r);
        let p = p0(&img);
        // Kafka's order too: the original replicas as the move listed them (target first).
        assert_eq!(
            (p.replicas.clone(), p.isr.clone()),
            (vec![2, 3, 1], vec![1, 2])
        );
        assert!(!p.reassigning());
        let again = start(&img, "t", 0, Request::Cancel).unwrap_err();
        assert_eq!(again.code, ErrorCode::NoReassignmentInProgress);
    }

    #[test]
    fn a_new_target_replaces_a_running_move_relative_to_the_original_replicas() {
        let mut img = image();
        let r = start(&img, "t", 0, Request::MoveTo(&[1, 2, 4])).unwrap();
        apply(&mut img, r);
        let r = start(&img, "t", 0, Request::MoveTo(&[1, 4, 3])).unwrap();
        assert_eq!(r.replicas, vec![1, 4, 3, 2]);
        assert_eq!((r.adding_replicas, r.removing_replicas), (vec![4], vec![2]));
    }

    #[test]
    fn bad_targets_are_refused() {
        let img = image();
        for (target, code) in [
            (&[][..], ErrorCode::InvalidReplicaAssignment),
            (&[1, 1][..], ErrorCode::InvalidReplicaAssignment),
            (&[1, 9][..], ErrorCode::InvalidReplicaAssignment),
        ] {
            assert_eq!(
                start(&img, "t", 0, Request::MoveTo(target))
                    .unwrap_err()
                    .code,
                code,
                "{target:?}"
            );
        }
        let unknown = start(&img, "t", 3, Request::MoveTo(&[1])).unwrap_err();
        assert_eq!(unknown.code, ErrorCode::UnknownTopicOrPartition);
        let unknown = start(&img, "u", 0, Request::MoveTo(&[1])).unwrap_err();
        assert_eq!(unknown.code, ErrorCode::UnknownTopicOrPartition);
    }

    #[test]
    fn fields_of_a_running_move_survive_records_that_do_not_touch_them() {
        let mut img = image();
        let r = start(&img, "t", 0, Request::MoveTo(&[1, 2, 4])).unwrap();
        apply(&mut img, r);
        let replayed = MetadataImage::replay(1, &img.to_records());
        assert_eq!(p0(&replayed), p0(&img));
        assert_eq!(p0(&replayed).adding, vec![4]);
    }
}
