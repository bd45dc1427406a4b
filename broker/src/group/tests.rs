//! State-machine tests: a tiny harness plays members against one [`Group`] with explicit
//! time, so every timeout case is deterministic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet};

use weir_protocol::ErrorCode;

use super::*;

const SESSION: i32 = 10_000;
const REBALANCE: i32 = 20_000;

struct H {
    g: Group,
    now: Millis,
    counts: BTreeMap<String, u32>,
    /// Answers of parked joins, by member id.
    answers: BTreeMap<String, JoinResponse>,
    persists: usize,
    /// PlanReady effects seen.
    plans: usize,
}

fn config(delay: i64) -> GroupConfig {
    GroupConfig {
        min_session_timeout_ms: 1000,
        max_session_timeout_ms: 60_000,
        initial_rebalance_delay_ms: delay,
        max_size: 100,
        offset_metadata_max_bytes: 16,
        member_id_salt: "s".into(),
        consumer_heartbeat_interval_ms: 1000,
        consumer_session_timeout_ms: SESSION,
    }
}

fn req(member_id: &str, topics: &[&str], owned: &[TopicPartition]) -> JoinRequest {
    JoinRequest {
        member_id: member_id.into(),
        instance_id: None,
        client_id: "c".into(),
        client_host: "127.0.0.1".into(),
        session_timeout_ms: SESSION,
        rebalance_timeout_ms: REBALANCE,
        protocol_type: "consumer".into(),
        protocols: vec![Protocol {
            name: "sticky".into(),
            metadata: bytes::Bytes::new(),
        }],
        topics: topics.iter().map(|t| t.to_string()).collect(),
        owned: owned.to_vec(),
    }
}

impl H {
    fn new(delay: i64, topics: &[(&str, u32)]) -> H {
        H {
            g: Group::new("g", config(delay), 0),
            now: 0,
            counts: topics.iter().map(|(t, n)| (t.to_string(), *n)).collect(),
            answers: BTreeMap::new(),
            persists: 0,
            plans: 0,
        }
    }

    fn absorb(&mut self, effects: Vec<Effect>) {
        for e in effects {
            match e {
                Effect::JoinDone {
                    member_id,
                    response,
                } => {
                    self.answers.insert(member_id, response);
                }
                Effect::PersistMetadata => self.persists += 1,
                Effect::PlanReady => self.plans += 1,
            }
        }
    }

    /// Joins and returns the member id; the answer (if any) lands in `answers`. A first
    /// join takes both steps (MEMBER_ID_REQUIRED, then the join with the given id).
    fn join_req(&mut self, mut r: JoinRequest) -> Result<String, ErrorCode> {
        let (mut out, mut effects) = self.g.join(self.now, r.clone(), &self.counts);
        if let JoinOutcome::Done(resp) = &out {
            if resp.error == ErrorCode::MemberIdRequired {
                assert!(effects.is_empty(), "a first step has no effects");
                r.member_id = resp.member_id.clone();
                (out, effects) = self.g.join(self.now, r, &self.counts);
            }
        }
        self.absorb(effects);
        match out {
            JoinOutcome::Pending { member_id } => Ok(member_id),
            JoinOutcome::Done(resp) if resp.error == ErrorCode::None => {
                let id = resp.member_id.clone();
                self.answers.insert(id.clone(), resp);
                Ok(id)
            }
            JoinOutcome::Done(resp) => Err(resp.error),
        }
    }

    fn join(&mut self, member_id: &str, owned: &[TopicPartition]) -> String {
        self.join_req(req(member_id, &["t"], owned)).unwrap()
    }

    fn answer(&mut self, id: &str) -> Option<JoinResponse> {
        self.answers.remove(id)
    }

    fn sync(&mut self, id: &str) -> SyncResponse {
        let generation = self.g.generation();
        self.g.sync(self.now, id, None, generation, None).0.done()
    }

    fn heartbeat(&mut self, id: &str) -> ErrorCode {
        let generation = self.g.generation();
        self.g.heartbeat(self.now, id, None, generation)
    }

    fn tick(&mut self, advance: i64) {
        self.now += advance;
        let effects = self.g.tick(self.now, &self.counts);
        self.absorb(effects);
    }

    fn assignment(&self, id: &str) -> BTreeSet<TopicPartition> {
        self.g.members()[id].assignment.clone()
    }
}

fn tps(parts: &[i32]) -> Vec<TopicPartition> {
    parts.iter().map(|p| TopicPartition::new("t", *p)).collect()
}

/// Three members on six partitions, all synced; returns their ids.
fn stable_three(h: &mut H) -> Vec<String> {
    // A short initial delay gathers the three into the first generation.
    let delay = h.g.config.initial_rebalance_delay_ms;
    h.g.config.initial_rebalance_delay_ms = 100;
    let ids: Vec<String> = (0..3).map(|_| h.join("", &[])).collect();
    h.tick(100);
    h.g.config.initial_rebalance_delay_ms = delay;
    for id in &ids {
        let a = h.answer(id).expect("joined");
        assert_eq!(a.error, ErrorCode::None);
        assert_eq!(a.generation, 1);
    }
    for id in &ids {
        assert_eq!(h.sync(id).assignment.len(), 2);
    }
    assert_eq!(h.g.state(), GroupState::Stable);
    ids
}

#[test]
fn single_member_gets_everything() {
    let mut h = H::new(0, &[("t", 4)]);
    let id = h.join("", &[]);
    let a = h.answer(&id).expect("answered at once without delay");
    assert_eq!((a.error, a.generation), (ErrorCode::None, 1));
    assert_eq!(a.leader, id);
    assert_eq!(a.members.len(), 1, "the leader sees the members");
    assert_eq!(a.protocol_name, "sticky");
    assert_eq!(h.g.state(), GroupState::CompletingRebalance);
    let s = h.sync(&id);
    assert_eq!(s.error, ErrorCode::None);
    assert_eq!(s.assignment, tps(&[0, 1, 2, 3]));
    assert_eq!(h.g.state(), GroupState::Stable);
    assert_eq!(h.heartbeat(&id), ErrorCode::None);
    assert!(h.persists >= 1);
}

#[test]
fn member_ids_are_broker_assigned_and_unique() {
    let mut h = H::new(1000, &[("t", 4)]);
    let a = h.join("", &[]);
    let b = h.join("", &[]);
    assert_ne!(a, b);
    assert!(a.starts_with("c-s-"), "{a}");
    assert_eq!(
        h.join_req(req("made-up", &["t"], &[])),
        Err(ErrorCode::UnknownMemberId)
    );
}

#[test]
fn initial_delay_gathers_members_into_one_generation() {
    let mut h2 = H::new(3000, &[("t", 6)]);
    let a = h2.join("", &[]);
    h2.tick(2999);
    assert!(h2.answer(&a).is_none());
    let b = h2.join("", &[]);
    h2.tick(1);
    assert_eq!(h2.answer(&a).unwrap().generation, 1);
    assert_eq!(h2.answer(&b).unwrap().generation, 1);
}

#[test]
fn three_members_six_partitions_two_each_with_every_assignor() {
    for name in ["sticky", "range", "roundrobin"] {
        let mut h = H::new(100, &[("t", 6)]);
        let mut ids = Vec::new();
        for _ in 0..3 {
            let mut r = req("", &["t"], &[]);
            r.protocols[0].name = name.into();
            ids.push(h.join_req(r).unwrap());
        }
        h.tick(100);
        let mut all = BTreeSet::new();
        for id in &ids {
            assert_eq!(h.answer(id).map(|a| a.error), Some(ErrorCode::None));
            let s = h.sync(id);
            assert_eq!(s.assignment.len(), 2, "{name}");
            assert_eq!(s.protocol_name, name);
            all.extend(s.assignment);
        }
        assert_eq!(all.len(), 6);
    }
}

#[test]
fn fourth_member_joins_incrementally_without_stopping_others() {
    let mut h = H::new(0, &[("t", 6)]);
    let ids = stable_three(&mut h);
    let before: BTreeMap<String, BTreeSet<TopicPartition>> =
        ids.iter().map(|i| (i.clone(), h.assignment(i))).collect();

    let d = h.join("", &[]);
    assert_eq!(h.g.state(), GroupState::PreparingRebalance);
    for id in &ids {
        assert_eq!(h.heartbeat(id), ErrorCode::RebalanceInProgress);
        // Still owns its partitions while the round runs.
        assert_eq!(h.assignment(id), before[id]);
    }
    for id in &ids {
        let owned: Vec<TopicPartition> = before[id].iter().cloned().collect();
        h.join(id, &owned);
    }
    // Generation 2: two members give up one partition each; d gets nothing yet.
    let mut revoked = 0;
    for id in &ids {
        assert_eq!(h.answer(id).unwrap().generation, 2);
        let s = h.sync(id);
        let now: BTreeSet<TopicPartition> = s.assignment.into_iter().collect();
        assert!(
            now.is_subset(&before[id]),
            "nobody gains while others still own"
        );
        revoked += before[id].len() - now.len();
    }
    assert_eq!(h.answer(&d).unwrap().generation, 2);
    assert!(
        h.sync(&d).assignment.is_empty(),
        "revoke first, assign next generation"
    );
    // 6 over 4 is 2,2,1,1: exactly one partition moves.
    assert_eq!(revoked, 1);
    // All synced with withheld partitions: the follow-up round starts by itself.
    assert_eq!(h.g.state(), GroupState::PreparingRebalance);
    let mut held: BTreeMap<String, Vec<TopicPartition>> = BTreeMap::new();
    for id in ids.iter().chain([&d]) {
        held.insert(id.clone(), h.assignment(id).into_iter().collect());
    }
    for (id, owned) in &held {
        h.join(id, owned);
    }
    let mut all = BTreeSet::new();
    for id in held.keys() {
        assert_eq!(h.answer(id).unwrap().generation, 3);
        let s = h.sync(id);
        for tp in &s.assignment {
            assert!(all.insert(tp.clone()));
        }
        if id == &d {
            assert_eq!(s.assignment.len(), 1);
        } else {
            // Survivors kept what they held.
            assert!(s.assignment.iter().all(|tp| held[id].contains(tp)));
        }
    }
    assert_eq!(all.len(), 6);
    assert_eq!(h.g.state(), GroupState::Stable);
}

#[test]
fn expired_session_frees_partitions_within_one_round() {
    let mut h = H::new(0, &[("t", 6)]);
    let ids = stable_three(&mut h);
    let dead = ids[0].clone();
    // The other two keep heartbeating; the dead one stays silent.
    for _ in 0..2 {
        h.tick(4000);
        assert_eq!(h.heartbeat(&ids[1]), ErrorCode::None);
        assert_eq!(h.heartbeat(&ids[2]), ErrorCode::None);
    }
    h.tick(Millis::from(SESSION) - 8000);
    assert!(
        h.g.members().contains_key(&dead),
        "not before the session timeout"
    );
    h.tick(1);
    assert!(
        !h.g.members().contains_key(&dead),
        "expired after the session timeout"
    );
    assert_eq!(h.g.state(), GroupState::PreparingRebalance);
    for id in &ids[1..] {
        let owned: Vec<TopicPartition> = h.assignment(id).into_iter().collect();
        h.join(id, &owned);
    }
    let mut total = 0;
    for id in &ids[1..] {
        h.answer(id).unwrap();
        total += h.sync(id).assignment.len();
    }
    assert_eq!(total, 6, "a departed owner's partitions move at once");
    assert_eq!(h.g.state(), GroupState::Stable);
    assert_eq!(h.heartbeat(&dead), ErrorCode::UnknownMemberId);
}

#[test]
fn member_that_does_not_rejoin_is_dropped_at_rebalance_timeout() {
    let mut h = H::new(0, &[("t", 6)]);
    let ids = stable_three(&mut h);
    let _d = h.join("", &[]);
    h.join(&ids[0], &[]);
    h.join(&ids[1], &[]);
    // ids[2] keeps heartbeating but never rejoins.
    for _ in 0..4 {
        h.tick(4000);
        assert_eq!(h.heartbeat(&ids[2]), ErrorCode::RebalanceInProgress);
    }
    h.tick(Millis::from(REBALANCE) - 16_001);
    assert!(
        h.answer(&ids[0]).is_none(),
        "not before the rebalance timeout"
    );
    h.tick(1);
    assert_eq!(h.answer(&ids[0]).unwrap().generation, 2);
    assert!(!h.g.members().contains_key(&ids[2]));
    assert_eq!(h.heartbeat(&ids[2]), ErrorCode::UnknownMemberId);
}

#[test]
fn joined_members_do_not_expire_while_waiting() {
    let mut h = H::new(0, &[("t", 6)]);
    let ids = stable_three(&mut h);
    h.join(&ids[0], &[]);
    // Waiting in the round longer than a session (but not the rebalance timeout).
    for _ in 0..4 {
        h.tick(4000);
        h.heartbeat(&ids[1]);
        h.heartbeat(&ids[2]);
    }
    assert!(h.g.members().contains_key(&ids[0]));
}

#[test]
fn last_member_leaving_empties_the_group() {
    let mut h = H::new(0, &[("t", 2)]);
    let id = h.join("", &[]);
    h.sync(&id);
    let gen = h.g.generation();
    let (e, effects) = h.g.leave(h.now, &id, None, &h.counts);
    h.absorb(effects);
    assert_eq!(e, ErrorCode::None);
    assert_eq!(h.g.state(), GroupState::Empty);
    assert_eq!(h.g.generation(), gen + 1);
    let (e, _) = h.g.leave(h.now, &id, None, &h.counts);
    assert_eq!(e, ErrorCode::UnknownMemberId);
    assert_eq!(h.heartbeat(&id), ErrorCode::UnknownMemberId);
}

#[test]
fn leave_during_rebalance_completes_the_round() {
    let mut h = H::new(0, &[("t", 6)]);
    let ids = stable_three(&mut h);
    h.join(&ids[0], &[]);
    h.join(&ids[1], &[]);
    let (e, effects) = h.g.leave(h.now, &ids[2], None, &h.counts);
    h.absorb(effects);
    assert_eq!(e, ErrorCode::None);
    assert_eq!(h.answer(&ids[0]).unwrap().generation, 2);
}

#[test]
fn heartbeat_and_sync_errors() {
    let mut h = H::new(0, &[("t", 2)]);
    let id = h.join("", &[]);
    assert_eq!(
        h.g.heartbeat(h.now, &id, None, 99),
        ErrorCode::IllegalGeneration
    );
    assert_eq!(
        h.g.sync(h.now, &id, None, 99, None).0.done().error,
        ErrorCode::IllegalGeneration
    );
    assert_eq!(
        h.g.sync(h.now, "nobody", None, 1, None).0.done().error,
        ErrorCode::UnknownMemberId
    );
    assert_eq!(h.sync(&id).error, ErrorCode::None);
    let other = h.join("", &[]);
    assert_eq!(h.sync(&id).error, ErrorCode::RebalanceInProgress);
    assert_eq!(h.heartbeat(&other), ErrorCode::RebalanceInProgress);
}

#[test]
fn join_validation() {
    let mut h = H::new(0, &[("t", 2)]);
    let mut r = req("", &["t"], &[]);
    r.session_timeout_ms = 10;
    assert_eq!(h.join_req(r), Err(ErrorCode::InvalidSessionTimeout));
    let mut r = req("", &["t"], &[]);
    r.protocols.clear();
    assert_eq!(h.join_req(r), Err(ErrorCode::InconsistentGroupProtocol));
    let mut r = req("", &["t"], &[]);
    r.protocols[0].name = "uniform".into();
    assert_eq!(h.join_req(r), Err(ErrorCode::InconsistentGroupProtocol));
    h.join("", &[]);
    let mut r = req("", &["t"], &[]);
    r.protocol_type = "connect".into();
    assert_eq!(h.join_req(r), Err(ErrorCode::InconsistentGroupProtocol));
    let mut r = req("", &["t"], &[]);
    r.protocols[0].name = "range".into();
    assert_eq!(
        h.join_req(r),
        Err(ErrorCode::InconsistentGroupProtocol),
        "no assignor in common"
    );
    h.g.config.max_size = 1;
    assert_eq!(
        h.join_req(req("", &["t"], &[])),
        Err(ErrorCode::GroupMaxSizeReached)
    );
}

#[test]
fn protocol_vote_prefers_common_first_choice() {
    let mut h = H::new(1000, &[("t", 2)]);
    let p = |n: &str| Protocol {
        name: n.into(),
        metadata: bytes::Bytes::new(),
    };
    let mut r1 = req("", &["t"], &[]);
    r1.protocols = vec![p("range"), p("sticky")];
    let mut r2 = req("", &["t"], &[]);
    r2.protocols = vec![p("range"), p("roundrobin"), p("sticky")];
    let a = h.join_req(r1).unwrap();
    h.join_req(r2).unwrap();
    h.tick(1000);
    assert_eq!(h.answer(&a).unwrap().protocol_name, "range");
}

#[test]
fn duplicate_join_is_answered_once() {
    let mut h = H::new(1000, &[("t", 2)]);
    let a = h.join("", &[]);
    h.join(&a, &[]);
    assert!(h.answer(&a).is_none());
    h.tick(1000);
    assert_eq!(h.answer(&a).unwrap().error, ErrorCode::None);
}

#[test]
fn static_member_restart_keeps_assignment_without_rebalance() {
    let mut h = H::new(100, &[("t", 6)]);
    let mut ids = Vec::new();
    for i in 0..2 {
        let mut r = req("", &["t"], &[]);
        r.instance_id = Some(format!("inst-{i}"));
        ids.push(h.join_req(r).unwrap());
    }
    h.tick(100);
    for id in &ids {
        h.answer(id).unwrap();
        h.sync(id);
    }
    assert_eq!(h.g.state(), GroupState::Stable);
    let gen = h.g.generation();
    let old = ids[0].clone();
    let kept = h.assignment(&old);

    // Process restarts: no leave, new join with the same instance id and no member id.
    let mut r = req("", &["t"], &[]);
    r.instance_id = Some("inst-0".into());
    let new_id = h.join_req(r).unwrap();
    assert_ne!(new_id, old);
    let a = h.answer(&new_id).expect("answered at once");
    assert_eq!(a.generation, gen, "no rebalance");
    assert_eq!(h.g.state(), GroupState::Stable);
    let s = h.g.sync(h.now, &new_id, Some("inst-0"), gen, None).0.done();
    assert_eq!(s.assignment.into_iter().collect::<BTreeSet<_>>(), kept);
    // The old process is fenced.
    assert_eq!(
        h.g.heartbeat(h.now, &old, Some("inst-0"), gen),
        ErrorCode::FencedInstanceId
    );
    assert_eq!(
        h.g.heartbeat(h.now, &old, None, gen),
        ErrorCode::UnknownMemberId
    );
    let mut r = req(&old, &["t"], &[]);
    r.instance_id = Some("inst-0".into());
    assert_eq!(h.join_req(r), Err(ErrorCode::FencedInstanceId));
    // Leaving by instance id.
    let (e, effects) = h.g.leave(h.now, "", Some("inst-0"), &h.counts);
    h.absorb(effects);
    assert_eq!(e, ErrorCode::None);
    assert_eq!(h.g.state(), GroupState::PreparingRebalance);
}

#[test]
fn static_member_with_changed_subscription_triggers_rebalance() {
    let mut h = H::new(0, &[("t", 2), ("u", 2)]);
    let mut r = req("", &["t"], &[]);
    r.instance_id = Some("i".into());
    let id = h.join_req(r).unwrap();
    h.sync(&id);
    let mut r = req("", &["t", "u"], &[]);
    r.instance_id = Some("i".into());
    let new_id = h.join_req(r).unwrap();
    let a = h.answer(&new_id).unwrap();
    assert_eq!(a.generation, 2);
    assert_eq!(h.sync(&new_id).assignment.len(), 4);
}

#[test]
fn commit_validation_follows_kafka() {
    let mut h = H::new(0, &[("t", 2)]);
    let admin = Committer {
        generation: -1,
        member_id: "",
        instance_id: None,
    };
    assert_eq!(
        h.g.validate_commit(h.now, admin),
        Ok(()),
        "standalone commit on an empty group"
    );
    let id = h.join("", &[]);
    assert_eq!(
        h.g.validate_commit(h.now, admin),
        Err(ErrorCode::UnknownMemberId)
    );
    fn who(g: i32, m: &str) -> Committer<'_> {
        Committer {
            generation: g,
            member_id: m,
            instance_id: None,
        }
    }
    let id2 = id.clone();
    assert_eq!(
        h.g.validate_commit(h.now, who(1, &id2)),
        Err(ErrorCode::RebalanceInProgress),
        "not synced yet"
    );
    h.sync(&id);
    assert_eq!(h.g.validate_commit(h.now, who(1, &id2)), Ok(()));
    assert_eq!(
        h.g.validate_commit(h.now, who(0, &id2)),
        Err(ErrorCode::IllegalGeneration)
    );
    assert_eq!(
        h.g.validate_commit(h.now, who(1, "ghost")),
        Err(ErrorCode::UnknownMemberId)
    );
    // During a rebalance a member with the current generation may still commit.
    h.join("", &[]);
    assert_eq!(h.g.state(), GroupState::PreparingRebalance);
    assert_eq!(h.g.validate_commit(h.now, who(1, &id2)), Ok(()));
    assert_eq!(
        h.g.validate_partition_commit(Some("short")),
        ErrorCode::None
    );
    assert_eq!(
        h.g.validate_partition_commit(Some("this metadata is far too long")),
        ErrorCode::OffsetMetadataTooLarge
    );
    assert_eq!(h.g.validate_partition_commit(None), ErrorCode::None);
}

#[test]
fn delete_only_when_empty() {
    let mut h = H::new(0, &[("t", 2)]);
    let id = h.join("", &[]);
    assert_eq!(h.g.delete(h.now), Err(ErrorCode::NonEmptyGroup));
    let (_, effects) = h.g.leave(h.now, &id, None, &h.counts);
    h.absorb(effects);
    h.g.offsets_mut().put(
        TopicPartition::new("t", 0),
        CommittedOffset {
            offset: 1,
            leader_epoch: None,
            metadata: String::new(),
            commit_timestamp_ms: 0,
        },
    );
    assert_eq!(h.g.delete(h.now), Ok(()));
    assert_eq!(h.g.state(), GroupState::Dead);
    assert!(h.g.offsets().is_empty());
    assert_eq!(h.heartbeat(&id), ErrorCode::CoordinatorNotAvailable);
    assert_eq!(
        h.join_req(req("", &["t"], &[])),
        Err(ErrorCode::CoordinatorNotAvailable)
    );
    assert_eq!(h.g.delete(h.now), Err(ErrorCode::GroupIdNotFound));
}

#[test]
fn partition_count_change_triggers_rebalance() {
    let mut h = H::new(0, &[("t", 2)]);
    let id = h.join("", &[]);
    h.sync(&id);
    h.tick(10);
    assert_eq!(h.g.state(), GroupState::Stable);
    h.counts.insert("t".into(), 4);
    h.tick(10);
    assert_eq!(h.g.state(), GroupState::PreparingRebalance);
    h.join(&id, &tps(&[0, 1]));
    assert_eq!(h.sync(&id).assignment.len(), 4);
}

#[test]
fn zombie_claims_do_not_block_partitions() {
    let mut h = H::new(0, &[("t", 4)]);
    let a = h.join("", &[]);
    assert_eq!(h.sync(&a).assignment.len(), 4);
    let b = h.join("", &[]);
    h.join(&a, &tps(&[0, 1, 2, 3]));
    h.answer(&a);
    h.answer(&b);
    let sa = h.sync(&a).assignment;
    assert_eq!(sa.len(), 2, "a keeps two, releases two");
    assert!(h.sync(&b).assignment.is_empty(), "b waits for a's release");
    assert_eq!(
        h.g.state(),
        GroupState::PreparingRebalance,
        "follow-up round"
    );
    // a released its two; b claims all four, which it never had (a zombie's claim).
    h.join(&a, &sa);
    h.join(&b, &tps(&[0, 1, 2, 3]));
    h.answer(&a);
    h.answer(&b);
    assert_eq!(h.sync(&a).assignment, sa, "a keeps its two");
    assert_eq!(h.sync(&b).assignment.len(), 2, "b gets the released two");
    assert_eq!(
        h.g.state(),
        GroupState::Stable,
        "no endless follow-up rounds"
    );
}

#[test]
fn metadata_round_trips_through_a_record() {
    let mut h = H::new(0, &[("t", 6)]);
    let ids = stable_three(&mut h);
    let value = records::metadata_value(&h.g, h.now);
    let mut loaded = Group::new("g", config(0), 5);
    loaded.load_metadata(&value, 5);
    assert_eq!(loaded.state(), GroupState::Stable);
    assert_eq!(loaded.generation(), h.g.generation());
    assert_eq!(loaded.leader(), h.g.leader());
    for id in &ids {
        assert_eq!(loaded.members()[id].assignment, h.assignment(id));
    }
    // Members that come back in time keep going; a silent one expires.
    assert_eq!(
        loaded.heartbeat(6, &ids[0], None, h.g.generation()),
        ErrorCode::None
    );
    let (key, val) = records::group_record(&h.g, h.now);
    assert!(matches!(
        records::decode(Some(&key), val.as_deref()).unwrap(),
        records::GroupRecord::Group { value: Some(_), .. }
    ));
}

#[test]
fn next_deadline_is_never_stale_after_tick() {
    let mut h = H::new(500, &[("t", 6)]);
    let a = h.join("", &[]);
    for step in [100, 400, 1, 3000, 7000, 20_000] {
        h.tick(step);
        if let Some(d) = h.g.next_deadline() {
            assert!(
                d > h.now || d >= h.now && h.g.state() != GroupState::PreparingRebalance,
                "deadline {d} at {}",
                h.now
            );
        }
    }
    let _ = a;
}

/// Simulated consumers against the state machine with a fixed pseudo-random schedule:
/// at no moment do two live consumers hold the same partition, and once the schedule
/// quiets down every partition is held.
#[test]
#[allow(clippy::needless_range_loop)]
fn simulated_members_never_share_a_partition() {
    struct Sim {
        id: String,
        held: BTreeSet<TopicPartition>,
        alive: bool,
        joining: bool,
    }
    let mut h = H::new(0, &[("t", 12)]);
    let mut sims: Vec<Sim> = Vec::new();
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for step in 0..400 {
        h.now += 200;
        let quiet = step >= 300;
        let r = rnd() % 20;
        if !quiet && r == 0 && sims.iter().filter(|s| s.alive).count() < 6 {
            let id = h.join("", &[]);
            sims.push(Sim {
                id,
                held: BTreeSet::new(),
                alive: true,
                joining: true,
            });
        } else if !quiet && r == 1 {
            // Clean leave.
            if let Some(s) = sims.iter_mut().find(|s| s.alive) {
                s.alive = false;
                s.held.clear();
                let (_, effects) = h.g.leave(h.now, &s.id.clone(), None, &h.counts);
                h.absorb(effects);
            }
        } else if !quiet && r == 2 {
            // Crash: stops everything, holds nothing from now on.
            if let Some(s) = sims.iter_mut().rev().find(|s| s.alive) {
                s.alive = false;
                s.held.clear();
            }
        }
        let effects = h.g.tick(h.now, &h.counts);
        h.absorb(effects);
        for i in 0..sims.len() {
            if !sims[i].alive {
                continue;
            }
            let id = sims[i].id.clone();
            if sims[i].joining {
                if let Some(a) = h.answer(&id) {
                    sims[i].joining = false;
                    if a.error != ErrorCode::None {
                        // Rejoin from scratch under the same id is not possible: act dead.
                        sims[i].alive = false;
                        sims[i].held.clear();
                        continue;
                    }
                    let s = h.g.sync(h.now, &id, None, a.generation, None).0.done();
                    if s.error == ErrorCode::None {
                        // Revoke what is missing, then take what is given.
                        sims[i].held = s.assignment.into_iter().collect();
                    }
                }
                continue;
            }
            match h.heartbeat(&id) {
                ErrorCode::None => {}
                ErrorCode::RebalanceInProgress | ErrorCode::IllegalGeneration => {
                    let owned: Vec<TopicPartition> = sims[i].held.iter().cloned().collect();
                    let (out, effects) = h.g.join(h.now, req(&id, &["t"], &owned), &h.counts);
                    h.absorb(effects);
                    match out {
                        JoinOutcome::Pending { .. } => sims[i].joining = true,
                        JoinOutcome::Done(_) => {
                            sims[i].alive = false;
                            sims[i].held.clear();
                        }
                    }
                }
                _ => {
                    sims[i].alive = false;
                    sims[i].held.clear();
                }
            }
        }
        // Safety: no partition held twice.
        let mut seen = BTreeSet::new();
        for s in sims.iter().filter(|s| s.alive) {
            for tp in &s.held {
                assert!(seen.insert(tp.clone()), "step {step}: {tp} held twice");
            }
        }
    }
    // Liveness: after the quiet period everything is held (if anyone is alive).
    let alive = sims.iter().filter(|s| s.alive).count();
    if alive > 0 {
        let held: usize = sims.iter().filter(|s| s.alive).map(|s| s.held.len()).sum();
        assert_eq!(
            held,
            12,
            "{alive} alive members hold everything; state {}",
            h.g.state()
        );
    }
}

/// KIP-394: the first join only hands out an id; the group neither waits for nor assigns
/// to a client that never comes back with it, and the id expires with the session.
#[test]
fn two_step_join_makes_no_member_until_the_second_join() {
    let mut h = H::new(0, &[("t", 2)]);
    let (out, effects) = h.g.join(h.now, req("", &["t"], &[]), &h.counts);
    let JoinOutcome::Done(first) = out else {
        panic!("the first step is answered at once: {out:?}");
    };
    assert_eq!(first.error, ErrorCode::MemberIdRequired);
    assert!(!first.member_id.is_empty());
    assert!(effects.is_empty());
    assert!(h.g.members().is_empty(), "no member after the first step");
    assert_eq!(h.g.state(), GroupState::Empty, "no rebalance either");
    assert!(h.g.has_pending_members());

    // A client that stopped in between leaves with the id it was given.
    assert_eq!(
        h.g.leave(h.now, &first.member_id, None, &h.counts).0,
        ErrorCode::None
    );
    assert!(!h.g.has_pending_members());
    assert_eq!(
        h.join_req(req(&first.member_id, &["t"], &[])),
        Err(ErrorCode::UnknownMemberId),
        "a forgotten id cannot join"
    );

    // One that never comes back: its id expires with the session timeout.
    let (out, _) = h.g.join(h.now, req("", &["t"], &[]), &h.counts);
    let JoinOutcome::Done(lost) = out else {
        panic!("{out:?}");
    };
    assert_eq!(h.g.next_deadline(), Some(h.now + i64::from(SESSION)));
    h.tick(i64::from(SESSION) + 1);
    assert!(!h.g.has_pending_members());
    assert_eq!(
        h.join_req(req(&lost.member_id, &["t"], &[])),
        Err(ErrorCode::UnknownMemberId)
    );

    // The second join with a fresh id makes a member, which gets everything alone.
    let id = h.join("", &[]);
    h.tick(0);
    assert_eq!(h.answer(&id).map(|a| a.error), Some(ErrorCode::None));
    assert_eq!(h.sync(&id).assignment.len(), 2);
}

#[test]
fn static_members_skip_the_first_step() {
    let mut h = H::new(0, &[("t", 2)]);
    let mut r = req("", &["t"], &[]);
    r.instance_id = Some("inst".into());
    let (out, _) = h.g.join(h.now, r, &h.counts);
    assert!(matches!(out, JoinOutcome::Pending { .. }), "{out:?}");
    assert_eq!(h.g.members().len(), 1);
    assert!(!h.g.has_pending_members());
}

/// Two Kafka-protocol members (the leader client assigns) through one generation.
fn kafka_pair(h: &mut H) -> (String, String) {
    h.g.config.initial_rebalance_delay_ms = 100;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let mut r = req("", &["t"], &[]);
        r.protocol_type = format!("{CLIENT_ASSIGNED_PREFIX}consumer");
        ids.push(h.join_req(r).unwrap());
    }
    h.tick(100);
    for id in &ids {
        assert_eq!(h.answer(id).map(|a| a.error), Some(ErrorCode::None));
    }
    let leader = h.g.leader().unwrap().to_string();
    let follower = ids.into_iter().find(|i| *i != leader).unwrap();
    (leader, follower)
}

fn planned(member: &str, parts: &[i32]) -> PlannedAssignment {
    PlannedAssignment {
        member_id: member.to_string(),
        blob: bytes::Bytes::from(format!("blob-{member}")),
        partitions: tps(parts),
    }
}

#[test]
fn a_kafka_leaders_plan_is_what_every_member_gets_and_followers_wait_for_it() {
    let mut h = H::new(0, &[("t", 4)]);
    let (leader, follower) = kafka_pair(&mut h);
    let generation = h.g.generation();
    assert!(h.g.awaiting_plan());
    // The follower asks first: it waits.
    let (out, effects) = h.g.sync(h.now, &follower, None, generation, None);
    assert_eq!(out, SyncOutcome::Pending);
    assert!(effects.is_empty());
    // The leader's plan gives the follower three partitions, itself one: not what the
    // coordinator's range/sticky assignor would do.
    let plan = vec![planned(&leader, &[3]), planned(&follower, &[0, 1, 2])];
    let (out, effects) = h.g.sync(h.now, &leader, None, generation, Some(plan));
    h.absorb(effects);
    assert_eq!(h.plans, 1);
    let SyncOutcome::Done(mine) = out else {
        panic!("{out:?}")
    };
    assert_eq!(mine.assignment, tps(&[3]));
    assert_eq!(
        mine.assignment_blob,
        Some(bytes::Bytes::from(format!("blob-{leader}")))
    );
    assert!(!h.g.awaiting_plan());
    // The parked follower is answered by syncing again: its part of the plan.
    let theirs = h.sync(&follower);
    assert_eq!(theirs.assignment, tps(&[0, 1, 2]));
    assert_eq!(
        theirs.assignment_blob,
        Some(bytes::Bytes::from(format!("blob-{follower}")))
    );
    assert_eq!(h.g.state(), GroupState::Stable);
    assert_eq!(
        h.assignment(&follower),
        tps(&[0, 1, 2]).into_iter().collect()
    );
}

#[test]
fn an_empty_plan_keeps_the_coordinators_assignment_and_native_groups_never_wait() {
    let mut h = H::new(0, &[("t", 4)]);
    let (leader, follower) = kafka_pair(&mut h);
    let generation = h.g.generation();
    let before: BTreeSet<TopicPartition> = h.assignment(&follower);
    let (out, _) = h.g.sync(h.now, &leader, None, generation, Some(Vec::new()));
    assert!(
        matches!(out, SyncOutcome::Done(ref r) if r.assignment_blob.is_none()),
        "{out:?}"
    );
    let theirs = h.sync(&follower);
    assert_eq!(
        theirs.assignment.into_iter().collect::<BTreeSet<_>>(),
        before
    );

    let mut native = H::new(0, &[("t", 2)]);
    let id = native.join("", &[]);
    native.tick(0);
    assert!(!native.g.awaiting_plan());
    assert_eq!(native.sync(&id).assignment.len(), 2);
}

#[test]
fn a_parked_sync_learns_the_rebalance_that_ended_its_generation() {
    let mut h = H::new(0, &[("t", 4)]);
    let (leader, follower) = kafka_pair(&mut h);
    let generation = h.g.generation();
    let (out, _) = h.g.sync(h.now, &follower, None, generation, None);
    assert_eq!(out, SyncOutcome::Pending);
    // The leader leaves instead of syncing: a new round starts, and the follower's sync,
    // asked again, says so.
    let (_, effects) = h.g.leave(h.now, &leader, None, &h.counts);
    h.absorb(effects);
    assert!(h.g.state() != GroupState::CompletingRebalance);
    let (out, _) = h.g.sync(h.now, &follower, None, generation, None);
    assert!(
        matches!(out, SyncOutcome::Done(ref r) if r.error != ErrorCode::None),
        "{out:?}"
    );
}
