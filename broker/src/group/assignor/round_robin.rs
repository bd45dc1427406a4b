//! Kafka's round-robin assignor: all partitions in (topic, partition) order, dealt to the
//! members in id order, skipping members not subscribed to the partition's topic.

use super::{all_partitions, empty_assignment, Assignment, MemberInput};
use crate::group::types::PartitionCounts;

pub(super) fn assign(members: &[MemberInput<'_>], counts: &dyn PartitionCounts) -> Assignment {
    let mut out = empty_assignment(members);
    if members.is_empty() {
        return out;
    }
    let mut cursor = 0usize;
    for tp in all_partitions(members, counts) {
        // At most one full turn: someone subscribes, or all_partitions would not list it.
        for _ in 0..members.len() {
            let Some(m) = members.get(cursor % members.len()) else {
                break;
            };
            cursor += 1;
            if m.topics.contains(&tp.topic) {
                if let Some(set) = out.get_mut(m.id) {
                    set.insert(tp);
                }
                break;
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::test_util::*;
    use super::super::AssignorKind;

    #[test]
    fn deals_in_turn() {
        let m = Members::new()
            .add("a", &["t", "u"], &[])
            .add("b", &["t", "u"], &[]);
        let c = counts(&[("t", 3), ("u", 2)]);
        let a = AssignorKind::RoundRobin.assign(&m.inputs(), &c);
        let list = |id: &str| -> Vec<String> { a[id].iter().map(|p| p.to_string()).collect() };
        assert_eq!(list("a"), vec!["t-0", "t-2", "u-1"]);
        assert_eq!(list("b"), vec!["t-1", "u-0"]);
        check_complete(&a, &m, &c);
    }

    #[test]
    fn skips_unsubscribed_members() {
        let m = Members::new()
            .add("a", &["t"], &[])
            .add("b", &["u"], &[])
            .add("c", &["t", "u"], &[]);
        let c = counts(&[("t", 4), ("u", 2)]);
        let a = AssignorKind::RoundRobin.assign(&m.inputs(), &c);
        check_complete(&a, &m, &c);
        assert_eq!(a["b"].len() + a["c"].len() + a["a"].len(), 6);
    }

    #[test]
    fn no_members_no_panic() {
        let m = Members::new();
        let a = AssignorKind::RoundRobin.assign(&m.inputs(), &counts(&[("t", 4)]));
        assert!(a.is_empty());
    }
}
