//! One consumer group: its members, generation and committed offsets, and the entry points
//! the I/O layer calls (join, sync, heartbeat, leave, tick, commit). Everything takes `now`
//! and returns values or [`Effect`]s; nothing here sleeps, locks or does I/O.
//!
//! Rebalancing is incremental: members keep fetching what they own while a rebalance runs;
//! a new generation hands out only partitions nobody else owns (see
//! `assignor::cooperative`), and a follow-up rebalance starts by itself once everyone has
//! synced when some partition was withheld.

use std::collections::{BTreeMap, BTreeSet};

use weir_protocol::ErrorCode;

use super::assignor::{cooperative, AssignorKind, MemberInput};
use super::consumer::ConsumerGroup;
use super::member::{Member, Protocol};
use super::offsets::OffsetStore;
use super::state::GroupState;
use super::types::{Millis, PartitionCounts, TopicPartition};

/// Coordinator-wide limits and knobs.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// Smallest accepted session timeout (Kafka: 6000).
    pub min_session_timeout_ms: i32,
    /// Largest accepted session timeout (Kafka: 1800000).
    pub max_session_timeout_ms: i32,
    /// How long the first rebalance of an empty group waits for more members.
    pub initial_rebalance_delay_ms: i64,
    /// Most members a group may have.
    pub max_size: usize,
    /// Longest commit metadata string.
    pub offset_metadata_max_bytes: usize,
    /// Mixed into member ids so ids from different broker runs never collide.
    pub member_id_salt: String,
    /// Heartbeat interval consumer-group (KIP-848) members are told to keep.
    pub consumer_heartbeat_interval_ms: i32,
    /// A consumer-group member without a heartbeat for this long is removed.
    pub consumer_session_timeout_ms: i32,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 3000,
            max_size: usize::MAX,
            offset_metadata_max_bytes: 4096,
            member_id_salt: "w".into(),
            consumer_heartbeat_interval_ms: 5000,
            consumer_session_timeout_ms: 45_000,
        }
    }
}

/// A JoinGroup, in coordinator words.
#[derive(Debug, Clone, Default)]
pub struct JoinRequest {
    /// Empty on a first join.
    pub member_id: String,
    /// Static membership id.
    pub instance_id: Option<String>,
    /// The client's id.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
    /// Requested session timeout.
    pub session_timeout_ms: i32,
    /// Requested rebalance timeout (≤ 0: the session timeout).
    pub rebalance_timeout_ms: i32,
    /// "consumer".
    pub protocol_type: String,
    /// Accepted assignors in preference order.
    pub protocols: Vec<Protocol>,
    /// Subscribed topics.
    pub topics: Vec<String>,
    /// Partitions the member still owns.
    pub owned: Vec<TopicPartition>,
}

/// A JoinGroup answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResponse {
    /// NONE on success.
    pub error: ErrorCode,
    /// The new generation.
    pub generation: i32,
    /// The group's protocol type.
    pub protocol_type: String,
    /// The chosen assignor.
    pub protocol_name: String,
    /// The leader's member id.
    pub leader: String,
    /// The member's id.
    pub member_id: String,
    /// (member id, instance id, metadata) of every member; leader only.
    pub members: Vec<(String, Option<String>, bytes::Bytes)>,
}

impl JoinResponse {
    /// An answer carrying only `error`.
    pub fn error(error: ErrorCode, member_id: &str) -> Self {
        JoinResponse {
            error,
            generation: -1,
            protocol_type: String::new(),
            protocol_name: String::new(),
            leader: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
        }
    }
}

/// What a JoinGroup call yields right away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinOutcome {
    /// Answer now.
    Done(JoinResponse),
    /// The answer comes later as [`Effect::JoinDone`] for this member id (possibly among
    /// the effects returned by this very call).
    Pending {
        /// The member's (maybe freshly assigned) id.
        member_id: String,
    },
}

/// Something the I/O layer must do after a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Answer the pending JoinGroup of `member_id`.
    JoinDone {
        /// Whose join.
        member_id: String,
        /// The answer.
        response: JoinResponse,
    },
    /// The group metadata changed: write a new GroupMetadata record (or a tombstone when
    /// the group is Dead).
    PersistMetadata,
    /// The leader's plan for the current generation arrived: answer the members whose
    /// SyncGroup waits for it (sync them again).
    PlanReady,
}

/// Protocol types whose leader client computes the assignment (Kafka's classic protocol):
/// the coordinator waits for the leader's SyncGroup and hands each member its part.
pub const CLIENT_ASSIGNED_PREFIX: &str = "kafka/";

/// One member's part of a leader's plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedAssignment {
    /// Whose.
    pub member_id: String,
    /// The bytes the leader sent, delivered as they are.
    pub blob: bytes::Bytes,
    /// The partitions they name, when the protocol is one the broker reads ("consumer");
    /// kept for lag, describe and ownership checks.
    pub partitions: Vec<TopicPartition>,
}

/// What a SyncGroup call yields right away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    /// Answer now.
    Done(SyncResponse),
    /// The leader's plan is not there yet: the answer comes after [`Effect::PlanReady`]
    /// (or REBALANCE_IN_PROGRESS when the generation ends first).
    Pending,
}

impl SyncOutcome {
    /// The answer, or REBALANCE_IN_PROGRESS while it waits (tests, and members that never
    /// wait: native groups).
    pub fn done(self) -> SyncResponse {
        match self {
            SyncOutcome::Done(r) => r,
            SyncOutcome::Pending => SyncResponse {
                error: ErrorCode::RebalanceInProgress,
                assignment: Vec::new(),
                assignment_blob: None,
                protocol_name: String::new(),
            },
        }
    }
}

/// A SyncGroup answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResponse {
    /// NONE on success.
    pub error: ErrorCode,
    /// The member's partitions for this generation.
    pub assignment: Vec<TopicPartition>,
    /// The leader's bytes for this member, when the leader computed the plan.
    pub assignment_blob: Option<bytes::Bytes>,
    /// The chosen assignor.
    pub protocol_name: String,
}

/// One consumer group.
#[derive(Debug, Clone)]
pub struct Group {
    pub(super) id: String,
    pub(super) config: GroupConfig,
    pub(super) state: GroupState,
    pub(super) generation: i32,
    pub(super) protocol_type: Option<String>,
    pub(super) protocol: Option<AssignorKind>,
    pub(super) leader: Option<String>,
    /// By member id; a BTreeMap so every walk is in a deterministic order.
    pub(super) members: BTreeMap<String, Member>,
    /// Ids handed out by the first step of a two-step join (KIP-394), not members yet:
    /// id → when it expires unless its owner joins with it.
    pub(super) pending_members: BTreeMap<String, Millis>,
    pub(super) next_member_seq: u64,
    /// When the current rebalance gives up on members that did not rejoin.
    pub(super) rebalance_deadline: Millis,
    /// The first rebalance of an empty group does not complete before this.
    pub(super) initial_delay_until: Millis,
    /// A partition was withheld in this generation: rebalance again once all synced.
    pub(super) follow_up: bool,
    /// The current generation's plan comes from the leader's SyncGroup, not yet received.
    pub(super) awaiting_plan: bool,
    /// Partition counts of the subscribed topics when the generation formed.
    pub(super) topic_snapshot: BTreeMap<String, Option<u32>>,
    pub(super) state_since: Millis,
    pub(super) offsets: OffsetStore,
    /// Set when the group is a KIP-848 consumer group (then it has no classic members).
    pub(super) consumer: Option<ConsumerGroup>,
}

impl Group {
    /// A new, empty group.
    pub fn new(id: impl Into<String>, config: GroupConfig, now: Millis) -> Self {
        Group {
            id: id.into(),
            config,
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            pending_members: BTreeMap::new(),
            next_member_seq: 0,
            rebalance_deadline: 0,
            initial_delay_until: 0,
            follow_up: false,
            awaiting_plan: false,
            topic_snapshot: BTreeMap::new(),
            state_since: now,
            offsets: OffsetStore::default(),
            consumer: None,
        }
    }

    /// Group id.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// Current state.
    pub fn state(&self) -> GroupState {
        self.state
    }
    /// Current generation.
    pub fn generation(&self) -> i32 {
        self.generation
    }
    /// Protocol type ("consumer"), once a member joined.
    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }
    /// The chosen assignor.
    pub fn protocol(&self) -> Option<AssignorKind> {
        self.protocol
    }
    /// The leader's member id.
    pub fn leader(&self) -> Option<&str> {
        self.leader.as_deref()
    }
    /// Members by id.
    pub fn members(&self) -> &BTreeMap<String, Member> {
        &self.members
    }
    /// Whether some member id was handed out (first step of a join) but not used yet.
    pub fn has_pending_members(&self) -> bool {
        !self.pending_members.is_empty()
    }
    /// Committed offsets.
    pub fn offsets(&self) -> &OffsetStore {
        &self.offsets
    }
    /// Committed offsets, for loading and applying commits.
    pub fn offsets_mut(&mut self) -> &mut OffsetStore {
        &mut self.offsets
    }
    /// Coordinator limits.
    pub fn config(&self) -> &GroupConfig {
        &self.config
    }
    /// When the state last changed.
    pub fn state_since(&self) -> Millis {
        self.state_since
    }

    /// The earliest time `tick` has something to do, if any.
    pub fn next_deadline(&self) -> Option<Millis> {
        let sessions = self
            .members
            .values()
            .filter(|m| !(self.state == GroupState::PreparingRebalance && m.joined))
            .map(Member::session_deadline)
            .chain(self.pending_members.values().copied())
            .min();
        let rebalance = (self.state == GroupState::PreparingRebalance).then(|| {
            // Everyone is in: only the initial delay holds the rebalance back.
            if self.members.values().all(|m| m.joined) {
                self.initial_delay_until.min(self.rebalance_deadline)
            } else {
                self.rebalance_deadline
            }
        });
        let consumer = self
            .consumer
            .as_ref()
            .and_then(ConsumerGroup::next_deadline);
        [sessions, rebalance, consumer].into_iter().flatten().min()
    }

    pub(super) fn set_state(&mut self, state: GroupState, now: Millis) {
        if self.state != state {
            self.state = state;
            self.state_since = now;
        }
    }

    /// Finds the member a request speaks for, applying static-membership fencing.
    pub(super) fn check_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), ErrorCode> {
        if let Some(iid) = instance_id {
            if let Some(m) = self
                .members
                .values()
                .find(|m| m.instance_id.as_deref() == Some(iid))
            {
                if m.id != member_id {
                    return Err(ErrorCode::FencedInstanceId);
                }
                return Ok(());
            }
        }
        if self.members.contains_key(member_id) {
            Ok(())
        } else {
            Err(ErrorCode::UnknownMemberId)
        }
    }

    fn touch(&mut self, member_id: &str, now: Millis) {
        if let Some(m) = self.members.get_mut(member_id) {
            m.last_seen = m.last_seen.max(now);
        }
    }

    /// Whether the current generation still waits for its leader's plan.
    pub fn awaiting_plan(&self) -> bool {
        self.awaiting_plan
    }

    /// Whether the leader client computes this group's assignments (Kafka's classic
    /// protocol); native groups are assigned by the coordinator.
    pub fn leader_assigns(&self) -> bool {
        self.protocol_type
            .as_deref()
            .is_some_and(|t| t.starts_with(CLIENT_ASSIGNED_PREFIX))
    }

    /// SyncGroup: the member's assignment for `generation`. In a group whose leader
    /// assigns, the leader's `plan` (empty: it leaves the coordinator's assignment in
    /// place) is taken once per generation, and the other members wait for it.
    pub fn sync(
        &mut self,
        now: Millis,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        plan: Option<Vec<PlannedAssignment>>,
    ) -> (SyncOutcome, Vec<Effect>) {
        let err = |error| {
            SyncOutcome::Done(SyncResponse {
                error,
                assignment: Vec::new(),
                assignment_blob: None,
                protocol_name: String::new(),
            })
        };
        let mut effects = Vec::new();
        if self.state == GroupState::Dead {
            return (err(ErrorCode::CoordinatorNotAvailable), effects);
        }
        if let Err(e) = self.check_member(member_id, instance_id) {
            return (err(e), effects);
        }
        self.touch(member_id, now);
        if generation != self.generation {
            return (err(ErrorCode::IllegalGeneration), effects);
        }
        match self.state {
            GroupState::PreparingRebalance => {
                return (err(ErrorCode::RebalanceInProgress), effects)
            }
            GroupState::Empty | GroupState::Dead => {
                return (err(ErrorCode::UnknownMemberId), effects)
            }
            GroupState::CompletingRebalance | GroupState::Stable => {}
        }
        if self.awaiting_plan {
            // A static member's new process answers for the id the leader was given.
            let is_leader = self.leader.as_deref() == Some(member_id);
            if !is_leader {
                return (SyncOutcome::Pending, effects);
            }
            self.apply_plan(plan.unwrap_or_default());
            effects.push(Effect::PlanReady);
            effects.push(Effect::PersistMetadata);
        }
        let (assignment, assignment_blob) = match self.members.get_mut(member_id) {
            Some(m) => {
                m.synced = true;
                (
                    m.assignment.iter().cloned().collect(),
                    m.assignment_blob.clone(),
                )
            }
            None => return (err(ErrorCode::UnknownMemberId), effects),
        };
        if self.state == GroupState::CompletingRebalance && self.members.values().all(|m| m.synced)
        {
            self.set_state(GroupState::Stable, now);
            if self.follow_up {
                self.follow_up = false;
                self.prepare_rebalance(now);
            }
        }
        let response = SyncResponse {
            error: ErrorCode::None,
            assignment,
            assignment_blob,
            protocol_name: self
                .protocol
                .map(|p| p.name().to_string())
                .unwrap_or_default(),
        };
        (SyncOutcome::Done(response), effects)
    }

    /// Takes the leader's plan for the current generation. An empty plan keeps the
    /// coordinator's assignment (computed when the generation formed); otherwise each
    /// member gets exactly what the leader gave it (nothing when the plan omits it), and
    /// the client's own protocol takes care of revoking before reassigning (so no
    /// coordinator follow-up rebalance).
    fn apply_plan(&mut self, plan: Vec<PlannedAssignment>) {
        self.awaiting_plan = false;
        if plan.is_empty() {
            return;
        }
        let mut by_member: BTreeMap<String, PlannedAssignment> =
            plan.into_iter().map(|p| (p.member_id.clone(), p)).collect();
        for (id, m) in self.members.iter_mut() {
            let (blob, partitions) = match by_member.remove(id) {
                Some(p) => (p.blob, p.partitions.into_iter().collect()),
                None => (bytes::Bytes::new(), BTreeSet::new()),
            };
            m.revoking = m
                .reported_owned
                .iter()
                .filter(|tp| !partitions.contains(*tp))
                .cloned()
                .collect();
            m.assignment = partitions;
            m.assignment_blob = Some(blob);
        }
        self.follow_up = false;
    }

    /// Heartbeat: NONE, or what the member must do (REBALANCE_IN_PROGRESS: rejoin).
    pub fn heartbeat(
        &mut self,
        now: Millis,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> ErrorCode {
        if self.state == GroupState::Dead {
            return ErrorCode::CoordinatorNotAvailable;
        }
        if let Err(e) = self.check_member(member_id, instance_id) {
            return e;
        }
        self.touch(member_id, now);
        if self.state == GroupState::Empty {
            return ErrorCode::UnknownMemberId;
        }
        if generation != self.generation {
            return ErrorCode::IllegalGeneration;
        }
        match self.state {
            GroupState::PreparingRebalance => ErrorCode::RebalanceInProgress,
            _ => ErrorCode::None,
        }
    }

    /// LeaveGroup for one member (by member id, or by instance id when the member id is
    /// empty). Returns the member's error and the effects.
    pub fn leave(
        &mut self,
        now: Millis,
        member_id: &str,
        instance_id: Option<&str>,
        counts: &dyn PartitionCounts,
    ) -> (ErrorCode, Vec<Effect>) {
        if self.state == GroupState::Dead {
            return (ErrorCode::CoordinatorNotAvailable, Vec::new());
        }
        // A client stopped between the two steps of its join: forget the id it was given.
        if self.pending_members.remove(member_id).is_some() {
            return (ErrorCode::None, Vec::new());
        }
        let id = match (member_id.is_empty(), instance_id) {
            (true, Some(iid)) => match self
                .members
                .values()
                .find(|m| m.instance_id.as_deref() == Some(iid))
            {
                Some(m) => m.id.clone(),
                None => return (ErrorCode::UnknownMemberId, Vec::new()),
            },
            _ => {
                if let Err(e) = self.check_member(member_id, instance_id) {
                    return (e, Vec::new());
                }
                member_id.to_string()
            }
        };
        let mut effects = Vec::new();
        self.remove_member(&id, ErrorCode::UnknownMemberId, &mut effects);
        self.after_removal(now, counts, &mut effects);
        (ErrorCode::None, effects)
    }

    /// Timers: expires sessions, ends the initial delay and the rebalance timeout, and
    /// notices partition-count changes of subscribed topics.
    pub fn tick(&mut self, now: Millis, counts: &dyn PartitionCounts) -> Vec<Effect> {
        let mut effects = Vec::new();
        if self.state == GroupState::Dead {
            return effects;
        }
        if let Some(c) = self.consumer.as_mut() {
            c.tick(now);
        }
        self.pending_members.retain(|_, expires| now <= *expires);
        let preparing = self.state == GroupState::PreparingRebalance;
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| !(preparing && m.joined) && now > m.session_deadline())
            .map(|m| m.id.clone())
            .collect();
        let removed_any = !expired.is_empty();
        for id in expired {
            self.remove_member(&id, ErrorCode::UnknownMemberId, &mut effects);
        }
        if removed_any {
            self.after_removal(now, counts, &mut effects);
        }
        if self.state == GroupState::PreparingRebalance {
            if now >= self.rebalance_deadline {
                self.complete_rebalance(now, counts, &mut effects);
            } else {
                self.maybe_complete(now, counts, &mut effects);
            }
        }
        if self.state == GroupState::Stable && self.topics_changed(counts) {
            self.prepare_rebalance(now);
        }
        effects
    }

    /// DeleteGroups: only an empty group can go.
    pub fn delete(&mut self, now: Millis) -> Result<(), ErrorCode> {
        match self.state {
            GroupState::Dead => Err(ErrorCode::GroupIdNotFound),
            GroupState::Empty if self.consumer.as_ref().is_some_and(|c| !c.is_empty()) => {
                Err(ErrorCode::NonEmptyGroup)
            }
            GroupState::Empty => {
                self.set_state(GroupState::Dead, now);
                self.offsets.clear();
                Ok(())
            }
            _ => Err(ErrorCode::NonEmptyGroup),
        }
    }

    /// Removes a member, answering its pending join with `error`.
    pub(super) fn remove_member(&mut self, id: &str, error: ErrorCode, effects: &mut Vec<Effect>) {
        if let Some(m) = self.members.remove(id) {
            if m.joined && self.state == GroupState::PreparingRebalance {
                effects.push(Effect::JoinDone {
                    member_id: m.id.clone(),
                    response: JoinResponse::error(error, &m.id),
                });
            }
            if self.leader.as_deref() == Some(id) {
                self.leader = None;
            }
        }
    }

    /// After members left or expired: a rebalance (which completes at once if everyone
    /// left has already rejoined, or if nobody is left).
    pub(super) fn after_removal(
        &mut self,
        now: Millis,
        counts: &dyn PartitionCounts,
        effects: &mut Vec<Effect>,
    ) {
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => self.prepare_rebalance(now),
            GroupState::Empty | GroupState::Dead => return,
            GroupState::PreparingRebalance => {}
        }
        self.maybe_complete(now, counts, effects);
    }

    fn topics_changed(&self, counts: &dyn PartitionCounts) -> bool {
        self.topic_snapshot
            .iter()
            .any(|(t, n)| counts.partition_count(t) != *n)
    }

    pub(super) fn snapshot_topics(&mut self, counts: &dyn PartitionCounts) {
        let topics: BTreeSet<&String> = self
            .members
            .values()
            .flat_map(|m| m.topics.iter())
            .collect();
        self.topic_snapshot = topics
            .into_iter()
            .map(|t| (t.clone(), counts.partition_count(t)))
            .collect();
    }

    /// Runs the chosen assignor and the revoke-first rule; updates every member.
    pub(super) fn assign(&mut self, counts: &dyn PartitionCounts) {
        let kind = self.protocol.unwrap_or(AssignorKind::Sticky);
        // Only credible claims count: a zombie's stale claim must not block a partition.
        let owned: BTreeMap<String, BTreeSet<TopicPartition>> = self
            .members
            .values()
            .map(|m| (m.id.clone(), m.credible_owned()))
            .collect();
        let empty = BTreeSet::new();
        let inputs: Vec<MemberInput<'_>> = self
            .members
            .values()
            .map(|m| MemberInput {
                id: &m.id,
                topics: &m.topics,
                owned: owned.get(&m.id).unwrap_or(&empty),
            })
            .collect();
        let target = kind.assign(&inputs, counts);
        let coop = cooperative(&target, &owned);
        for (id, m) in self.members.iter_mut() {
            m.assignment = coop.given.get(id).cloned().unwrap_or_default();
            m.revoking = coop.revoking.get(id).cloned().unwrap_or_default();
        }
        self.follow_up = !coop.pending.is_empty();
        self.snapshot_topics(counts);
    }
}
