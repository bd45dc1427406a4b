//! Consumer groups against the real broker binary, over raw native frames: assignment,
//! incremental rebalancing, commits, restart, session expiry, list/describe/delete.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{batch, temp_dir, Broker, Client};
use futures::future::join_all;
use weir_protocol::native::v1;
use weir_protocol::ErrorCode;

const CONFIG: &str = "[groups]\noffsets_topic_partitions = 4\nmin_session_timeout_ms = 500\ninitial_rebalance_delay_ms = 200\n";

fn start(dir: &std::path::Path) -> Broker {
    let cfg = dir.join("groups-test.toml");
    std::fs::write(&cfg, CONFIG).unwrap();
    let cfg = cfg.to_string_lossy().to_string();
    Broker::start(dir, &["--config", &cfg])
}

struct Member {
    c: Client,
    id: String,
    generation: i32,
    owned: BTreeSet<(String, i32)>,
    session_ms: i32,
}

impl Member {
    async fn new(b: &Broker, session_ms: i32) -> Member {
        Member {
            c: b.client().await,
            id: String::new(),
            generation: -1,
            owned: BTreeSet::new(),
            session_ms,
        }
    }

    async fn join(&mut self, group: &str) -> v1::JoinGroupResponse {
        let owned = self
            .owned
            .iter()
            .map(|(t, p)| v1::TopicPartitions {
                topic: t.clone(),
                partitions: vec![*p],
            })
            .collect();
        let req = v1::JoinGroupRequest {
            group_id: group.into(),
            session_timeout_ms: self.session_ms,
            rebalance_timeout_ms: 10_000,
            member_id: self.id.clone(),
            group_instance_id: None,
            protocol_type: "consumer".into(),
            protocols: vec![v1::JoinGroupProtocol {
                name: "sticky".into(),
                metadata: Default::default(),
            }],
            topics: vec!["t".into()],
            owned_partitions: owned,
            reason: String::new(),
        };
        let mut r = self.c.call(req.clone()).await;
        // Two-step join (KIP-394): the first answer only carries our member id.
        if ErrorCode::from_i32(r.error_code) == ErrorCode::MemberIdRequired {
            r = self
                .c
                .call(v1::JoinGroupRequest {
                    member_id: r.member_id.clone(),
                    ..req
                })
                .await;
        }
        assert_eq!(ErrorCode::from_i32(r.error_code), ErrorCode::None, "{r:?}");
        self.id = r.member_id.clone();
        self.generation = r.generation_id;
        r
    }

    /// Syncs and adopts the assignment; returns how many owned partitions were revoked.
    async fn sync(&mut self, group: &str) -> usize {
        let r = self
            .c
            .call(v1::SyncGroupRequest {
                group_id: group.into(),
                generation_id: self.generation,
                member_id: self.id.clone(),
                protocol_type: "consumer".into(),
                ..Default::default()
            })
            .await;
        assert_eq!(ErrorCode::from_i32(r.error_code), ErrorCode::None, "{r:?}");
        let new: BTreeSet<(String, i32)> = r
            .assigned_partitions
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (t.topic.clone(), *p)))
            .collect();
        let revoked = self.owned.difference(&new).count();
        self.owned = new;
        revoked
    }

    async fn heartbeat(&mut self, group: &str) -> ErrorCode {
        let r = self
            .c
            .call(v1::HeartbeatRequest {
                group_id: group.into(),
                generation_id: self.generation,
                member_id: self.id.clone(),
                group_instance_id: None,
            })
            .await;
        ErrorCode::from_i32(r.error_code)
    }

    async fn commit(&mut self, group: &str, offset: i64) -> Vec<ErrorCode> {
        let r = self
            .c
            .call(v1::OffsetCommitRequest {
                group_id: group.into(),
                generation_id: self.generation,
                member_id: self.id.clone(),
                group_instance_id: None,
                retention_time_ms: -1,
                topics: vec![v1::OffsetCommitTopic {
                    name: "t".into(),
                    partitions: self
                        .owned
                        .iter()
                        .map(|(_, p)| v1::OffsetCommitPartition {
                            partition_index: *p,
                            committed_offset: offset,
                            committed_leader_epoch: None,
                            committed_metadata: Some(format!("by {}", self.id)),
                        })
                        .collect(),
                }],
            })
            .await;
        r.topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| ErrorCode::from_i32(p.error_code))
            })
            .collect()
    }
}

fn disjoint_union(members: &[Member]) -> usize {
    let mut all = BTreeSet::new();
    for m in members {
        for tp in &m.owned {
            assert!(all.insert(tp.clone()), "{tp:?} owned twice");
        }
    }
    all.len()
}

/// Every member syncs, then everyone rejoins while the group asks for it.
async fn settle(members: &mut [Member], group: &str) -> usize {
    let mut revoked = 0;
    for round in 0..5 {
        let mut need = false;
        for m in members.iter_mut() {
            if m.heartbeat(group).await == ErrorCode::RebalanceInProgress {
                need = true;
            }
        }
        if !need {
            return revoked;
        }
        join_all(members.iter_mut().map(|m| m.join(group))).await;
        for m in members.iter_mut() {
            revoked += m.sync(group).await;
        }
        assert!(round < 4, "did not settle");
    }
    revoked
}

#[tokio::test]
async fn three_members_commit_rebalance_incrementally_and_survive_restart() {
    let dir = temp_dir();
    let broker = start(dir.path());
    let mut admin = broker.client().await;
    assert_eq!(admin.create_topic("t", 6, &[]).await.error_code, 0);
    for p in 0..6 {
        admin.produce("t", p, batch(&[b"a", b"b", b"c"], 1)).await;
    }
    let fc = admin
        .call(v1::FindCoordinatorRequest {
            key: "g".into(),
            key_type: 0,
        })
        .await;
    assert_eq!((fc.error_code, fc.node_id), (0, 0));

    let mut members = Vec::new();
    for _ in 0..3 {
        members.push(Member::new(&broker, 10_000).await);
    }
    // Joined within the initial delay: one generation for all three.
    let joins = join_all(members.iter_mut().map(|m| m.join("g"))).await;
    assert!(joins.iter().all(|j| j.generation_id == 1));
    assert_eq!(
        joins.iter().filter(|j| !j.members.is_empty()).count(),
        1,
        "one leader"
    );
    for m in members.iter_mut() {
        m.sync("g").await;
        assert_eq!(m.owned.len(), 2);
    }
    assert_eq!(disjoint_union(&members), 6);
    for m in members.iter_mut() {
        assert!(m.commit("g", 2).await.iter().all(|c| *c == ErrorCode::None));
    }

    // A stale generation is rejected with Kafka's code.
    members[0].generation -= 1;
    assert_eq!(
        members[0].commit("g", 2).await[0],
        ErrorCode::IllegalGeneration
    );
    members[0].generation += 1;

    // A fourth member: the three keep their partitions during the round, one moves.
    let mut fourth = Member::new(&broker, 10_000).await;
    let addr = broker.addr.clone();
    let pending = tokio::spawn(async move {
        fourth.join("g").await;
        fourth
    });
    // Wait (bounded) until the fourth join has started the rebalance, then every member
    // is told to rejoin.
    let mut rebalancing = false;
    for _ in 0..200 {
        if members[0].heartbeat("g").await == ErrorCode::RebalanceInProgress {
            rebalancing = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(rebalancing, "the fourth member's join starts a rebalance");
    for m in members.iter_mut() {
        assert_eq!(m.heartbeat("g").await, ErrorCode::RebalanceInProgress);
    }
    join_all(members.iter_mut().map(|m| m.join("g"))).await;
    let fourth = pending.await.unwrap();
    members.push(fourth);
    let mut revoked = 0;
    for m in members.iter_mut() {
        revoked += m.sync("g").await;
    }
    assert_eq!(revoked, 1, "only one partition changes hands");
    assert!(members[3].owned.is_empty(), "revoked before it is assigned");
    settle(&mut members, "g").await;
    assert_eq!(disjoint_union(&members), 6);
    assert_eq!(members[3].owned.len(), 1);
    let _ = addr;

    let d = admin
        .call(v1::DescribeGroupsRequest {
            groups: vec!["g".into(), "nope".into()],
            include_offsets: true,
        })
        .await;
    assert_eq!(d.groups[0].group_state, "Stable");
    assert_eq!(d.groups[0].members.len(), 4);
    assert_eq!(d.groups[0].offsets.len(), 6);
    assert!(d.groups[0]
        .offsets
        .iter()
        .all(|o| o.lag == Some(1) && o.log_end_offset == Some(3)));
    assert_eq!(
        ErrorCode::from_i32(d.groups[1].error_code),
        ErrorCode::GroupIdNotFound
    );
    let del = admin
        .call(v1::DeleteGroupsRequest {
            groups_names: vec!["g".into()],
        })
        .await;
    assert_eq!(
        ErrorCode::from_i32(del.results[0].error_code),
        ErrorCode::NonEmptyGroup
    );

    // Everyone leaves cleanly.
    let leave = admin
        .call(v1::LeaveGroupRequest {
            group_id: "g".into(),
            members: members
                .iter()
                .map(|m| v1::MemberIdentity {
                    member_id: m.id.clone(),
                    ..Default::default()
                })
                .collect(),
        })
        .await;
    assert!(leave.members.iter().all(|m| m.error_code == 0));
    let l = admin.call(v1::ListGroupsRequest::default()).await;
    assert_eq!(l.groups.len(), 1);
    assert_eq!(l.groups[0].group_state, "Empty");

    // A standalone commit to another group, deleted again.
    let r = admin
        .call(v1::OffsetCommitRequest {
            group_id: "tmp".into(),
            generation_id: -1,
            topics: vec![v1::OffsetCommitTopic {
                name: "t".into(),
                partitions: vec![v1::OffsetCommitPartition {
                    partition_index: 0,
                    committed_offset: 1,
                    ..Default::default()
                }],
            }],
            ..Default::default()
        })
        .await;
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    let del = admin
        .call(v1::DeleteGroupsRequest {
            groups_names: vec!["tmp".into()],
        })
        .await;
    assert_eq!(del.results[0].error_code, 0);
    drop(members);
    drop(admin);

    // Restart: committed offsets (with metadata) come back from __consumer_offsets.
    assert!(broker.stop());
    let broker = start(dir.path());
    let mut admin = broker.client().await;
    let f = admin
        .call(v1::OffsetFetchRequest {
            group_id: "g".into(),
            topics: vec![v1::OffsetFetchTopic {
                name: "t".into(),
                partition_indexes: (0..7).collect(),
            }],
            ..Default::default()
        })
        .await;
    let parts = &f.topics[0].partitions;
    assert_eq!(parts.len(), 7);
    for p in &parts[..6] {
        assert_eq!(p.committed_offset, 2, "{p:?}");
        assert!(p.metadata.starts_with("by "));
    }
    assert_eq!(
        (parts[6].committed_offset, parts[6].metadata.as_str()),
        (-1, "")
    );
    let f = admin
        .call(v1::OffsetFetchRequest {
            group_id: "tmp".into(),
            all_topics: true,
            ..Default::default()
        })
        .await;
    assert!(f.topics.is_empty(), "deleted group stays deleted");
}

#[tokio::test]
async fn silent_member_is_expired_and_its_partitions_move() {
    let dir = temp_dir();
    let broker = start(dir.path());
    let mut admin = broker.client().await;
    admin.create_topic("t", 6, &[]).await;
    let mut a = Member::new(&broker, 800).await;
    let mut b = Member::new(&broker, 800).await;
    let (ra, rb) = tokio::join!(a.join("h"), b.join("h"));
    assert_eq!((ra.generation_id, rb.generation_id), (1, 1));
    a.sync("h").await;
    b.sync("h").await;
    assert_eq!(a.owned.len() + b.owned.len(), 6);
    // b goes silent (as if killed). a heartbeats until told to rejoin.
    let started = Instant::now();
    let mut told = false;
    for _ in 0..100 {
        if a.heartbeat("h").await == ErrorCode::RebalanceInProgress {
            told = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(told, "expiry noticed");
    a.join("h").await;
    a.sync("h").await;
    assert_eq!(a.owned.len(), 6);
    println!(
        "partitions moved {:?} after the last heartbeat (session 800 ms)",
        started.elapsed()
    );
    assert_eq!(b.heartbeat("h").await, ErrorCode::UnknownMemberId);
}

/// Standalone (no member) commit of `offset` for partition 0 of `topic`.
async fn commit_standalone(c: &mut Client, group: &str, topic: &str, offset: i64) -> ErrorCode {
    let r = c
        .call(common::offset_commit_req(group, -1, "", topic, 0, offset))
        .await;
    ErrorCode::from_i32(r.topics[0].partitions[0].error_code)
}

async fn describe_offsets(c: &mut Client, group: &str) -> Vec<v1::GroupPartitionOffset> {
    let d = c
        .call(v1::DescribeGroupsRequest {
            groups: vec![group.into()],
            include_offsets: true,
        })
        .await;
    d.groups[0].offsets.clone()
}

#[tokio::test]
async fn commits_are_durable_when_acknowledged_and_lag_is_reported_in_time() {
    let dir = temp_dir();
    let broker = start(dir.path());
    let mut c = broker.client().await;
    c.create_topic("t", 1, &[]).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // Three records written 90, 60 and 30 s ago (producer timestamps).
    for age_s in [90, 60, 30] {
        let b = batch(&[b"x"], now - age_s * 1000);
        assert_eq!(c.produce("t", 0, b).await.error_code, 0);
    }
    for g in ["g1", "g2", "g3"] {
        assert_eq!(commit_standalone(&mut c, g, "t", 1).await, ErrorCode::None);
    }

    // An acknowledged commit is durable, and durable data is below the high watermark:
    // every commit record is visible in __consumer_offsets (before the fix the records
    // were appended but never flushed, so the high watermark stayed at 0).
    let mut visible = 0;
    for p in 0..4 {
        visible += c.list_offset("__consumer_offsets", p, -1).await.offset;
    }
    assert_eq!(visible, 3, "one commit record per group is visible");

    // Lag in time: the first uncommitted record (offset 1) was written 60 s ago.
    let o = describe_offsets(&mut c, "g1").await;
    assert_eq!(o[0].lag, Some(2));
    let lag_ms = o[0].lag_ms.expect("lag in time");
    assert!(
        (60_000..90_000).contains(&lag_ms),
        "lag {lag_ms} ms is measured from record 1's timestamp"
    );
    // Caught up: lag in time is 0.
    assert_eq!(
        commit_standalone(&mut c, "g1", "t", 3).await,
        ErrorCode::None
    );
    let o = describe_offsets(&mut c, "g1").await;
    assert_eq!((o[0].lag, o[0].lag_ms), (Some(0), Some(0)));
}
