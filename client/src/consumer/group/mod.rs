//! Group mode: [`GroupConsumer`] joins a consumer group, gets its partitions from the
//! coordinator (which assigns them, incrementally), resumes each at the committed offset
//! (or by the reset policy), heartbeats in the background and rejoins when asked.
//!
//! - `link.rs`: finding the coordinator and the two connections to it, found again after
//!   a connection loss or NOT_COORDINATOR (a broker restart, a moved coordinator).
//! - `heartbeat.rs`: the background heartbeat and the flags it raises for `poll`.
//!
//! The rejoin itself (join, sync, revoke, assign) runs inside [`GroupConsumer::poll`], so
//! callbacks and commits happen in the caller's task, between batches the caller has
//! processed. Partitions kept across a rebalance keep fetching; only revoked ones stop
//! (after their progress is committed), so a join elsewhere never stops this member for
//! long. A member that may have fallen out of the group (the coordinator forgot it, or
//! did not confirm it for a whole session timeout) stops fetching at once, so two members
//! never read the same partition for long.

mod committer;
mod heartbeat;
mod link;

pub use committer::Committer;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir_protocol::native::v1;
use weir_protocol::ErrorCode;

use self::heartbeat::Shared;
use self::link::{link_failure, Lane, Link};
use super::{Consumer, ConsumerRecord, TopicPartition, STREAM_POLL};
use crate::config::{ClientConfig, ConsumerConfig, OffsetReset};
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
    /// What `commit()` and auto-commit commit: `true`, the positions (everything `poll`
    /// or the stream handed out); `false`, only what was marked processed with
    /// [`GroupConsumer::store_offset`] (Kafka's `enable.auto.offset.store=false`).
    pub auto_offset_store: bool,
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
            auto_offset_store: true,
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

/// A consumer in a group.
pub struct GroupConsumer {
    consumer: Consumer,
    config: GroupConfig,
    reset: OffsetReset,
    link: Arc<Link>,
    shared: Arc<Shared>,
    committer: Committer,
    /// The `rejoin_wanted` value the last completed rejoin started from.
    rejoined_at: u64,
    topics: Vec<String>,
    /// A regex subscription, matched against the topic list again every
    /// `metadata_max_age` so new matching topics are picked up.
    pattern: Option<regex::Regex>,
    pattern_checked: Instant,
    owned: BTreeSet<TopicPartition>,
    /// Offsets marked processed with `store_offset` (next offset to read), by partition.
    stored: BTreeMap<TopicPartition, i64>,
    listener: Option<Box<dyn RebalanceListener>>,
    heartbeat: tokio::task::JoinHandle<()>,
    last_commit: Instant,
    /// The periodic auto-commit in flight: it runs beside `poll` (as Kafka's async
    /// auto-commit does), so a slow coordinator never holds records back.
    auto_commit: Option<tokio::task::JoinHandle<Result<()>>>,
    /// The JoinGroup in flight. It outlives the `poll` that sent it (a join parks on the
    /// broker until the generation forms, often longer than a poll's timeout), so its
    /// answer is not lost and no poll has to send another one.
    join: Option<InFlightJoin>,
}

struct InFlightJoin {
    /// The `rejoin_wanted` value when it was sent.
    round: u64,
    task: tokio::task::JoinHandle<Result<v1::JoinGroupResponse>>,
}

impl GroupConsumer {
    /// Finds the coordinator and connects; call [`GroupConsumer::subscribe`] next.
    ///
    /// Cancellation safety: safe; dropping it changes nothing.
    pub async fn new(
        client_config: ClientConfig,
        consumer_config: ConsumerConfig,
        config: GroupConfig,
    ) -> Result<GroupConsumer> {
        let reset = consumer_config.auto_offset_reset;
        let consumer = Consumer::new(client_config, consumer_config)?;
        let link = Arc::new(Link::new(
            consumer.client().clone(),
            config.group_id.clone(),
        ));
        // Connect now, so a wrong address or group id fails here rather than in `poll`.
        link.get().await?;
        let shared = Arc::new(Shared::new());
        let heartbeat = tokio::spawn(heartbeat::run(
            link.clone(),
            shared.clone(),
            config.group_id.clone(),
            config.instance_id.clone(),
            config.heartbeat_interval,
        ));
        let committer = Committer {
            link: link.clone(),
            shared: shared.clone(),
            group_id: config.group_id.clone(),
            instance_id: config.instance_id.clone(),
            timeout: consumer.client().config().request_timeout,
            retry_backoff: consumer.client().config().retry_backoff,
        };
        Ok(GroupConsumer {
            consumer,
            config,
            reset,
            link,
            shared,
            committer,
            rejoined_at: 0,
            topics: Vec::new(),
            pattern: None,
            pattern_checked: Instant::now(),
            owned: BTreeSet::new(),
            stored: BTreeMap::new(),
            listener: None,
            heartbeat,
            last_commit: Instant::now(),
            auto_commit: None,
            join: None,
        })
    }

    /// Subscribes to `topics` (replacing any earlier subscription, a pattern included);
    /// the join happens in the next [`GroupConsumer::poll`].
    pub fn subscribe(&mut self, topics: &[&str]) {
        self.pattern = None;
        self.set_topics(topics);
    }

    fn set_topics(&mut self, topics: &[&str]) {
        let mut topics: Vec<String> = topics.iter().map(|t| (*t).to_owned()).collect();
        topics.sort();
        topics.dedup();
        self.topics = topics;
        self.shared.want_rejoin();
    }

    /// Subscribes to every existing topic whose name `matches`, once (call again to pick
    /// up new topics; [`GroupConsumer::subscribe_regex`] does that by itself).
    ///
    /// Cancellation safety: safe; the subscription changes only once the topic list is in.
    pub async fn subscribe_matching(&mut self, matches: impl Fn(&str) -> bool) -> Result<()> {
        self.pattern = None;
        let chosen = self.matching_topics(matches).await?;
        let chosen: Vec<&str> = chosen.iter().map(String::as_str).collect();
        self.set_topics(&chosen);
        Ok(())
    }

    /// Subscribes to every topic whose whole name matches the regex `pattern` (as Kafka's
    /// `subscribe(Pattern)`: `orders-.*` matches `orders-eu`, not `old-orders-eu`).
    /// Internal `__` topics never match. Topics created or deleted later join or leave the
    /// subscription within `metadata_max_age` of the client config.
    ///
    /// Cancellation safety: safe; the subscription changes only once the topic list is in.
    pub async fn subscribe_regex(&mut self, pattern: &str) -> Result<()> {
        let re = topic_pattern(pattern)?;
        let chosen = self.matching_topics(|t| re.is_match(t)).await?;
        let chosen: Vec<&str> = chosen.iter().map(String::as_str).collect();
        self.set_topics(&chosen);
        self.pattern = Some(re);
        self.pattern_checked = Instant::now();
        Ok(())
    }

    async fn matching_topics(&self, matches: impl Fn(&str) -> bool) -> Result<Vec<String>> {
        let admin = crate::admin::Admin::with_client(self.consumer.client().clone());
        let mut names = admin.list_topics().await?;
        names.retain(|n| !n.starts_with("__") && matches(n));
        names.sort();
        Ok(names)
    }

    /// Re-matches a pattern subscription when due; rejoins only when the set changed.
    async fn refresh_pattern(&mut self) {
        let Some(re) = self.pattern.clone() else {
            return;
        };
        if self.pattern_checked.elapsed() < self.consumer.client().config().metadata_max_age {
            return;
        }
        self.pattern_checked = Instant::now();
        match self.matching_topics(|t| re.is_match(t)).await {
            Ok(chosen) if chosen != self.topics => {
                let chosen: Vec<&str> = chosen.iter().map(String::as_str).collect();
                self.set_topics(&chosen);
            }
            Ok(_) => {}
            // Transient: the current subscription stays; retried at the next interval.
            Err(e) => tracing::debug!(error = %e, "pattern subscription refresh failed"),
        }
    }

    /// Sets the callbacks for revoked and assigned partitions.
    pub fn set_listener(&mut self, listener: Box<dyn RebalanceListener>) {
        self.listener = Some(listener);
    }

    /// Partitions this member owns now.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.owned.iter().cloned().collect()
    }

    /// Whether a (re)join is under way: `poll` returns nothing new until it completes.
    pub fn is_rebalancing(&self) -> bool {
        self.join.is_some() || self.shared.rejoin_wanted() != self.rejoined_at
    }

    /// (member id, generation) as last joined; the member id is known from the first step
    /// of the join on, the generation once the join completed (-1 before).
    pub fn membership(&self) -> (String, i32) {
        self.shared.membership()
    }

    /// Records of the owned partitions, waiting up to `timeout`; rejoins first when the
    /// group asked for it (or the coordinator was lost and found again), and auto-commits
    /// when due. Connection failures are retried within `timeout` (logged with `tracing`);
    /// errors no retry can cure, a failed heartbeat's included, are returned.
    ///
    /// Cancellation safety: safe, e.g. in `tokio::select!`. A poll dropped mid-way loses no
    /// record (none was handed out) and no rebalance: a rejoin cut short is redone by the
    /// next poll, and new partitions start at their committed offsets, never at the reset
    /// policy by accident.
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.shared.take_fatal() {
                return Err(e);
            }
            self.refresh_pattern().await;
            self.drop_lost_partitions().await?;
            if self.shared.rejoin_wanted() != self.rejoined_at || self.join.is_some() {
                let rejoined = self.rejoin(deadline).await;
                if let Ok(false) = rejoined {
                    return Ok(Vec::new()); // the join goes on; the next poll awaits it
                }
                if let Err(e) = rejoined {
                    if !link_failure(&e) {
                        return Err(e);
                    }
                    // The coordinator is away (restarting, moving): try again shortly.
                    tracing::warn!(group = %self.config.group_id, error = %e, "rejoin failed; retrying");
                    let backoff = self.consumer.client().config().retry_backoff;
                    let left = deadline.saturating_duration_since(Instant::now());
                    tokio::time::sleep(backoff.max(Duration::from_millis(50)).min(left)).await;
                    if Instant::now() >= deadline {
                        return Ok(Vec::new());
                    }
                    continue;
                }
            }
            self.auto_commit_if_due();
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

    /// Records as an endless stream, rejoining and auto-committing as `poll` does; each
    /// item is one record or an error `poll` would have returned (the stream goes on
    /// after it). Positions, and so commits, count only records the stream yielded.
    ///
    /// Cancellation safety: safe. Dropping the stream (or a `next()` in `tokio::select!`)
    /// loses nothing not yielded yet: such records stay in the consumer for the next
    /// `poll` or stream.
    ///
    /// ```no_run
    /// # async fn demo() -> weir_client::Result<()> {
    /// use futures::StreamExt;
    /// use weir_client::{ClientConfig, ConsumerConfig, GroupConfig, GroupConsumer};
    /// let mut group = GroupConfig::new("billing");
    /// group.auto_commit_interval = None; // commit what was processed, below
    /// let mut consumer = GroupConsumer::new(
    ///     ClientConfig::new("127.0.0.1:9292"),
    ///     ConsumerConfig::default(),
    ///     group,
    /// )
    /// .await?;
    /// consumer.subscribe(&["orders"]);
    /// let mut stream = consumer.stream();
    /// while let Some(record) = stream.next().await {
    ///     let record = record?;
    ///     println!("{:?}", record.value);
    ///     # break;
    /// }
    /// drop(stream);
    /// consumer.close().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn stream(&mut self) -> futures::stream::BoxStream<'_, Result<ConsumerRecord>> {
        // Boxed (so `Unpin`): callers can `.next()` it without pinning.
        Box::pin(futures::stream::unfold(self, |g| async move {
            loop {
                if let Some(r) = g.consumer.next_unread() {
                    return Some((Ok(r), g));
                }
                match g.poll(STREAM_POLL).await {
                    Ok(records) => g.consumer.unread_front(records),
                    Err(e) => return Some((Err(e), g)),
                }
            }
        }))
    }

    /// Next `poll` of each owned partition in `partitions` starts at the first record
    /// with a timestamp at or after `timestamp_ms` (the log end if none); the rest are
    /// ignored. Commit afterwards to make the new positions the group's.
    pub fn seek_to_timestamp<T: Into<TopicPartition>>(
        &self,
        partitions: impl IntoIterator<Item = T>,
        timestamp_ms: i64,
    ) -> Result<()> {
        let owned: Vec<TopicPartition> = super::collect_tps(partitions)
            .into_iter()
            .filter(|tp| self.owned.contains(tp))
            .collect();
        self.consumer.seek_to_timestamp(&owned, timestamp_ms)
    }

    /// Next `poll` of owned partition `tp` starts at `offset`.
    pub fn seek(&self, tp: impl Into<TopicPartition>, offset: i64) -> Result<()> {
        let tp = tp.into();
        if !self.owned.contains(&tp) {
            return Err(Error::Config(format!(
                "{tp} is not assigned to this member"
            )));
        }
        self.consumer.seek(tp, offset)
    }

    /// Starts the periodic commit in the background when due and none is running. A
    /// failed one is retried at the next interval or before the next rejoin.
    fn auto_commit_if_due(&mut self) {
        let Some(every) = self.config.auto_commit_interval else {
            return;
        };
        if self.last_commit.elapsed() < every || self.owned.is_empty() {
            return;
        }
        if self.auto_commit.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        self.auto_commit = Some(self.commit_async());
    }

    /// When the coordinator forgot this member, or has not confirmed it for a whole
    /// session timeout (so it has probably expired it), its partitions may belong to
    /// another member already: stop fetching them, without committing, and rejoin.
    async fn drop_lost_partitions(&mut self) -> Result<()> {
        let forgotten = self.shared.take_reset();
        if forgotten {
            let (member_id, _) = self.shared.membership();
            tracing::warn!(group = %self.config.group_id, member_id, "the coordinator forgot this member; rejoining");
            self.shared.set("", -1);
        }
        let expired =
            !self.owned.is_empty() && self.shared.unconfirmed_for() > self.config.session_timeout;
        if expired {
            tracing::warn!(group = %self.config.group_id, "membership not confirmed within the session timeout; pausing its partitions and rejoining");
            self.shared.want_rejoin();
        }
        if (forgotten || expired) && !self.owned.is_empty() {
            let lost: Vec<TopicPartition> = self.owned.iter().cloned().collect();
            if let Some(l) = self.listener.as_mut() {
                l.on_revoked(&lost);
            }
            self.consumer.unassign().await?;
            self.owned.clear();
            self.stored.clear();
        }
        Ok(())
    }

    /// Joins (again) and applies the new assignment: revoke first, then add. `Ok(false)`
    /// when `deadline` came first (the join stays in flight for the next call).
    ///
    /// Cancellation safety: safe. The round counts as done only at the end, after the
    /// new partitions were positioned, with no await in between.
    async fn rejoin(&mut self, deadline: Instant) -> Result<bool> {
        let fresh = self.join.is_none();
        if fresh && self.config.auto_commit_interval.is_some() && !self.owned.is_empty() {
            let _ = self.commit().await;
        }
        for _ in 0..20 {
            let in_flight = match self.join.as_mut() {
                Some(j) => j,
                None => {
                    // A request for another round made during this one bumps the counter
                    // past `round`, so it is not lost.
                    let round = self.shared.rejoin_wanted();
                    self.join.insert(InFlightJoin {
                        round,
                        task: self.send_join(),
                    })
                }
            };
            let answer = match tokio::time::timeout_at(deadline.into(), &mut in_flight.task).await {
                Ok(answer) => answer,
                Err(_) => return Ok(false),
            };
            let round = in_flight.round;
            self.join = None;
            let r = answer.map_err(|_| Error::Closed)??;
            let (member_id, generation) = match ErrorCode::from_i32(r.error_code) {
                ErrorCode::None => (r.member_id, r.generation_id),
                ErrorCode::MemberIdRequired => {
                    // KIP-394: the first answer carries our id. Kept at once, so a close()
                    // while the second join is parked leaves the group with it.
                    self.shared.set(&r.member_id, -1);
                    continue;
                }
                ErrorCode::UnknownMemberId => {
                    self.shared.set("", -1);
                    continue;
                }
                ErrorCode::RebalanceInProgress | ErrorCode::IllegalGeneration => continue,
                code => return Err(group_error(code, "join group")),
            };
            self.shared.set(&member_id, generation);
            match self.sync(&member_id, generation).await? {
                Ok(parts) => {
                    self.apply(parts).await?;
                    self.rejoined_at = round;
                    self.last_commit = Instant::now();
                    return Ok(true);
                }
                Err(ErrorCode::UnknownMemberId) => self.shared.set("", -1),
                Err(ErrorCode::RebalanceInProgress) | Err(ErrorCode::IllegalGeneration) => {}
                Err(code) => return Err(group_error(code, "sync group")),
            }
        }
        Err(Error::Broker {
            code: ErrorCode::RebalanceInProgress,
            context: format!("joining group {}", self.config.group_id),
            message: "the group did not settle after 20 attempts".into(),
        })
    }

    /// Sends one JoinGroup from a task of its own, so its answer outlives the poll that
    /// sent it.
    fn send_join(&self) -> tokio::task::JoinHandle<Result<v1::JoinGroupResponse>> {
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
        let link = self.link.clone();
        tokio::spawn(async move { link.request(Lane::Join, req, wait, |r| r.error_code).await })
    }

    async fn sync(
        &self,
        member_id: &str,
        generation: i32,
    ) -> Result<std::result::Result<BTreeSet<TopicPartition>, ErrorCode>> {
        let req = v1::SyncGroupRequest {
            group_id: self.config.group_id.clone(),
            generation_id: generation,
            member_id: member_id.to_owned(),
            group_instance_id: self.config.instance_id.clone(),
            protocol_type: "consumer".into(),
            protocol_name: self.config.assignor.clone(),
            assignments: Vec::new(),
        };
        let r = self
            .link
            .request(Lane::Other, req, self.request_timeout(), |r| r.error_code)
            .await?;
        let code = ErrorCode::from_i32(r.error_code);
        if !code.is_ok() {
            return Ok(Err(code));
        }
        Ok(Ok(r
            .assigned_partitions
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| TopicPartition::new(t.topic.as_str(), *p))
            })
            .collect()))
    }

    /// Revokes what is gone and starts what is new at its committed offset.
    ///
    /// Every await (offset fetch, assign) comes before the first change, and none after:
    /// a cancelled or failed call changes nothing, so new partitions can never be left
    /// at the reset policy instead of their committed offsets.
    async fn apply(&mut self, new: BTreeSet<TopicPartition>) -> Result<()> {
        let revoked: Vec<TopicPartition> = self.owned.difference(&new).cloned().collect();
        let added: Vec<TopicPartition> = new.difference(&self.owned).cloned().collect();
        let committed = if added.is_empty() {
            Vec::new()
        } else {
            self.committed(&added).await?
        };
        if !revoked.is_empty() {
            if let Some(l) = self.listener.as_mut() {
                l.on_revoked(&revoked);
            }
        }
        let all: Vec<TopicPartition> = new.iter().cloned().collect();
        self.consumer.assign(&all).await?;
        self.stored.retain(|tp, _| new.contains(tp));
        self.owned = new;
        for (tp, offset) in committed {
            match (offset, self.reset) {
                (Some(o), _) => self.consumer.seek(&tp, o)?,
                (None, OffsetReset::Earliest) => {
                    self.consumer.seek_to_beginning(std::slice::from_ref(&tp))?
                }
                (None, _) => self.consumer.seek_to_end(std::slice::from_ref(&tp))?,
            }
        }
        if !added.is_empty() {
            if let Some(l) = self.listener.as_mut() {
                l.on_assigned(&added);
            }
        }
        Ok(())
    }

    fn request_timeout(&self) -> Duration {
        self.consumer.client().config().request_timeout
    }

    /// Commits the positions (next offsets after what `poll` returned) of every owned
    /// partition.
    ///
    /// Cancellation safety: safe to drop; the commit then may or may not have happened
    /// (committing the same positions again is harmless).
    pub async fn commit(&mut self) -> Result<()> {
        let offsets = self.to_commit();
        self.last_commit = Instant::now();
        self.commit_offsets(&offsets).await
    }

    /// What `commit` commits: positions, or the stored offsets (see
    /// [`GroupConfig::auto_offset_store`]), of owned partitions.
    fn to_commit(&self) -> Vec<(TopicPartition, i64)> {
        if self.config.auto_offset_store {
            self.owned
                .iter()
                .filter_map(|tp| self.consumer.position(tp).map(|o| (tp.clone(), o)))
                .collect()
        } else {
            self.stored
                .iter()
                .filter(|(tp, _)| self.owned.contains(*tp))
                .map(|(tp, o)| (tp.clone(), *o))
                .collect()
        }
    }

    /// Marks `record` processed: with `auto_offset_store = false` the next `commit()` or
    /// auto-commit commits past it (its offset + 1), and never past a record not marked.
    /// Kafka's `store_offset`. Records of partitions this member no longer owns are
    /// refused.
    pub fn store_offset(&mut self, record: &ConsumerRecord) -> Result<()> {
        let tp = record.topic_partition();
        if !self.owned.contains(&tp) {
            return Err(Error::Config(format!(
                "{tp} is not assigned to this member (any more); its new owner re-reads it"
            )));
        }
        let next = record.offset + 1;
        let e = self.stored.entry(tp).or_insert(next);
        *e = (*e).max(next);
        Ok(())
    }

    /// Commits the positions (or stored offsets) in the background; the handle yields the
    /// outcome.
    pub fn commit_async(&mut self) -> tokio::task::JoinHandle<Result<()>> {
        let offsets = self.to_commit();
        self.last_commit = Instant::now();
        let committer = self.committer.clone();
        tokio::spawn(async move { committer.commit_offsets(&offsets).await })
    }

    /// Commits exactly these offsets (each the next offset to read); see
    /// [`Committer::commit_offsets`].
    ///
    /// Cancellation safety: safe to drop; the commit then may or may not have happened.
    pub async fn commit_offsets<T: Clone + Into<TopicPartition>>(
        &self,
        offsets: &[(T, i64)],
    ) -> Result<()> {
        self.committer.commit_offsets(offsets).await
    }

    /// Commits `record` as processed: the group resumes after it (its offset + 1).
    ///
    /// Cancellation safety: safe to drop; the commit then may or may not have happened.
    pub async fn commit_record(&self, record: &ConsumerRecord) -> Result<()> {
        self.committer.commit_record(record).await
    }

    /// A handle that commits for this member while a [`GroupConsumer::stream`] borrows
    /// it, or from another task.
    ///
    /// ```no_run
    /// # async fn demo(mut consumer: weir_client::GroupConsumer) -> weir_client::Result<()> {
    /// use futures::StreamExt;
    /// let committer = consumer.committer();
    /// let mut records = consumer.stream();
    /// while let Some(record) = records.next().await {
    ///     let record = record?;
    ///     // ... process it, then:
    ///     committer.commit_record(&record).await?;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn committer(&self) -> Committer {
        self.committer.clone()
    }

    /// Committed offsets of `partitions` (`None`: nothing committed).
    ///
    /// Cancellation safety: safe (a read).
    pub async fn committed<T: Into<TopicPartition>>(
        &self,
        partitions: impl IntoIterator<Item = T>,
    ) -> Result<Vec<(TopicPartition, Option<i64>)>> {
        let partitions = super::collect_tps(partitions);
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
            .link
            .request(Lane::Other, req, self.request_timeout(), |r| r.error_code)
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
                out.push((TopicPartition::new(t.name.as_str(), p.partition_index), o));
            }
        }
        Ok(out)
    }

    /// Commits (if auto-commit is on) and leaves the group, so the partitions move at once.
    /// A static member (`instance_id` set) does not leave, as in Kafka: its partitions wait
    /// for the same instance to come back within the session timeout, and the others see no
    /// rebalance. Call [`GroupConsumer::leave`] to leave for good. Closing after a `poll`
    /// was cancelled while its join was parked still leaves, with the member id the first
    /// step of the join handed out.
    ///
    /// Cancellation safety: dropping it mid-way may leave the member in the group until
    /// its session times out.
    pub async fn close(mut self) -> Result<()> {
        if self.join.is_some() {
            // A join the broker may have completed already moved the generation: finish
            // it (briefly) so the final commit carries the current one.
            let deadline = Instant::now() + self.request_timeout();
            if let Err(e) = self.rejoin(deadline).await {
                tracing::debug!(error = %e, "rejoin before close failed");
            }
        }
        let committed = if self.config.auto_commit_interval.is_some() && !self.owned.is_empty() {
            self.commit().await
        } else {
            Ok(())
        };
        if self.config.instance_id.is_some() {
            self.heartbeat.abort();
        } else {
            self.leave().await?;
        }
        committed
    }

    /// [`GroupConsumer::close`] that gives up after `timeout` with [`Error::TimedOut`]
    /// (the member then leaves the group when its session times out).
    ///
    /// Cancellation safety: as [`GroupConsumer::close`].
    pub async fn close_timeout(self, timeout: Duration) -> Result<()> {
        tokio::time::timeout(timeout, self.close())
            .await
            .unwrap_or(Err(Error::TimedOut {
                operation: "close",
                ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            }))
    }

    /// Leaves the group without committing.
    ///
    /// Cancellation safety: dropping it mid-way may leave the member in the group until
    /// its session times out.
    pub async fn leave(&mut self) -> Result<()> {
        self.heartbeat.abort();
        if let Some(j) = self.join.take() {
            j.task.abort();
        }
        let (member_id, _) = self.shared.membership();
        if member_id.is_empty() {
            return Ok(());
        }
        let req = v1::LeaveGroupRequest {
            group_id: self.config.group_id.clone(),
            members: vec![v1::MemberIdentity {
                member_id,
                group_instance_id: self.config.instance_id.clone(),
                reason: "consumer closed".into(),
            }],
        };
        let r = self
            .link
            .request(Lane::Other, req, self.request_timeout(), |r| r.error_code)
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
        if let Some(j) = self.join.take() {
            j.task.abort();
        }
    }
}

fn group_error(code: ErrorCode, what: &str) -> Error {
    Error::Broker {
        code,
        context: what.to_owned(),
        message: String::new(),
    }
}

/// Compiles a topic pattern anchored at both ends (whole-name match, as Kafka does).
fn topic_pattern(pattern: &str) -> Result<regex::Regex> {
    regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
        Error::Config(format!(
            "invalid topic pattern {pattern:?}: {e}; use regex syntax, e.g. \"orders-.*\""
        ))
    })
}

fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

fn by_topic<'a>(tps: impl Iterator<Item = &'a TopicPartition>) -> Vec<v1::TopicPartitions> {
    let mut out: Vec<v1::TopicPartitions> = Vec::new();
    for tp in tps {
        match out.iter_mut().find(|t| t.topic == tp.topic) {
            Some(t) => t.partitions.push(tp.partition),
            None => out.push(v1::TopicPartitions {
                topic: tp.topic.clone(),
                partitions: vec![tp.partition],
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::topic_pattern;

    #[test]
    fn topic_patterns_match_whole_names() {
        let re = topic_pattern("orders-.*").unwrap_or_else(|e| panic!("{e}"));
        assert!(re.is_match("orders-eu"));
        assert!(!re.is_match("old-orders-eu"));
        let alt = topic_pattern("a|b").unwrap_or_else(|e| panic!("{e}"));
        assert!(alt.is_match("a") && alt.is_match("b") && !alt.is_match("ab"));
        let err = topic_pattern("orders-(").err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|m| m.contains("invalid topic pattern")),
            "{err:?}"
        );
    }
}
