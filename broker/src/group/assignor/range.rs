//! Kafka's range assignor: per topic, members (sorted by id) get contiguous ranges; the
//! first `partitions % members` get one extra.

use std::collections::BTreeSet;

use super::{empty_assignment, Assignment, MemberInput};
use crate::group::types::{PartitionCounts, TopicPartition};

pub(super) fn assign(members: &[MemberInput<'_>], counts: &dyn PartitionCounts) -> Assignment {
    let mut out = empty_assignment(members);
    let topics: BTreeSet<&String> = members.iter().flat_map(|m| m.topics.iter()).collect();
    for topic in topics {
        let n = counts.partition_count(topic).unwrap_or(0) as usize;
        let subs: Vec<&str> = members
            .iter()
            .filter(|m| m.topics.contains(topic))
            .map(|m| m.id)
            .collect();
        if subs.is_empty() {
            continue;
        }
        let (per, extra) = (n / subs.len(), n % subs.len());
        let mut next = 0usize;
        for (i, id) in subs.iter().enumerate() {
            let take = per + usize::from(i < extra);
            if let Some(set) = out.get_mut(*id) {
                for p in next..next + take {
                    set.insert(TopicPartition::new(topic.as_str(), p as i32));
                }
            }
            next += take;
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::test_util::*;
    use super::super::AssignorKind;
    use crate::group::types::TopicPartition;

    #[test]
    fn contiguous_ranges_with_extras_first() {
        let m = Members::new()
            .add("a", &["t"], &[])
            .add("b", &["t"], &[])
            .add("c", &["t"], &[]);
        let c = counts(&[("t", 7)]);
        let a = AssignorKind::Range.assign(&m.inputs(), &c);
        let parts = |id: &str| -> Vec<i32> { a[id].iter().map(|p| p.partition).collect() };
        assert_eq!(parts("a"), vec![0, 1, 2]);
        assert_eq!(parts("b"), vec![3, 4]);
        assert_eq!(parts("c"), vec![5, 6]);
        check_complete(&a, &m, &c);
    }

    #[test]
    fn per_topic_ranges_only_among_subscribers() {
        let m = Members::new()
            .add("a", &["x", "y"], &[])
            .add("b", &["y"], &[]);
        let c = counts(&[("x", 2), ("y", 2)]);
        let a = AssignorKind::Range.assign(&m.inputs(), &c);
        assert_eq!(a["a"].len(), 3);
        assert!(a["b"].contains(&TopicPartition::new("y", 1)));
        check_complete(&a, &m, &c);
    }

    #[test]
    fn more_members_than_partitions_and_unknown_topics() {
        let m = Members::new()
            .add("a", &["t", "gone"], &[])
            .add("b", &["t"], &[])
            .add("c", &["t"], &[]);
        let c = counts(&[("t", 2)]);
        let a = AssignorKind::Range.assign(&m.inputs(), &c);
        assert_eq!(sizes(&a), vec![1, 1, 0]);
        check_complete(&a, &m, &c);
    }
}
