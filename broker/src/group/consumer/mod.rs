//! KIP-848 consumer groups (`group.protocol=consumer`): the coordinator computes every
//! member's target assignment itself, and members reach it one heartbeat at a time. Pure
//! logic like the classic machine: every entry point takes `now`, nothing sleeps or does
//! I/O, and topic names stand for topics (the Kafka layer maps them to topic ids).
//!
//! - Epochs: the *group epoch* bumps whenever membership, a subscription or a subscribed
//!   topic's partition count changes; the target assignment is recomputed for it (the
//!   *assignment epoch*). A member's *member epoch* reaches the assignment epoch once the
//!   member holds exactly what it may hold of its target.
//! - Revoke first (`reconcile.rs`): a member first gives up what left its target (its epoch
//!   stays until it reports the partitions released), and is only handed a partition that
//!   no other member holds or is still releasing.
//! - Liveness: a member that does not heartbeat within the session timeout, or does not
//!   release within its rebalance timeout, is removed (the group epoch bumps).
//!
//! `error.rs`: [`HeartbeatError`]; `kind.rs`: a group is classic or a consumer group.

mod error;
mod kind;
mod reconcile;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use super::assignor::{AssignorKind, MemberInput};
use super::machine::GroupConfig;
use super::types::{Millis, PartitionCounts, TopicPartition};

pub use error::HeartbeatError;

/// Member epoch of a heartbeat that joins (or rejoins after being fenced).
pub const JOIN_EPOCH: i32 = 0;
/// Member epoch of a heartbeat that leaves the group.
pub const LEAVE_EPOCH: i32 = -1;
/// Member epoch of a static member's heartbeat that leaves for now (treated as a leave).
pub const STATIC_LEAVE_EPOCH: i32 = -2;

/// A ConsumerGroupHeartbeat in coordinator words. `None` fields were not sent (unchanged
/// since the member's previous heartbeat).
#[derive(Debug, Clone, Default)]
pub struct Heartbeat {
    /// The member's id (v1 clients make their own; empty: the coordinator makes one).
    pub member_id: String,
    /// 0 joins, -1 leaves, otherwise the epoch the member is at.
    pub member_epoch: i32,
    /// Static membership id.
    pub instance_id: Option<String>,
    /// The member's rack.
    pub rack_id: Option<String>,
    /// How long the member may take to release partitions; -1: unchanged.
    pub rebalance_timeout_ms: i32,
    /// Subscribed topic names.
    pub subscribed_topics: Option<Vec<String>>,
    /// Requested server-side assignor.
    pub server_assignor: Option<String>,
    /// The partitions the member owns now.
    pub owned: Option<Vec<TopicPartition>>,
    /// The client's id.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
}

/// The answer to a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatReply {
    /// The member's id.
    pub member_id: String,
    /// The member's epoch now (-1 after a leave).
    pub member_epoch: i32,
    /// How often the member should heartbeat.
    pub heartbeat_interval_ms: i32,
    /// The partitions the member may own now, when the member should look at them.
    pub assignment: Option<Vec<TopicPartition>>,
}

/// Where a member is on its way to its target assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    /// Holds what it may hold of its target at the assignment epoch.
    Stable,
    /// Must report partitions released before it moves on.
    UnrevokedPartitions,
    /// Waits for partitions another member still holds.
    UnreleasedPartitions,
}

impl MemberState {
    /// Kafka's name.
    pub fn name(self) -> &'static str {
        match self {
            MemberState::Stable => "stable",
            MemberState::UnrevokedPartitions => "unrevoked_partitions",
            MemberState::UnreleasedPartitions => "unreleased_partitions",
        }
    }
}

/// One member of a consumer group.
#[derive(Debug, Clone)]
pub struct ConsumerMember {
    /// Member id.
    pub id: String,
    /// Static membership id.
    pub instance_id: Option<String>,
    /// Rack.
    pub rack_id: Option<String>,
    /// The client's id.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
    /// The member's epoch.
    pub member_epoch: i32,
    /// Its epoch before the last bump (a member that missed one answer may still use it).
    pub previous_epoch: i32,
    /// Reconciliation state.
    pub state: MemberState,
    /// Subscribed topics.
    pub subscribed: BTreeSet<String>,
    /// The assignor it asked for.
    pub assignor: Option<String>,
    /// How long it may take to release partitions.
    pub rebalance_timeout_ms: i32,
    /// Partitions it may own now.
    pub assigned: BTreeSet<TopicPartition>,
    /// Partitions it must release (still its own until it says so).
    pub revoking: BTreeSet<TopicPartition>,
    /// Last heartbeat.
    pub last_seen: Millis,
    /// When it must have released `revoking`.
    pub revoke_deadline: Option<Millis>,
}

/// A consumer group: members, epochs and the target assignment.
#[derive(Debug, Clone)]
pub struct ConsumerGroup {
    config: GroupConfig,
    group_epoch: i32,
    assignment_epoch: i32,
    members: BTreeMap<String, ConsumerMember>,
    target: BTreeMap<String, BTreeSet<TopicPartition>>,
    topic_snapshot: BTreeMap<String, Option<u32>>,
    assignor: AssignorKind,
    next_member_seq: u64,
}

impl ConsumerGroup {
    /// An empty group at epoch 0.
    pub fn new(config: GroupConfig) -> Self {
        ConsumerGroup {
            config,
            group_epoch: 0,
            assignment_epoch: 0,
            members: BTreeMap::new(),
            target: BTreeMap::new(),
            topic_snapshot: BTreeMap::new(),
            assignor: AssignorKind::Sticky,
            next_member_seq: 0,
        }
    }

    /// The group epoch.
    pub fn group_epoch(&self) -> i32 {
        self.group_epoch
    }
    /// The epoch of the current target assignment.
    pub fn assignment_epoch(&self) -> i32 {
        self.assignment_epoch
    }
    /// Members by id.
    pub fn members(&self) -> &BTreeMap<String, ConsumerMember> {
        &self.members
    }
    /// No members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
    /// A member's target assignment.
    pub fn target(&self, member_id: &str) -> BTreeSet<TopicPartition> {
        self.target.get(member_id).cloned().unwrap_or_default()
    }
    /// The server-side assignor's Kafka name.
    pub fn assignor_name(&self) -> &'static str {
        match self.assignor {
            AssignorKind::Range => "range",
            _ => "uniform",
        }
    }

    /// Kafka's state name: Empty, Assigning, Reconciling or Stable.
    pub fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.assignment_epoch < self.group_epoch {
            "Assigning"
        } else if self
            .members
            .values()
            .any(|m| m.member_epoch != self.assignment_epoch || m.state != MemberState::Stable)
        {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    /// The earliest session or revocation deadline.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.members
            .values()
            .flat_map(|m| [Some(self.session_deadline(m)), m.revoke_deadline])
            .flatten()
            .min()
    }

    fn session_deadline(&self, m: &ConsumerMember) -> Millis {
        m.last_seen + Millis::from(self.config.consumer_session_timeout_ms)
    }

    /// One heartbeat: join, leave, or keep alive and move towards the target.
    pub fn heartbeat(
        &mut self,
        now: Millis,
        req: Heartbeat,
        counts: &dyn PartitionCounts,
    ) -> Result<HeartbeatReply, HeartbeatError> {
        if req.member_epoch == LEAVE_EPOCH || req.member_epoch == STATIC_LEAVE_EPOCH {
            return self.leave(&req.member_id, req.member_epoch);
        }
        let assignor = match req.server_assignor.as_deref() {
            None => None,
            Some("range") => Some(AssignorKind::Range),
            Some("uniform") => Some(AssignorKind::Sticky),
            Some(other) => return Err(HeartbeatError::UnsupportedAssignor(other.to_string())),
        };
        let joining = req.member_epoch == JOIN_EPOCH;
        let member_id = if joining {
            self.join(now, &req)?
        } else {
            self.check_epoch(&req)?;
            req.member_id.clone()
        };
        // The group runs one assignor: the one its latest member asked for (Kafka lets
        // the most requested one win; one is enough while every client asks for the same).
        let mut bump = false;
        if let Some(a) = assignor.filter(|a| *a != self.assignor) {
            self.assignor = a;
            bump = true;
        }
        let before = self
            .members
            .get(&member_id)
            .map(|m| (m.member_epoch, m.assigned.clone()));
        let Some(m) = self.members.get_mut(&member_id) else {
            return Err(HeartbeatError::UnknownMember(member_id));
        };
        m.last_seen = now;
        if req.rebalance_timeout_ms > 0 {
            m.rebalance_timeout_ms = req.rebalance_timeout_ms;
        }
        if req.rack_id.is_some() {
            m.rack_id = req.rack_id.clone();
        }
        if let Some(topics) = &req.subscribed_topics {
            let topics: BTreeSet<String> = topics.iter().cloned().collect();
            if topics != m.subscribed {
                m.subscribed = topics;
                bump = true;
            }
        }
        if bump || self.topics_changed(counts) {
            self.group_epoch += 1;
        }
        if self.assignment_epoch < self.group_epoch {
            self.compute_target(counts);
        }
        let owned: Option<BTreeSet<TopicPartition>> = req.owned.map(|o| o.into_iter().collect());
        self.reconcile(now, &member_id, owned.as_ref());
        let Some(m) = self.members.get(&member_id) else {
            return Err(HeartbeatError::UnknownMember(member_id));
        };
        let changed = before.as_ref() != Some(&(m.member_epoch, m.assigned.clone()));
        let full = joining || owned.is_some();
        Ok(HeartbeatReply {
            member_id: member_id.clone(),
            member_epoch: m.member_epoch,
            heartbeat_interval_ms: self.config.consumer_heartbeat_interval_ms,
            assignment: (changed || full).then(|| m.assigned.iter().cloned().collect()),
        })
    }

    /// Epoch 0: a new member, or one that lost its place (fenced) and starts over.
    fn join(&mut self, now: Millis, req: &Heartbeat) -> Result<String, HeartbeatError> {
        if req.subscribed_topics.is_none() && !self.members.contains_key(&req.member_id) {
            return Err(HeartbeatError::Invalid("a joining member must subscribe"));
        }
        if let Some(iid) = req.instance_id.as_deref() {
            let held = self
                .members
                .values()
                .any(|m| m.instance_id.as_deref() == Some(iid) && m.id != req.member_id);
            if held {
                return Err(HeartbeatError::UnreleasedInstance(iid.to_string()));
            }
        }
        if let Some(m) = self.members.get_mut(&req.member_id) {
            // It starts over owning nothing: what it held is free (its target still names
            // it, so it gets those partitions back unless someone else took them).
            m.assigned.clear();
            m.revoking.clear();
            m.revoke_deadline = None;
            m.member_epoch = JOIN_EPOCH;
            m.previous_epoch = JOIN_EPOCH;
            m.state = MemberState::Stable;
            return Ok(req.member_id.clone());
        }
        if self.members.len() >= self.config.max_size {
            return Err(HeartbeatError::GroupFull);
        }
        let id = if req.member_id.is_empty() {
            self.next_member_seq += 1;
            format!(
                "{}-{}-{}",
                if req.client_id.is_empty() {
                    "member"
                } else {
                    &req.client_id
                },
                self.config.member_id_salt,
                self.next_member_seq
            )
        } else {
            req.member_id.clone()
        };
        self.members.insert(
            id.clone(),
            ConsumerMember {
                id: id.clone(),
                instance_id: req.instance_id.clone(),
                rack_id: req.rack_id.clone(),
                client_id: req.client_id.clone(),
                client_host: req.client_host.clone(),
                member_epoch: JOIN_EPOCH,
                previous_epoch: JOIN_EPOCH,
                state: MemberState::Stable,
                // Set here so that joining bumps the group epoch once, not twice.
                subscribed: req.subscribed_topics.iter().flatten().cloned().collect(),
                assignor: req.server_assignor.clone(),
                rebalance_timeout_ms: req.rebalance_timeout_ms.max(0),
                assigned: BTreeSet::new(),
                revoking: BTreeSet::new(),
                last_seen: now,
                revoke_deadline: None,
            },
        );
        self.group_epoch += 1;
        Ok(id)
    }

    /// A known member at its current epoch, or at its previous one when it only claims
    /// partitions it still has (its last answer was lost).
    fn check_epoch(&self, req: &Heartbeat) -> Result<(), HeartbeatError> {
        let m = self
            .members
            .get(&req.member_id)
            .ok_or_else(|| HeartbeatError::UnknownMember(req.member_id.clone()))?;
        if req.member_epoch == m.member_epoch {
            return Ok(());
        }
        let owned_ok = req
            .owned
            .as_ref()
            .is_some_and(|o| o.iter().all(|tp| m.assigned.contains(tp)));
        if req.member_epoch == m.previous_epoch && owned_ok {
            return Ok(());
        }
        Err(HeartbeatError::FencedEpoch {
            got: req.member_epoch,
            current: m.member_epoch,
        })
    }

    fn leave(&mut self, member_id: &str, epoch: i32) -> Result<HeartbeatReply, HeartbeatError> {
        if self.members.remove(member_id).is_none() {
            return Err(HeartbeatError::UnknownMember(member_id.to_string()));
        }
        self.target.remove(member_id);
        self.group_epoch += 1;
        Ok(HeartbeatReply {
            member_id: member_id.to_string(),
            member_epoch: epoch,
            heartbeat_interval_ms: 0,
            assignment: None,
        })
    }

    /// Expires members whose session ended or who did not release in time.
    pub fn tick(&mut self, now: Millis) -> Vec<String> {
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                now > self.session_deadline(m) || m.revoke_deadline.is_some_and(|d| now > d)
            })
            .map(|m| m.id.clone())
            .collect();
        for id in &expired {
            self.members.remove(id);
            self.target.remove(id);
        }
        if !expired.is_empty() {
            self.group_epoch += 1;
        }
        expired
    }

    /// Whether `member_id` at `epoch` may commit or fetch offsets (OffsetCommit v9+,
    /// OffsetFetch v9+). No member and a negative epoch is an admin's or a standalone
    /// consumer's commit, accepted only while the group is empty.
    pub fn validate_offsets_access(
        &mut self,
        now: Millis,
        member_id: &str,
        epoch: i32,
    ) -> Result<(), HeartbeatError> {
        if member_id.is_empty() && epoch < 0 {
            return if self.members.is_empty() {
                Ok(())
            } else {
                Err(HeartbeatError::UnknownMember(String::new()))
            };
        }
        let m = self
            .members
            .get_mut(member_id)
            .ok_or_else(|| HeartbeatError::UnknownMember(member_id.to_string()))?;
        if epoch != m.member_epoch {
            return Err(HeartbeatError::StaleEpoch {
                got: epoch,
                current: m.member_epoch,
            });
        }
        m.last_seen = m.last_seen.max(now);
        Ok(())
    }

    fn topics_changed(&self, counts: &dyn PartitionCounts) -> bool {
        self.topic_snapshot
            .iter()
            .any(|(t, n)| counts.partition_count(t) != *n)
    }

    /// Runs the assignor over every member's subscription, at the group epoch.
    fn compute_target(&mut self, counts: &dyn PartitionCounts) {
        let empty = BTreeSet::new();
        let inputs: Vec<MemberInput<'_>> = self
            .members
            .values()
            .map(|m| MemberInput {
                id: &m.id,
                topics: &m.subscribed,
                // The uniform (sticky) assignor keeps partitions where the last target put them.
                owned: self.target.get(&m.id).unwrap_or(&empty),
            })
            .collect();
        self.target = self.assignor.assign(&inputs, counts);
        let topics: BTreeSet<&String> = self.members.values().flat_map(|m| &m.subscribed).collect();
        self.topic_snapshot = topics
            .into_iter()
            .map(|t| (t.clone(), counts.partition_count(t)))
            .collect();
        self.assignment_epoch = self.group_epoch;
    }
}
