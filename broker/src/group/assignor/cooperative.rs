//! The revoke-first rule of incremental rebalancing: a member is never handed a partition
//! that another member of the group still owns. The owner's new assignment leaves it out,
//! so the owner revokes it (commits, stops fetching); the partition goes to its target
//! owner in a later generation, once nobody reports owning it.

use std::collections::{BTreeMap, BTreeSet};

use super::Assignment;
use crate::group::types::TopicPartition;

/// What each member gets in this generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cooperative {
    /// Member id → partitions it may consume in this generation.
    pub given: Assignment,
    /// Member id → partitions it owns but must release (not in `given`).
    pub revoking: Assignment,
    /// Partitions targeted at a member but withheld because another member still owns
    /// them; non-empty means a follow-up rebalance is needed.
    pub pending: BTreeSet<TopicPartition>,
}

/// Applies the revoke-first rule to `target`, given what every member `owned` when it
/// joined. A member missing from `owned` owns nothing.
pub fn cooperative(
    target: &Assignment,
    owned: &BTreeMap<String, BTreeSet<TopicPartition>>,
) -> Cooperative {
    let mut owner: BTreeMap<&TopicPartition, &str> = BTreeMap::new();
    for (id, parts) in owned {
        if target.contains_key(id) {
            for tp in parts {
                owner.entry(tp).or_insert(id.as_str());
            }
        }
    }
    let mut given = Assignment::new();
    let mut revoking = Assignment::new();
    let mut pending = BTreeSet::new();
    for (id, parts) in target {
        let mut mine = BTreeSet::new();
        for tp in parts {
            match owner.get(tp) {
                Some(o) if *o != id.as_str() => {
                    pending.insert(tp.clone());
                }
                _ => {
                    mine.insert(tp.clone());
                }
            }
        }
        let released: BTreeSet<TopicPartition> = owned
            .get(id)
            .map(|o| o.difference(parts).cloned().collect())
            .unwrap_or_default();
        given.insert(id.clone(), mine);
        revoking.insert(id.clone(), released);
    }
    Cooperative {
        given,
        revoking,
        pending,
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn set(parts: &[i32]) -> BTreeSet<TopicPartition> {
        parts.iter().map(|p| TopicPartition::new("t", *p)).collect()
    }

    #[test]
    fn moving_partition_is_revoked_first_then_assigned() {
        // a owned 0..3; target gives 2 to b.
        let target: Assignment = [
            ("a".to_string(), set(&[0, 1])),
            ("b".to_string(), set(&[2])),
        ]
        .into();
        let owned: BTreeMap<String, BTreeSet<TopicPartition>> =
            [("a".to_string(), set(&[0, 1, 2]))].into();
        let c = cooperative(&target, &owned);
        assert_eq!(c.given["a"], set(&[0, 1]));
        assert_eq!(c.given["b"], set(&[]));
        assert_eq!(c.revoking["a"], set(&[2]));
        assert_eq!(c.pending, set(&[2]));

        // Next generation: a reports it released 2.
        let owned: BTreeMap<String, BTreeSet<TopicPartition>> =
            [("a".to_string(), set(&[0, 1]))].into();
        let c = cooperative(&target, &owned);
        assert_eq!(c.given["b"], set(&[2]));
        assert!(c.pending.is_empty());
        assert!(c.revoking["a"].is_empty());
    }

    #[test]
    fn departed_owner_does_not_block() {
        let target: Assignment = [("b".to_string(), set(&[0, 1]))].into();
        // "a" left the group: its stale claim is ignored.
        let owned: BTreeMap<String, BTreeSet<TopicPartition>> =
            [("a".to_string(), set(&[0, 1]))].into();
        let c = cooperative(&target, &owned);
        assert_eq!(c.given["b"], set(&[0, 1]));
        assert!(c.pending.is_empty());
    }

    #[test]
    fn unmoved_partitions_stay_put() {
        let target: Assignment =
            [("a".to_string(), set(&[0])), ("b".to_string(), set(&[1]))].into();
        let owned: BTreeMap<String, BTreeSet<TopicPartition>> =
            [("a".to_string(), set(&[0])), ("b".to_string(), set(&[1]))].into();
        let c = cooperative(&target, &owned);
        assert_eq!(c.given, target);
        assert!(c.pending.is_empty());
    }
}
