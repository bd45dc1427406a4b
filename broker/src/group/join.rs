//! JoinGroup and the rebalance it drives: validation, static membership, the
//! PreparingRebalance round, and forming the next generation.

use std::collections::BTreeSet;

use weir_protocol::ErrorCode;

use super::assignor::AssignorKind;
use super::machine::{Effect, Group, JoinOutcome, JoinRequest, JoinResponse};
use super::member::Member;
use super::state::GroupState;
use super::types::{Millis, PartitionCounts};

impl Group {
    /// JoinGroup. A first join without a group instance id is answered at once with
    /// MEMBER_ID_REQUIRED and a fresh member id (Kafka's two-step join, KIP-394); only a
    /// join with that id makes the client a member. The answer usually waits for the
    /// rebalance to complete ([`JoinOutcome::Pending`]); a static member that restarts into
    /// a stable group with an unchanged subscription is answered at once, without a
    /// rebalance.
    pub fn join(
        &mut self,
        now: Millis,
        req: JoinRequest,
        counts: &dyn PartitionCounts,
    ) -> (JoinOutcome, Vec<Effect>) {
        let mut effects = Vec::new();
        let fail =
            |e: ErrorCode, id: &str| (JoinOutcome::Done(JoinResponse::error(e, id)), Vec::new());
        if self.state == GroupState::Dead {
            return fail(ErrorCode::CoordinatorNotAvailable, &req.member_id);
        }
        if let Err(e) = self.classic_join_allowed() {
            return fail(e, &req.member_id);
        }
        if let Err(e) = self.validate_join(&req) {
            return fail(e, &req.member_id);
        }
        let static_member = req
            .instance_id
            .as_deref()
            .and_then(|iid| {
                self.members
                    .values()
                    .find(|m| m.instance_id.as_deref() == Some(iid))
            })
            .map(|m| m.id.clone());

        let member_id = match (&static_member, req.member_id.is_empty()) {
            // A restarted static member: take over the old member's place.
            (Some(old), true) => {
                let new_id =
                    self.new_member_id(req.instance_id.as_deref().unwrap_or(&req.client_id));
                return self.replace_static(now, old.clone(), new_id, req, counts);
            }
            (Some(old), false) if *old != req.member_id => {
                return fail(ErrorCode::FencedInstanceId, &req.member_id)
            }
            (Some(old), false) => old.clone(),
            (None, false) => {
                if !self.members.contains_key(&req.member_id) {
                    // The second step of a two-step join: the id must be one we handed out.
                    if self.pending_members.remove(&req.member_id).is_none() {
                        return fail(ErrorCode::UnknownMemberId, &req.member_id);
                    }
                    if self.members.len() >= self.config.max_size {
                        return fail(ErrorCode::GroupMaxSizeReached, &req.member_id);
                    }
                }
                req.member_id.clone()
            }
            (None, true) => {
                if self.members.len() >= self.config.max_size {
                    return fail(ErrorCode::GroupMaxSizeReached, "");
                }
                let id = self.new_member_id(req.instance_id.as_deref().unwrap_or(&req.client_id));
                if req.instance_id.is_none() {
                    // KIP-394: hand out the id without joining. A client that stops before
                    // it rejoins then knows its id (so it can leave) or was never a member
                    // (so the group never waits for it); unused ids expire with the session.
                    let expires = now + Millis::from(req.session_timeout_ms);
                    self.pending_members.insert(id.clone(), expires);
                    return fail(ErrorCode::MemberIdRequired, &id);
                }
                id
            }
        };

        // A second join from the same member simply replaces the first: the I/O layer drops
        // the older parked call (its client gave up on it).
        self.upsert_member(now, &member_id, req);
        match self.state {
            GroupState::Empty | GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(now)
            }
            GroupState::PreparingRebalance | GroupState::Dead => {}
        }
        self.maybe_complete(now, counts, &mut effects);
        (JoinOutcome::Pending { member_id }, effects)
    }

    fn validate_join(&self, req: &JoinRequest) -> Result<(), ErrorCode> {
        if req.session_timeout_ms < self.config.min_session_timeout_ms
            || req.session_timeout_ms > self.config.max_session_timeout_ms
        {
            return Err(ErrorCode::InvalidSessionTimeout);
        }
        if req.protocol_type.is_empty() || req.protocols.is_empty() {
            return Err(ErrorCode::InconsistentGroupProtocol);
        }
        if !self.members.is_empty()
            && self.protocol_type.as_deref() != Some(req.protocol_type.as_str())
        {
            return Err(ErrorCode::InconsistentGroupProtocol);
        }
        // Some assignor must be acceptable to this member, to the coordinator and to every
        // other member (the joining member's old entry does not count).
        let acceptable = req.protocols.iter().any(|p| {
            AssignorKind::from_name(&p.name).is_some()
                && self
                    .members
                    .values()
                    .filter(|m| m.id != req.member_id)
                    .all(|m| m.supports(&p.name))
        });
        if !acceptable {
            return Err(ErrorCode::InconsistentGroupProtocol);
        }
        Ok(())
    }

    fn new_member_id(&mut self, prefix: &str) -> String {
        self.next_member_seq += 1;
        let prefix = if prefix.is_empty() { "member" } else { prefix };
        format!(
            "{prefix}-{}-{}",
            self.config.member_id_salt, self.next_member_seq
        )
    }

    fn upsert_member(&mut self, now: Millis, id: &str, req: JoinRequest) {
        let rebalance_timeout_ms = if req.rebalance_timeout_ms > 0 {
            req.rebalance_timeout_ms
        } else {
            req.session_timeout_ms
        };
        let m = self
            .members
            .entry(id.to_string())
            .or_insert_with(|| Member {
                id: id.to_string(),
                instance_id: None,
                client_id: String::new(),
                client_host: String::new(),
                session_timeout_ms: 0,
                rebalance_timeout_ms: 0,
                protocols: Vec::new(),
                topics: BTreeSet::new(),
                reported_owned: BTreeSet::new(),
                assignment: BTreeSet::new(),
                revoking: BTreeSet::new(),
                assignment_blob: None,
                joined: false,
                synced: false,
                last_seen: now,
            });
        m.instance_id = req.instance_id;
        m.client_id = req.client_id;
        m.client_host = req.client_host;
        m.session_timeout_ms = req.session_timeout_ms;
        m.rebalance_timeout_ms = rebalance_timeout_ms;
        m.protocols = req.protocols;
        m.topics = req.topics.into_iter().collect();
        m.reported_owned = req.owned.into_iter().collect();
        m.joined = true;
        m.last_seen = now;
        if self.protocol_type.is_none() {
            self.protocol_type = Some(req.protocol_type);
        }
    }

    /// A static member came back with a new process: it inherits the old member's place.
    fn replace_static(
        &mut self,
        now: Millis,
        old_id: String,
        new_id: String,
        req: JoinRequest,
        counts: &dyn PartitionCounts,
    ) -> (JoinOutcome, Vec<Effect>) {
        let mut effects = Vec::new();
        let Some(mut old) = self.members.remove(&old_id) else {
            return (
                JoinOutcome::Done(JoinResponse::error(ErrorCode::UnknownMemberId, "")),
                effects,
            );
        };
        if old.joined && self.state == GroupState::PreparingRebalance {
            effects.push(Effect::JoinDone {
                member_id: old_id.clone(),
                response: JoinResponse::error(ErrorCode::FencedInstanceId, &old_id),
            });
        }
        if self.leader.as_deref() == Some(old_id.as_str()) {
            self.leader = Some(new_id.clone());
        }
        let unchanged = old.topics == req.topics.iter().cloned().collect::<BTreeSet<_>>()
            && old
                .protocols
                .iter()
                .map(|p| &p.name)
                .eq(req.protocols.iter().map(|p| &p.name));
        old.id = new_id.clone();
        old.joined = false;
        self.members.insert(new_id.clone(), old);
        if self.state == GroupState::Stable && unchanged {
            // No rebalance: the new process gets the old one's assignment via SyncGroup.
            if let Some(m) = self.members.get_mut(&new_id) {
                m.last_seen = now;
                m.client_id = req.client_id;
                m.client_host = req.client_host;
                m.session_timeout_ms = req.session_timeout_ms;
                m.reported_owned = req.owned.into_iter().collect();
                m.synced = false;
            }
            effects.push(Effect::PersistMetadata);
            let response = self.join_response(&new_id);
            return (JoinOutcome::Done(response), effects);
        }
        self.upsert_member(now, &new_id, req);
        match self.state {
            GroupState::Empty | GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(now)
            }
            GroupState::PreparingRebalance | GroupState::Dead => {}
        }
        self.maybe_complete(now, counts, &mut effects);
        (JoinOutcome::Pending { member_id: new_id }, effects)
    }

    /// Enters PreparingRebalance: members are told to rejoin (heartbeat answers
    /// REBALANCE_IN_PROGRESS) and keep what they own until the new generation.
    pub(super) fn prepare_rebalance(&mut self, now: Millis) {
        let from_empty = self.state == GroupState::Empty;
        let max_rebalance = self
            .members
            .values()
            .map(|m| Millis::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0);
        self.rebalance_deadline = now + max_rebalance;
        self.initial_delay_until = if from_empty {
            now + self.config.initial_rebalance_delay_ms
        } else {
            now
        };
        self.set_state(GroupState::PreparingRebalance, now);
    }

    /// Completes the round when everyone has rejoined and the initial delay is over.
    pub(super) fn maybe_complete(
        &mut self,
        now: Millis,
        counts: &dyn PartitionCounts,
        effects: &mut Vec<Effect>,
    ) {
        if self.state == GroupState::PreparingRebalance
            && self.members.values().all(|m| m.joined)
            && now >= self.initial_delay_until
        {
            self.complete_rebalance(now, counts, effects);
        }
    }

    /// Forms the next generation from the members that rejoined; the others are dropped.
    pub(super) fn complete_rebalance(
        &mut self,
        now: Millis,
        counts: &dyn PartitionCounts,
        effects: &mut Vec<Effect>,
    ) {
        let missing: Vec<String> = self
            .members
            .values()
            .filter(|m| !m.joined)
            .map(|m| m.id.clone())
            .collect();
        for id in missing {
            self.remove_member(&id, ErrorCode::UnknownMemberId, effects);
        }
        self.generation = self.generation.saturating_add(1);
        effects.push(Effect::PersistMetadata);
        if self.members.is_empty() {
            self.protocol = None;
            self.leader = None;
            self.follow_up = false;
            self.topic_snapshot.clear();
            self.set_state(GroupState::Empty, now);
            return;
        }
        self.protocol = self.select_protocol();
        if self
            .leader
            .as_ref()
            .is_none_or(|l| !self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        self.assign(counts);
        // Kafka's classic protocol: the leader client's plan replaces the coordinator's
        // when it arrives with the leader's SyncGroup.
        self.awaiting_plan = self.leader_assigns();
        for m in self.members.values_mut() {
            m.joined = false;
            m.synced = false;
            m.assignment_blob = None;
            m.last_seen = now;
        }
        self.set_state(GroupState::CompletingRebalance, now);
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let response = self.join_response(&id);
            effects.push(Effect::JoinDone {
                member_id: id,
                response,
            });
        }
    }

    /// Each member votes for its first assignor the whole group and the coordinator accept;
    /// most votes wins, ties by preference of the lowest member id.
    fn select_protocol(&self) -> Option<AssignorKind> {
        let candidates: Vec<AssignorKind> = self
            .members
            .values()
            .next()?
            .protocols
            .iter()
            .filter_map(|p| AssignorKind::from_name(&p.name).map(|k| (p, k)))
            .filter(|(p, _)| self.members.values().all(|m| m.supports(&p.name)))
            .map(|(_, k)| k)
            .collect();
        let mut best: Option<(usize, AssignorKind)> = None;
        for &c in &candidates {
            let votes = self
                .members
                .values()
                .filter(|m| {
                    m.protocols
                        .iter()
                        .filter_map(|p| AssignorKind::from_name(&p.name))
                        .find(|k| candidates.contains(k))
                        == Some(c)
                })
                .count();
            if best.is_none_or(|(v, _)| votes > v) {
                best = Some((votes, c));
            }
        }
        best.map(|(_, k)| k)
    }

    /// The JoinGroup answer for `member_id` in the current generation.
    pub(super) fn join_response(&self, member_id: &str) -> JoinResponse {
        let leader = self.leader.clone().unwrap_or_default();
        let members = if leader == member_id {
            self.members
                .values()
                .map(|m| {
                    let metadata = self
                        .protocol
                        .and_then(|k| {
                            m.protocols
                                .iter()
                                .find(|p| AssignorKind::from_name(&p.name) == Some(k))
                        })
                        .map(|p| p.metadata.clone())
                        .unwrap_or_default();
                    (m.id.clone(), m.instance_id.clone(), metadata)
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResponse {
            error: ErrorCode::None,
            generation: self.generation,
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol_name: self
                .protocol
                .map(|p| p.name().to_string())
                .unwrap_or_default(),
            leader,
            member_id: member_id.to_string(),
            members,
        }
    }
}
