//! How one member moves towards its target assignment (Kafka's
//! `CurrentAssignmentBuilder`), revoke first:
//!
//! 1. What left its target is revoked: the member keeps the rest, keeps its epoch, and
//!    must report (in `owned`) that it released the revoked partitions.
//! 2. Then its epoch becomes the assignment epoch and it gets every partition of its
//!    target that no other member holds or is still releasing; the others follow on a
//!    later heartbeat, once their previous owners released them.

use std::collections::BTreeSet;

use super::{ConsumerGroup, MemberState};
use crate::group::types::{Millis, TopicPartition};

impl ConsumerGroup {
    /// Partitions held (assigned or still being released) by members other than `me`.
    fn held_by_others(&self, me: &str) -> BTreeSet<TopicPartition> {
        self.members
            .values()
            .filter(|m| m.id != me)
            .flat_map(|m| m.assigned.iter().chain(m.revoking.iter()))
            .cloned()
            .collect()
    }

    /// One reconciliation step for `member_id`, given what it reports owning (`None`: not
    /// reported in this heartbeat).
    pub(super) fn reconcile(
        &mut self,
        now: Millis,
        member_id: &str,
        owned: Option<&BTreeSet<TopicPartition>>,
    ) {
        let target = self.target(member_id);
        let held = self.held_by_others(member_id);
        let assignment_epoch = self.assignment_epoch;
        let Some(m) = self.members.get_mut(member_id) else {
            return;
        };
        if m.state == MemberState::UnrevokedPartitions {
            let released = owned.is_some_and(|o| o.is_disjoint(&m.revoking));
            if !released {
                return;
            }
            m.revoking.clear();
            m.revoke_deadline = None;
            m.state = MemberState::Stable;
        }
        if m.state == MemberState::Stable && m.member_epoch == assignment_epoch {
            return;
        }
        let to_revoke: BTreeSet<TopicPartition> = m.assigned.difference(&target).cloned().collect();
        if !to_revoke.is_empty() {
            m.assigned = m.assigned.intersection(&target).cloned().collect();
            m.revoking = to_revoke;
            m.state = MemberState::UnrevokedPartitions;
            m.revoke_deadline = Some(now + i64::from(m.rebalance_timeout_ms.max(1)));
            return;
        }
        let wanted: Vec<TopicPartition> = target.difference(&m.assigned).cloned().collect();
        let mut unreleased = false;
        for tp in wanted {
            if held.contains(&tp) {
                unreleased = true;
            } else {
                m.assigned.insert(tp);
            }
        }
        if m.member_epoch != assignment_epoch {
            m.previous_epoch = m.member_epoch;
            m.member_epoch = assignment_epoch;
        }
        m.state = if unreleased {
            MemberState::UnreleasedPartitions
        } else {
            MemberState::Stable
        };
    }
}
