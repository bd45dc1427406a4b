//! A sticky, balanced assignor. Every member keeps what it owns (if still subscribed and
//! not claimed by a member earlier in id order); free partitions go to the least-loaded
//! subscriber; then, while some member has two more partitions than a subscriber it could
//! give one to, one partition moves. Moves happen only to restore balance, so a join or
//! leave moves as few partitions as possible (with identical subscriptions: exactly the
//! excess of the over-loaded members).

use std::collections::{BTreeMap, BTreeSet};

use super::{all_partitions, empty_assignment, Assignment, MemberInput};
use crate::group::types::{PartitionCounts, TopicPartition};

pub(super) fn assign(members: &[MemberInput<'_>], counts: &dyn PartitionCounts) -> Assignment {
    let mut out = empty_assignment(members);
    let all = all_partitions(members, counts);
    let exists: BTreeSet<&TopicPartition> = all.iter().collect();
    let subs: BTreeMap<&str, &BTreeSet<String>> =
        members.iter().map(|m| (m.id, m.topics)).collect();

    // 1. Keep valid ownership; the first claimant (id order) wins a disputed partition.
    let mut claimed: BTreeSet<TopicPartition> = BTreeSet::new();
    for m in members {
        for tp in m.owned {
            if exists.contains(tp) && m.topics.contains(&tp.topic) && claimed.insert(tp.clone()) {
                if let Some(set) = out.get_mut(m.id) {
                    set.insert(tp.clone());
                }
            }
        }
    }

    // 2. Free partitions to the least-loaded subscriber (ties: lowest id).
    for tp in all.iter().filter(|tp| !claimed.contains(*tp)) {
        let target = out
            .iter()
            .filter(|(id, _)| subs.get(id.as_str()).is_some_and(|t| t.contains(&tp.topic)))
            .min_by_key(|(id, set)| (set.len(), (*id).clone()))
            .map(|(id, _)| id.clone());
        if let Some(id) = target {
            if let Some(set) = out.get_mut(&id) {
                set.insert(tp.clone());
            }
        }
    }

    // 3. Balance: each move strictly lowers the sum of squared loads, so this ends; the
    //    bound is a guard, not the expected exit.
    let max_moves = all.len().saturating_mul(members.len().max(1)) + 1;
    for _ in 0..max_moves {
        let Some((from, to, tp)) = best_move(&out, &subs) else {
            break;
        };
        if let Some(set) = out.get_mut(&from) {
            set.remove(&tp);
        }
        if let Some(set) = out.get_mut(&to) {
            set.insert(tp);
        }
    }
    out
}

/// One move from the most loaded member able to give a partition to a member with at
/// least two fewer; `None` when balanced.
fn best_move(
    out: &Assignment,
    subs: &BTreeMap<&str, &BTreeSet<String>>,
) -> Option<(String, String, TopicPartition)> {
    let mut givers: Vec<(&String, &BTreeSet<TopicPartition>)> = out.iter().collect();
    // Most loaded first; ties by id for determinism.
    givers.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(b.0)));
    for (from, parts) in givers {
        let mut takers: Vec<(&String, usize)> = out
            .iter()
            .filter(|(id, set)| *id != from && set.len() + 1 < parts.len())
            .map(|(id, set)| (id, set.len()))
            .collect();
        takers.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(b.0)));
        for (to, _) in takers {
            let Some(to_topics) = subs.get(to.as_str()) else {
                continue;
            };
            // Give away the highest partition the taker subscribes to.
            if let Some(tp) = parts.iter().rev().find(|tp| to_topics.contains(&tp.topic)) {
                return Some((from.clone(), to.clone(), tp.clone()));
            }
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::super::test_util::*;
    use super::super::{Assignment, AssignorKind};
    use crate::group::types::TopicPartition;
    use std::collections::BTreeSet;

    fn moved(before: &Assignment, after: &Assignment) -> usize {
        // Partitions whose owner changed (new partitions or departed owners not counted).
        let mut n = 0;
        for (id, parts) in before {
            if let Some(now) = after.get(id) {
                n += parts.difference(now).count();
            }
        }
        n
    }

    fn owned_list(a: &Assignment, id: &str) -> Vec<(String, i32)> {
        a[id]
            .iter()
            .map(|p| (p.topic.clone(), p.partition))
            .collect()
    }

    fn members_from(a: &Assignment, topics: &[&str], extra: &[&str]) -> Members {
        let mut m = Members::new();
        for id in a.keys() {
            let owned = owned_list(a, id);
            let o: Vec<(&str, i32)> = owned.iter().map(|(t, p)| (t.as_str(), *p)).collect();
            m = m.add(id, topics, &o);
        }
        for id in extra {
            m = m.add(id, topics, &[]);
        }
        m
    }

    #[test]
    fn fresh_group_is_balanced() {
        let m = Members::new()
            .add("a", &["t"], &[])
            .add("b", &["t"], &[])
            .add("c", &["t"], &[]);
        let c = counts(&[("t", 6)]);
        let a = AssignorKind::Sticky.assign(&m.inputs(), &c);
        assert_eq!(sizes(&a), vec![2, 2, 2]);
        check_complete(&a, &m, &c);
    }

    #[test]
    fn join_moves_only_the_excess() {
        let c = counts(&[("t", 6)]);
        let m = Members::new()
            .add("a", &["t"], &[])
            .add("b", &["t"], &[])
            .add("c", &["t"], &[]);
        let before = AssignorKind::Sticky.assign(&m.inputs(), &c);
        let m2 = members_from(&before, &["t"], &["d"]);
        let after = AssignorKind::Sticky.assign(&m2.inputs(), &c);
        check_complete(&after, &m2, &c);
        let mut s = sizes(&after);
        s.sort();
        assert_eq!(s, vec![1, 1, 2, 2]);
        // 6 over 4 is 2,2,1,1: a single partition has to move.
        assert_eq!(moved(&before, &after), 1);
    }

    #[test]
    fn leave_moves_only_the_leavers_partitions() {
        let c = counts(&[("t", 100)]);
        let mut m = Members::new();
        for i in 0..10 {
            m = m.add(&format!("m{i}"), &["t"], &[]);
        }
        let before = AssignorKind::Sticky.assign(&m.inputs(), &c);
        let mut gone = before.clone();
        gone.remove("m3");
        let m2 = members_from(&gone, &["t"], &[]);
        let after = AssignorKind::Sticky.assign(&m2.inputs(), &c);
        check_complete(&after, &m2, &c);
        assert_eq!(moved(&gone, &after), 0, "survivors keep everything");
        let s = sizes(&after);
        assert!(s.iter().all(|n| *n == 11 || *n == 12), "{s:?}");
    }

    #[test]
    fn join_and_leave_on_100_partitions_is_minimal() {
        let c = counts(&[("t", 100)]);
        let mut m = Members::new();
        for i in 0..10 {
            m = m.add(&format!("m{i:02}"), &["t"], &[]);
        }
        let before = AssignorKind::Sticky.assign(&m.inputs(), &c);
        let mut next = before.clone();
        next.remove("m04");
        let m2 = members_from(&next, &["t"], &["m10"]);
        let after = AssignorKind::Sticky.assign(&m2.inputs(), &c);
        check_complete(&after, &m2, &c);
        assert_eq!(moved(&next, &after), 0);
        assert_eq!(after["m10"].len(), 10);
    }

    #[test]
    fn disputed_and_stale_ownership_is_ignored() {
        let c = counts(&[("t", 4)]);
        let m = Members::new()
            .add("a", &["t"], &[("t", 0), ("t", 9), ("u", 0)])
            .add("b", &["t"], &[("t", 0), ("t", 1)]);
        let a = AssignorKind::Sticky.assign(&m.inputs(), &c);
        check_complete(&a, &m, &c);
        assert!(a["a"].contains(&TopicPartition::new("t", 0)));
        assert!(a["b"].contains(&TopicPartition::new("t", 1)));
        assert_eq!(sizes(&a), vec![2, 2]);
    }

    #[test]
    fn heterogeneous_subscriptions_respect_topics() {
        let c = counts(&[("x", 4), ("y", 4)]);
        let m = Members::new()
            .add("a", &["x"], &[])
            .add("b", &["x", "y"], &[])
            .add("c", &["y"], &[]);
        let a = AssignorKind::Sticky.assign(&m.inputs(), &c);
        check_complete(&a, &m, &c);
        let s = sizes(&a);
        assert!(
            s.iter().max().unwrap() - s.iter().min().unwrap() <= 1,
            "{s:?}"
        );
    }

    #[test]
    fn partition_count_growth_keeps_existing() {
        let m = Members::new().add("a", &["t"], &[("t", 0), ("t", 1)]).add(
            "b",
            &["t"],
            &[("t", 2), ("t", 3)],
        );
        let c = counts(&[("t", 8)]);
        let a = AssignorKind::Sticky.assign(&m.inputs(), &c);
        check_complete(&a, &m, &c);
        assert!(a["a"].is_superset(
            &[TopicPartition::new("t", 0), TopicPartition::new("t", 1)]
                .into_iter()
                .collect::<BTreeSet<_>>()
        ));
        assert_eq!(sizes(&a), vec![4, 4]);
    }

    #[test]
    fn deterministic_regardless_of_input_order() {
        let c = counts(&[("t", 9)]);
        let m1 = Members::new()
            .add("b", &["t"], &[("t", 3)])
            .add("a", &["t"], &[])
            .add("c", &["t"], &[("t", 0)]);
        let mut m2 = Members::new();
        for x in m1.0.iter().rev() {
            m2.0.push(x.clone());
        }
        assert_eq!(
            AssignorKind::Sticky.assign(&m1.inputs(), &c),
            AssignorKind::Sticky.assign(&m2.inputs(), &c)
        );
    }

    #[test]
    fn many_random_rounds_stay_complete_and_balanced() {
        // A fixed pseudo-random walk of joins and leaves (no rand dependency needed).
        let c = counts(&[("t", 37), ("u", 11)]);
        let mut state: Assignment = Assignment::new();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next_id = 0;
        for _ in 0..64 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut extra = Vec::new();
            if state.len() < 2 || !seed.is_multiple_of(3) {
                extra.push(format!("m{next_id:03}"));
                next_id += 1;
            } else {
                let victim = state
                    .keys()
                    .nth((seed as usize / 3) % state.len())
                    .cloned()
                    .unwrap();
                state.remove(&victim);
            }
            let extra_refs: Vec<&str> = extra.iter().map(String::as_str).collect();
            let m = members_from(&state, &["t", "u"], &extra_refs);
            let after = AssignorKind::Sticky.assign(&m.inputs(), &c);
            check_complete(&after, &m, &c);
            let s = sizes(&after);
            assert!(
                s.iter().max().unwrap() - s.iter().min().unwrap() <= 1,
                "{s:?}"
            );
            state = after;
        }
    }
}
