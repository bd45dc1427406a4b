//! Consumer-group (KIP-848) state-machine tests: members played against one
//! [`ConsumerGroup`] with explicit time, no sockets, no sleeps.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet};

use weir_protocol::ErrorCode;

use super::*;
use crate::group::Group;

const HB: i32 = 1000;
const SESSION: i32 = 10_000;
const REBALANCE: i32 = 30_000;

fn config() -> GroupConfig {
    GroupConfig {
        max_size: 10,
        member_id_salt: "s".into(),
        consumer_heartbeat_interval_ms: HB,
        consumer_session_timeout_ms: SESSION,
        ..GroupConfig::default()
    }
}

fn tp(t: &str, p: i32) -> TopicPartition {
    TopicPartition::new(t, p)
}

fn parts(t: &str, ps: &[i32]) -> BTreeSet<TopicPartition> {
    ps.iter().map(|p| tp(t, *p)).collect()
}

struct H {
    g: ConsumerGroup,
    now: Millis,
    counts: BTreeMap<String, u32>,
}

impl H {
    fn new(topics: &[(&str, u32)]) -> H {
        H {
            g: ConsumerGroup::new(config()),
            now: 1_000,
            counts: topics.iter().map(|(t, n)| (t.to_string(), *n)).collect(),
        }
    }

    fn hb(&mut self, req: Heartbeat) -> Result<HeartbeatReply, HeartbeatError> {
        self.g.heartbeat(self.now, req, &self.counts)
    }

    fn join(&mut self, id: &str, topics: &[&str]) -> HeartbeatReply {
        self.hb(Heartbeat {
            member_id: id.into(),
            member_epoch: JOIN_EPOCH,
            rebalance_timeout_ms: REBALANCE,
            subscribed_topics: Some(topics.iter().map(|t| t.to_string()).collect()),
            owned: Some(Vec::new()),
            client_id: "c".into(),
            ..Heartbeat::default()
        })
        .unwrap()
    }

    /// A steady heartbeat that reports owning `owned`.
    fn beat(
        &mut self,
        id: &str,
        epoch: i32,
        owned: &BTreeSet<TopicPartition>,
    ) -> Result<HeartbeatReply, HeartbeatError> {
        self.hb(Heartbeat {
            member_id: id.into(),
            member_epoch: epoch,
            rebalance_timeout_ms: -1,
            owned: Some(owned.iter().cloned().collect()),
            ..Heartbeat::default()
        })
    }

    fn member(&self, id: &str) -> &ConsumerMember {
        &self.g.members()[id]
    }

    fn assigned(&self, id: &str) -> BTreeSet<TopicPartition> {
        self.member(id).assigned.clone()
    }

    /// No partition is held (assigned or being released) by two members.
    fn assert_exclusive(&self) {
        let mut seen = BTreeSet::new();
        for m in self.g.members().values() {
            for p in m.assigned.iter().chain(m.revoking.iter()) {
                assert!(
                    seen.insert(p.clone()),
                    "{p} held twice: {:?}",
                    self.g.members()
                );
            }
        }
    }

    /// Every member heartbeats, acknowledging what it was given, until nothing changes.
    fn settle(&mut self) {
        for _ in 0..10 {
            let ids: Vec<String> = self.g.members().keys().cloned().collect();
            for id in ids {
                let (epoch, owned) = (self.member(&id).member_epoch, self.assigned(&id));
                self.beat(&id, epoch, &owned).unwrap();
                self.assert_exclusive();
            }
        }
    }
}

#[test]
fn first_member_joins_and_gets_everything_at_epoch_one() {
    let mut h = H::new(&[("t", 4)]);
    let r = h.join("a", &["t"]);
    assert_eq!(r.member_id, "a");
    assert_eq!(r.member_epoch, 1);
    assert_eq!(r.heartbeat_interval_ms, HB);
    assert_eq!(r.assignment.unwrap().len(), 4);
    assert_eq!(h.g.group_epoch(), 1);
    assert_eq!(h.g.state_name(), "Stable");
    // A steady heartbeat with nothing new carries no assignment and changes no epoch.
    let r = h
        .hb(Heartbeat {
            member_id: "a".into(),
            member_epoch: 1,
            rebalance_timeout_ms: -1,
            ..Heartbeat::default()
        })
        .unwrap();
    assert_eq!((r.member_epoch, r.assignment), (1, None));
    assert_eq!(h.g.group_epoch(), 1);
}

#[test]
fn empty_member_id_gets_a_generated_one() {
    let mut h = H::new(&[("t", 1)]);
    let r = h.join("", &["t"]);
    assert!(!r.member_id.is_empty());
    assert!(h.g.members().contains_key(&r.member_id));
}

#[test]
fn group_epoch_bumps_on_membership_and_subscription_changes() {
    let mut h = H::new(&[("t", 2), ("u", 2)]);
    h.join("a", &["t"]);
    assert_eq!(h.g.group_epoch(), 1);
    h.join("b", &["t"]);
    assert_eq!(h.g.group_epoch(), 2);
    // Same subscription again: no bump.
    let r = h
        .hb(Heartbeat {
            member_id: "b".into(),
            member_epoch: h.member("b").member_epoch,
            subscribed_topics: Some(vec!["t".into()]),
            ..Heartbeat::default()
        })
        .unwrap();
    assert_eq!(h.g.group_epoch(), 2, "{r:?}");
    // New subscription: bump.
    h.hb(Heartbeat {
        member_id: "b".into(),
        member_epoch: h.member("b").member_epoch,
        subscribed_topics: Some(vec!["t".into(), "u".into()]),
        ..Heartbeat::default()
    })
    .unwrap();
    assert_eq!(h.g.group_epoch(), 3);
    // A partition added to a subscribed topic: bump at the next heartbeat.
    h.counts.insert("t".into(), 3);
    let e = h.member("a").member_epoch;
    h.beat("a", e, &h.assigned("a")).unwrap();
    assert_eq!(h.g.group_epoch(), 4);
    assert_eq!(h.g.assignment_epoch(), 4);
}

/// The heart of KIP-848: a partition moves to a new member only after its previous owner
/// reported it released; the old owner's epoch waits for that report.
#[test]
fn revocation_before_assignment_across_two_members() {
    let mut h = H::new(&[("t", 4)]);
    h.join("a", &["t"]);
    let all = parts("t", &[0, 1, 2, 3]);
    assert_eq!(h.assigned("a"), all);

    // b joins: its target has partitions a still holds, so it gets nothing yet, but its
    // epoch moves to the new assignment epoch (2).
    let rb = h.join("b", &["t"]);
    assert_eq!(rb.member_epoch, 2);
    assert_eq!(rb.assignment, Some(Vec::new()));
    assert_eq!(h.member("b").state, MemberState::UnreleasedPartitions);
    let target_b = h.g.target("b");
    assert_eq!(target_b.len(), 2);

    // a heartbeats at epoch 1: told to keep only its half; its epoch stays 1 until it
    // reports the other half released.
    let ra = h.beat("a", 1, &all).unwrap();
    assert_eq!(ra.member_epoch, 1);
    let kept: BTreeSet<TopicPartition> = ra.assignment.unwrap().into_iter().collect();
    assert_eq!(kept, h.g.target("a"));
    assert_eq!(h.member("a").state, MemberState::UnrevokedPartitions);
    assert_eq!(h.member("a").revoking, target_b);
    h.assert_exclusive();

    // b asks again before a released: still nothing.
    let rb = h.beat("b", 2, &BTreeSet::new()).unwrap();
    assert!(rb.assignment.unwrap_or_default().is_empty());
    assert!(h.assigned("b").is_empty());

    // a still claims everything: stays unrevoked.
    h.beat("a", 1, &all).unwrap();
    assert_eq!(h.member("a").member_epoch, 1);

    // a reports the release: epoch 2, stable.
    let ra = h.beat("a", 1, &kept).unwrap();
    assert_eq!(ra.member_epoch, 2);
    assert_eq!(h.member("a").state, MemberState::Stable);

    // Now b gets its partitions.
    let rb = h.beat("b", 2, &BTreeSet::new()).unwrap();
    let got: BTreeSet<TopicPartition> = rb.assignment.unwrap().into_iter().collect();
    assert_eq!(got, target_b);
    assert_eq!(h.member("b").state, MemberState::Stable);
    h.assert_exclusive();
    assert_eq!(h.g.state_name(), "Stable");
}

#[test]
fn three_members_settle_balanced_and_exclusive() {
    let mut h = H::new(&[("t", 6)]);
    h.join("a", &["t"]);
    h.settle();
    h.join("b", &["t"]);
    h.join("c", &["t"]);
    h.settle();
    let mut all = BTreeSet::new();
    for id in ["a", "b", "c"] {
        assert_eq!(h.assigned(id).len(), 2, "{id}");
        assert_eq!(h.member(id).member_epoch, h.g.assignment_epoch());
        all.extend(h.assigned(id));
    }
    assert_eq!(all, parts("t", &[0, 1, 2, 3, 4, 5]));
    assert_eq!(h.g.state_name(), "Stable");
}

#[test]
fn session_expiry_removes_the_member_and_its_partitions_move() {
    let mut h = H::new(&[("t", 4)]);
    h.join("a", &["t"]);
    h.join("b", &["t"]);
    h.settle();
    let epoch = h.g.group_epoch();
    // Only a keeps heartbeating.
    h.now += Millis::from(SESSION) / 2;
    let e = h.member("a").member_epoch;
    h.beat("a", e, &h.assigned("a")).unwrap();
    assert_eq!(h.g.next_deadline(), Some(1_000 + Millis::from(SESSION)));
    h.now = 1_000 + Millis::from(SESSION);
    assert!(h.g.tick(h.now).is_empty(), "not past the deadline yet");
    h.now += 1;
    assert_eq!(h.g.tick(h.now), vec!["b".to_string()]);
    assert_eq!(h.g.group_epoch(), epoch + 1);
    let e = h.member("a").member_epoch;
    let r = h.beat("a", e, &h.assigned("a")).unwrap();
    assert_eq!(r.member_epoch, epoch + 1);
    assert_eq!(h.assigned("a"), parts("t", &[0, 1, 2, 3]));
    // The expired member's next heartbeat is refused.
    let err = h.beat("b", 2, &BTreeSet::new()).unwrap_err();
    assert_eq!(err.code(), ErrorCode::UnknownMemberId);
}

#[test]
fn a_member_that_does_not_revoke_in_time_is_removed() {
    let mut h = H::new(&[("t", 2)]);
    h.join("a", &["t"]);
    h.join("b", &["t"]);
    h.beat("a", 1, &parts("t", &[0, 1])).unwrap();
    assert_eq!(h.member("a").state, MemberState::UnrevokedPartitions);
    // a keeps heartbeating but never releases.
    for _ in 0..40 {
        h.now += 1000;
        let _ = h.beat("a", 1, &parts("t", &[0, 1]));
        let _ = h.beat("b", 2, &BTreeSet::new());
        h.g.tick(h.now);
    }
    assert!(!h.g.members().contains_key("a"));
    h.settle();
    assert_eq!(h.assigned("b"), parts("t", &[0, 1]));
}

#[test]
fn leave_frees_partitions_for_the_others() {
    let mut h = H::new(&[("t", 4)]);
    h.join("a", &["t"]);
    h.join("b", &["t"]);
    h.settle();
    let r = h
        .hb(Heartbeat {
            member_id: "b".into(),
            member_epoch: LEAVE_EPOCH,
            ..Heartbeat::default()
        })
        .unwrap();
    assert_eq!(r.member_epoch, LEAVE_EPOCH);
    assert!(!h.g.members().contains_key("b"));
    h.settle();
    assert_eq!(h.assigned("a"), parts("t", &[0, 1, 2, 3]));
    // Leaving twice: unknown member.
    let err = h
        .hb(Heartbeat {
            member_id: "b".into(),
            member_epoch: LEAVE_EPOCH,
            ..Heartbeat::default()
        })
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::UnknownMemberId);
    h.hb(Heartbeat {
        member_id: "a".into(),
        member_epoch: LEAVE_EPOCH,
        ..Heartbeat::default()
    })
    .unwrap();
    assert!(h.g.is_empty());
    assert_eq!(h.g.state_name(), "Empty");
}

#[test]
fn fencing_unknown_and_wrong_epochs() {
    let mut h = H::new(&[("t", 2)]);
    h.join("a", &["t"]);
    // Unknown member.
    let err = h.beat("zz", 1, &BTreeSet::new()).unwrap_err();
    assert_eq!(err, HeartbeatError::UnknownMember("zz".into()));
    // An epoch from the future, or an old one with partitions it no longer has: fenced.
    let err = h.beat("a", 7, &BTreeSet::new()).unwrap_err();
    assert_eq!(err.code(), ErrorCode::FencedMemberEpoch);
    h.join("b", &["t"]);
    h.settle();
    let a = h.member("a").clone();
    assert!(a.member_epoch > a.previous_epoch);
    // Previous epoch, claiming only what it still has: accepted (a lost answer).
    h.beat("a", a.previous_epoch, &a.assigned).unwrap();
    // Previous epoch claiming a partition it gave away: fenced.
    let err = h
        .beat("a", a.previous_epoch, &parts("t", &[0, 1]))
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::FencedMemberEpoch);
    // A fenced member rejoins with epoch 0 and owns nothing until reconciled again.
    let r = h.join("a", &["t"]);
    assert_eq!(r.member_epoch, h.g.assignment_epoch());
    h.settle();
    h.assert_exclusive();
}

#[test]
fn offsets_access_needs_the_current_member_epoch() {
    let mut h = H::new(&[("t", 2)]);
    h.join("a", &["t"]);
    let now = h.now;
    assert_eq!(h.g.validate_offsets_access(now, "a", 1), Ok(()));
    assert_eq!(
        h.g.validate_offsets_access(now, "a", 0).unwrap_err().code(),
        ErrorCode::StaleMemberEpoch
    );
    assert_eq!(
        h.g.validate_offsets_access(now, "x", 1).unwrap_err().code(),
        ErrorCode::UnknownMemberId
    );
    // An admin commit only while the group is empty.
    assert_eq!(
        h.g.validate_offsets_access(now, "", -1).unwrap_err().code(),
        ErrorCode::UnknownMemberId
    );
}

#[test]
fn unsupported_assignor_and_missing_subscription_are_refused() {
    let mut h = H::new(&[("t", 2)]);
    let err = h
        .hb(Heartbeat {
            member_id: "a".into(),
            member_epoch: 0,
            subscribed_topics: Some(vec!["t".into()]),
            server_assignor: Some("magic".into()),
            ..Heartbeat::default()
        })
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::UnsupportedAssignor);
    let err = h
        .hb(Heartbeat {
            member_id: "a".into(),
            member_epoch: 0,
            ..Heartbeat::default()
        })
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidRequest);
}

/// Classic and consumer members never share a group: each is refused while the other
/// kind has members (Kafka: GROUP_ID_NOT_FOUND); an empty group can change kind.
#[test]
fn classic_and_consumer_groups_do_not_mix() {
    use crate::group::{JoinOutcome, JoinRequest, Protocol};
    let counts: BTreeMap<String, u32> = [("t".to_string(), 2)].into();
    let classic_join = || JoinRequest {
        member_id: String::new(),
        instance_id: None,
        client_id: "c".into(),
        client_host: "h".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 10_000,
        protocol_type: "kafka/consumer".into(),
        protocols: vec![Protocol {
            name: "range".into(),
            metadata: bytes::Bytes::new(),
        }],
        topics: vec!["t".into()],
        owned: Vec::new(),
    };
    let consumer_join = |id: &str| Heartbeat {
        member_id: id.into(),
        member_epoch: 0,
        subscribed_topics: Some(vec!["t".into()]),
        ..Heartbeat::default()
    };
    let mut g = Group::new("g", config(), 0);
    g.consumer_heartbeat(0, consumer_join("a"), &counts)
        .unwrap();
    let (out, _) = g.join(0, classic_join(), &counts);
    match out {
        JoinOutcome::Done(r) => assert_eq!(r.error, ErrorCode::GroupIdNotFound),
        other => panic!("{other:?}"),
    }
    // The consumer member leaves: the empty group becomes classic on the next join.
    g.consumer_heartbeat(
        0,
        Heartbeat {
            member_id: "a".into(),
            member_epoch: LEAVE_EPOCH,
            ..Heartbeat::default()
        },
        &counts,
    )
    .unwrap();
    let (out, _) = g.join(0, classic_join(), &counts);
    let id = match out {
        JoinOutcome::Done(r) if r.error == ErrorCode::MemberIdRequired => r.member_id,
        other => panic!("{other:?}"),
    };
    let (out, _) = g.join(
        0,
        JoinRequest {
            member_id: id,
            ..classic_join()
        },
        &counts,
    );
    assert!(matches!(out, JoinOutcome::Pending { .. }), "{out:?}");
    assert!(g.consumer().is_none());
    let err = g
        .consumer_heartbeat(0, consumer_join("b"), &counts)
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::GroupIdNotFound);
}

/// OffsetCommit on a consumer group goes through the group's one commit check, with the
/// member epoch where a classic commit has its generation.
#[test]
fn group_commit_checks_the_member_epoch() {
    use crate::group::Committer;
    let counts: BTreeMap<String, u32> = [("t".to_string(), 2)].into();
    let mut g = Group::new("g", config(), 0);
    let r = g
        .consumer_heartbeat(
            0,
            Heartbeat {
                member_id: "a".into(),
                member_epoch: 0,
                subscribed_topics: Some(vec!["t".into()]),
                ..Heartbeat::default()
            },
            &counts,
        )
        .unwrap();
    let who = |generation| Committer {
        generation,
        member_id: "a",
        instance_id: None,
    };
    assert_eq!(g.validate_commit(0, who(r.member_epoch)), Ok(()));
    assert_eq!(
        g.validate_commit(0, who(r.member_epoch - 1)),
        Err(ErrorCode::StaleMemberEpoch)
    );
    let stranger = Committer {
        generation: 1,
        member_id: "b",
        instance_id: None,
    };
    assert_eq!(
        g.validate_commit(0, stranger),
        Err(ErrorCode::UnknownMemberId)
    );
    // OffsetFetch v9 from a member: the same epoch rule.
    assert_eq!(g.validate_fetch(0, "a", r.member_epoch), Ok(()));
    assert_eq!(
        g.validate_fetch(0, "a", r.member_epoch + 1),
        Err(ErrorCode::StaleMemberEpoch)
    );
    // The group cannot be deleted while it has members.
    assert_eq!(g.delete(0), Err(ErrorCode::NonEmptyGroup));
}
