//! Group mode: [`GroupConsumer`] joins a consumer group, gets its partitions from the
//! coordinator (which assigns them, incrementally), resumes each at the committed offset
//! (or by the reset policy), heartbeats in the background and rejoins when asked.
//!
//! Threading: a background task only heartbeats and raises a "rejoin" flag; the rejoin
//! itself (join, sync, revoke, assign) runs inside [`GroupConsumer::poll`], so callbacks
//! and commits happen in the caller's task, between batches the caller has processed.
//! Partitions kept across a rebalance keep fetching; only revoked ones stop (after their
//! progress is committed), so a join elsewhere never stops this member for long.
//!
//! Two dedicated coordinator connections: JoinGroup parks on the broker until the new
//! generation forms, and responses on one connection come back in order, so heartbeats and
//! commits must not queue behind it.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use weir_protocol::native::v1;
use weir_protocol::ErrorCode;

use super::{Consumer, ConsumerRecord, TopicPartition};
use crate::config::{ClientConfig, ConsumerConfig, OffsetReset};
use crate::connection::Connection;
use crate::error::{Error, Result};

/// Group settings.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// The group id.
    pub group_id: String,
    /// The coordinator drops the member after this long without a heartbeat.
    pub session_timeout: Duration,
    /// Time between heartbeats (also how fast a rebalance is noticed).
    pub heartbeat_interval: Duration,
    /// How long the coordinator waits for members to rejoin.
    pub rebalance_timeout: Duration,
    /// Static membership id (KIP-345).
    pub instance_id: Option<String>,
    /// Commit positions automatically at this interval (and before revocations); `None`
    /// commits only when asked.
    pub auto_commit_interval: Option<Duration>,
    /// Assignor ("sticky", "range", "roundrobin").
    pub assignor: String,
}

impl GroupConfig {
    /// Defaults for `group_id`.
    pub fn new(group_id: &str) -> Self {
        GroupConfig {
            group_id: group_id.to_owned(),
            session_timeout: Duration::from_secs(10),
            heartbeat_interval: Duration::from_secs(1),
            rebalance_timeout: Duration::from_secs(60),
            instance_id: None,
            auto_commit_interval: Some(Duration::from_secs(5)),
            assignor: "sticky".into(),
        }
    }
}

/// Told about partitions leaving and joining this member.
pub trait RebalanceListener: Send + Sync {
    /// Before the partitions are released (their positions are committed afterwards when
    /// auto-commit is on).
    fn on_revoked(&mut self, _partitions: &[TopicPartition]) {}
    /// After new partitions were added.
    fn on_assigned(&mut self, _partitions: &[TopicPartition]) {}
}

#[derive(Debug, Default)]
struct Membership {
    member_id: String,
    generation: i32,
}

struct Shared {
    membership: Mutex<Membership>,
    rejoin: AtomicBool,
    /// The coordinator forgot us: rejoin with an empty member id.
    reset_member: AtomicBool,
}

impl Shared {
    fn membership(&self) -> (String, i32) {
        let m = match self.membership.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        (m.member_id.clone(), m.generation)
    }
    fn set(&self, member_id: &str, generation: i32) {
        let mut m = match self.membership.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        m.member_id = member_id.to_owned();
        m.generation = generation;
    }
}

/// A consumer in a group.
pub struct GroupConsumer {
    consumer: Consumer,
    config: GroupConfig,
    reset: OffsetReset,
    join_conn: Arc<Connection>,
    conn: Arc<Connection>,
    shared: Arc<Shared>,
    topics: Vec<String>,
    owned: BTreeSet<TopicPartition>,
    listener: Option<Box<dyn RebalanceListener>>,
    heartbeat: tokio::task::JoinHandle<()>,
    last_commit: Instant,
}

impl GroupConsumer {
    /// Finds the coordinator and connects; call [`GroupConsumer::subscribe`] next.
    pub async fn new(
        client_config: ClientConfig,
        consumer_config: ConsumerConfig,
        config: GroupConfig,
    ) -> Result<GroupConsumer> {
        let reset = consumer_config.auto_offset_reset;
        let consumer = Consumer::new(client_config, consumer_config)?;
        let client = consumer.client().clone();
        let fc = client
            .request_any(v1::FindCoordinatorRequest {
                key: config.group_id.clone(),
                key_type: 0,
            })
            .await?;
        Error::check(
            fc.error_code,
            || format!("find coordinator for {}", config.group_id),
            &fc.error_message,
        )?;
        let addr = format!("{}:{}", fc.host, fc.port);
        let cc = client.config();
        let join_conn = Arc::new(
            Connection::connect(&addr, &cc.client_id, cc.connect_timeout, cc.max_frame_bytes)
                .await?,
        );
        let conn = Arc::new(
            Connection::connect(&addr, &cc.client_id, cc.connect_timeout, cc.max_frame_bytes)
                .await?,
        );
        let shared = Arc::new(Shared {
            membership: Mutex::new(Membership::default()),
            rejoin: AtomicBool::new(false),
            reset_member: AtomicBool::new(false),
        });
        let heartbeat = tokio::spawn(heartbeat_loop(
            conn.clone(),
            shared.clone(),
            config.group_id.clone(),
            config.instance_id.clone(),
            config.heartbeat_interval,
        ));
        Ok(GroupConsumer {
            consumer,
            config,
            reset,
            join_conn,
            conn,
            shared,
            topics: Vec::new(),
            owned: BTreeSet::new(),
            listener: None,
            heartbeat,
            last_commit: Instant::now(),
        })
    }

    /// Subscribes to `topics` (replacing any earlier subscription); the join happens in the
    /// next [`GroupConsumer::poll`].
    pub fn subscribe(&mut self, topics: &[&str]) {
        self.topics = topics.iter().map(|t| (*t).to_owned()).collect();
        self.topics.sort();
        self.topics.dedup();
        self.shared.rejoin.store(true, Ordering::Release);
    }

    /// Subscribes to every existing topic whose name `matches` (a pattern subscription;
    /// call again to pick up new topics).
    pub async fn subscribe_matching(&mut self, matches: impl Fn(&str) -> bool) -> Result<()> {
        let admin = crate::admin::Admin::with_client(self.consumer.client().clone());
        let names = admin.list_topics().await?;
        let chosen: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|n| !n.starts_with("__") && matches(n))
            .collect();
        self.subscribe(&chosen);
        Ok(())
    }

    /// Sets the callbacks for revoked and assigned partitions.
    pub fn set_listener(&mut self, listener: Box<dyn RebalanceListener>) {
        self.listener = Some(listener);
    }

    /// Partitions this member owns now.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.owned.iter().cloned().collect()
    }

    /// (member id, generation) as last joined.
    pub fn membership(&self) -> (String, i32) {
        self.shared.membership()
    }

    /// Records of the owned partitions, waiting up to `timeout`; rejoins first when the
    /// group asked for it, and auto-commits when due.
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.shared.rejoin.load(Ordering::Acquire) {
                self.rejoin().await?;
            }
            if let Some(every) = self.config.auto_commit_interval {
                if self.last_commit.elapsed() >= every && !self.owned.is_empty() {
                    // A failed auto-commit is retried at the next interval or rejoin.
                    let _ = self.commit().await;
                }
            }
            let slice = deadline.saturating_duration_since(Instant::now()).min(
                self.config
                    .heartbeat_interval
                    .max(Duration::from_millis(50)),
            );
            let records = if self.owned.is_empty() {
                tokio::time::sleep(slice).await;
                Vec::new()
            } else {
                self.consumer.poll(slice).await?
            };
            if !records.is_empty() || Instant::now() >= deadline {
                return Ok(records);
            }
        }
    }

    /// Joins (again) and applies the new assignment: revoke first, then add.
    async fn rejoin(&mut self) -> Result<()> {
        if self.config.auto_commit_interval.is_some() && !self.owned.is_empty() {
            let _ = self.commit().await;
        }
        for _ in 0..20 {
            if self.shared.reset_member.swap(false, Ordering::AcqRel) {
                self.shared.set("", -1);
            }
            // Cleared before joining: a request for another round during this one must
            // not be lost.
            self.shared.rejoin.store(false, Ordering::Release);
            let (member_id, generation) = match self.join().await? {
                Ok(m) => m,
                Err(ErrorCode::UnknownMemberId) => {
                    self.shared.set("", -1);
                    continue;
                }
                Err(ErrorCode::RebalanceInProgress) | Err(ErrorCode::IllegalGeneration) => continue,
                Err(code) => return Err(group_error(code, "join group")),
            };
            self.shared.set(&member_id, generation);
            match self.sync(&member_id, generation).await? {
                Ok(parts) => {
                    self.apply(parts).await?;
                    self.last_commit = Instant::now();
                    return Ok(());
                }
                Err(ErrorCode::UnknownMemberId) => self.shared.set("", -1),
                Err(ErrorCode::RebalanceInProgress) | Err(ErrorCode::IllegalGeneration) => {}
                Err(code) => return Err(group_error(code, "sync group")),
            }
        }
        self.shared.rejoin.store(true, Ordering::Release);
        Err(Error::Broker {
            code: ErrorCode::RebalanceInProgress,
            context: format!("joining group {}", self.config.group_id),
            message: "the group did not settle after 20 attempts".into(),
        })
    }

    async fn join(&self) -> Result<std::result::Result<(String, i32), ErrorCode>> {
        let (member_id, _) = self.shared.membership();
        let owned: Vec<v1::TopicPartitions> = by_topic(self.owned.iter());
        let req = v1::JoinGroupRequest {
            group_id: self.config.group_id.clone(),
            session_timeout_ms: millis(self.config.session_timeout),
            rebalance_timeout_ms: millis(self.config.rebalance_timeout),
            member_id,
            group_instance_id: self.config.instance_id.clone(),
            protocol_type: "consumer".into(),
            protocols: vec![v1::JoinGroupProtocol {
                name: self.config.assignor.clone(),
                metadata: Default::default(),
            }],
            topics: self.topics.clone(),
            owned_partitions: owned,
            reason: String::new(),
        };
        let wait = self.config.rebalance_timeout + self.config.session_timeout;
        let r = self.join_conn.request(req, wait).await?;
        let code = ErrorCode::from_i32(r.error_code);
        Ok(if code.is_ok() {
            Ok((r.member_id, r.generation_id))
        } else {
            Err(code)
        })
    }

    async fn sync(
        &self,
        member_id: &str,
        generation: i32,
    ) -> Result<std::result::Result<BTreeSet<TopicPartition>, ErrorCode>> {
        let r = self
            .conn
            .request(
                v1::SyncGroupRequest {
                    group_id: self.config.group_id.clone(),
                    generation_id: generation,
                    member_id: member_id.to_owned(),
                    group_instance_id: self.config.instance_id.clone(),
                    protocol_type: "consumer".into(),
                    protocol_name: self.config.assignor.clone(),
                    assignments: Vec::new(),
                },
                self.consumer.client().config().request_timeout,
            )
            .await?;
        let code = ErrorCode::from_i32(r.error_code);
        if !code.is_ok() {
            return Ok(Err(code));
        }
        Ok(Ok(r
            .assigned_partitions
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (t.topic.clone(), *p)))
            .collect()))
    }

    async fn apply(&mut self, new: BTreeSet<TopicPartition>) -> Result<()> {
        let revoked: Vec<TopicPartition> = self.owned.difference(&new).cloned().collect();
        let added: Vec<TopicPartition> = new.difference(&self.owned).cloned().collect();
        if !revoked.is_empty() {
            if let Some(l) = self.listener.as_mut() {
                l.on_revoked(&revoked);
            }
        }
        let all: Vec<TopicPartition> = new.iter().cloned().collect();
        self.consumer.assign(&all).await?;
        self.owned = new;
        if !added.is_empty() {
            let committed = self.committed(&added).await?;
            for (tp, offset) in committed {
                match (offset, self.reset) {
                    (Some(o), _) => self.consumer.seek(&tp, o)?,
                    (None, OffsetReset::Earliest) => {
                        self.consumer.seek_to_beginning(std::slice::from_ref(&tp))?
                    }
                    (None, _) => self.consumer.seek_to_end(std::slice::from_ref(&tp))?,
                }
            }
            if let Some(l) = self.listener.as_mut() {
                l.on_assigned(&added);
            }
        }
        Ok(())
    }

    /// Commits the positions (next offsets after what `poll` returned) of every owned
    /// partition.
    pub async fn commit(&mut self) -> Result<()> {
        let offsets: Vec<(TopicPartition, i64)> = self
            .owned
            .iter()
            .filter_map(|tp| self.consumer.position(tp).map(|o| (tp.clone(), o)))
            .collect();
        self.last_commit = Instant::now();
        self.commit_offsets(&offsets).await
    }

    /// Commits the positions in the background; the handle yields the outcome.
    pub fn commit_async(&mut self) -> tokio::task::JoinHandle<Result<()>> {
        let offsets: Vec<(TopicPartition, i64)> = self
            .owned
            .iter()
            .filter_map(|tp| self.consumer.position(tp).map(|o| (tp.clone(), o)))
            .collect();
        self.last_commit = Instant::now();
        let req = self.commit_request(&offsets);
        let conn = self.conn.clone();
        let timeout = self.consumer.client().config().request_timeout;
        tokio::spawn(async move { check_commit(conn.request(req, timeout).await?) })
    }

    /// Commits exactly these offsets (each the next offset to read).
    pub async fn commit_offsets(&self, offsets: &[(TopicPartition, i64)]) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        let req = self.commit_request(offsets);
        let r = self
            .conn
            .request(req, self.consumer.client().config().request_timeout)
            .await?;
        check_commit(r)
    }

    fn commit_request(&self, offsets: &[(TopicPartition, i64)]) -> v1::OffsetCommitRequest {
        let (member_id, generation) = self.shared.membership();
        let mut topics: Vec<v1::OffsetCommitTopic> = Vec::new();
        for ((topic, partition), offset) in offsets {
            let p = v1::OffsetCommitPartition {
                partition_index: *partition,
                committed_offset: *offset,
                committed_leader_epoch: None,
                committed_metadata: None,
            };
            match topics.iter_mut().find(|t| &t.name == topic) {
                Some(t) => t.partitions.push(p),
                None => topics.push(v1::OffsetCommitTopic {
                    name: topic.clone(),
                    partitions: vec![p],
                }),
            }
        }
        v1::OffsetCommitRequest {
            group_id: self.config.group_id.clone(),
            generation_id: generation,
            member_id,
            group_instance_id: self.config.instance_id.clone(),
            retention_time_ms: -1,
            topics,
        }
    }

    /// Committed offsets of `partitions` (`None`: nothing committed).
    pub async fn committed(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, Option<i64>)>> {
        let req = v1::OffsetFetchRequest {
            group_id: self.config.group_id.clone(),
            topics: by_topic(partitions.iter())
                .into_iter()
                .map(|t| v1::OffsetFetchTopic {
                    name: t.topic,
                    partition_indexes: t.partitions,
                })
                .collect(),
            all_topics: false,
            require_stable: false,
        };
        let r = self
            .conn
            .request(req, self.consumer.client().config().request_timeout)
            .await?;
        Error::check(
            r.error_code,
            || format!("offset fetch for {}", self.config.group_id),
            "",
        )?;
        let mut out = Vec::with_capacity(partitions.len());
        for t in r.topics {
            for p in t.partitions {
                let o = (p.committed_offset >= 0).then_some(p.committed_offset);
                out.push(((t.name.clone(), p.partition_index), o));
            }
        }
        Ok(out)
    }

    /// Commits (if auto-commit is on) and leaves the group, so the partitions move at once.
    pub async fn close(mut self) -> Result<()> {
        let committed = if self.config.auto_commit_interval.is_some() {
            self.commit().await
        } else {
            Ok(())
        };
        self.leave().await?;
        committed
    }

    /// Leaves the group without committing.
    pub async fn leave(&mut self) -> Result<()> {
        self.heartbeat.abort();
        let (member_id, _) = self.shared.membership();
        if member_id.is_empty() {
            return Ok(());
        }
        let r = self
            .conn
            .request(
                v1::LeaveGroupRequest {
                    group_id: self.config.group_id.clone(),
                    members: vec![v1::MemberIdentity {
                        member_id,
                        group_instance_id: self.config.instance_id.clone(),
                        reason: "consumer closed".into(),
                    }],
                },
                self.consumer.client().config().request_timeout,
            )
            .await?;
        self.shared.set("", -1);
        self.owned.clear();
        Error::check(
            r.error_code,
            || format!("leave group {}", self.config.group_id),
            "",
        )
    }
}

impl Drop for GroupConsumer {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

async fn heartbeat_loop(
    conn: Arc<Connection>,
    shared: Arc<Shared>,
    group: String,
    instance_id: Option<String>,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (member_id, generation) = shared.membership();
        if member_id.is_empty() {
            continue;
        }
        let req = v1::HeartbeatRequest {
            group_id: group.clone(),
            generation_id: generation,
            member_id,
            group_instance_id: instance_id.clone(),
        };
        let Ok(r) = conn.request(req, every.max(Duration::from_secs(5))).await else {
            continue;
        };
        // Only an answer about the generation we still have counts: a reply to a
        // heartbeat sent before a rejoin finished says nothing about the new one.
        if shared.membership().1 != generation {
            continue;
        }
        match ErrorCode::from_i32(r.error_code) {
            ErrorCode::None => {}
            ErrorCode::UnknownMemberId => {
                shared.reset_member.store(true, Ordering::Release);
                shared.rejoin.store(true, Ordering::Release);
            }
            _ => shared.rejoin.store(true, Ordering::Release),
        }
    }
}

fn check_commit(r: v1::OffsetCommitResponse) -> Result<()> {
    for t in r.topics {
        for p in t.partitions {
            Error::check(
                p.error_code,
                || format!("commit {}-{}", t.name, p.partition_index),
                "",
            )?;
        }
    }
    Ok(())
}

fn group_error(code: ErrorCode, what: &str) -> Error {
    Error::Broker {
        code,
        context: what.to_owned(),
        message: String::new(),
    }
}

fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

fn by_topic<'a>(tps: impl Iterator<Item = &'a TopicPartition>) -> Vec<v1::TopicPartitions> {
    let mut out: Vec<v1::TopicPartitions> = Vec::new();
    for (topic, p) in tps {
        match out.iter_mut().find(|t| &t.topic == topic) {
            Some(t) => t.partitions.push(*p),
            None => out.push(v1::TopicPartitions {
                topic: topic.clone(),
                partitions: vec![*p],
            }),
        }
    }
    out
}
