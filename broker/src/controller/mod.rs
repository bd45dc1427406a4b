//! The controller: the one writer of metadata. Every topic, partition, config and
//! producer-id change is first appended (and fsynced) to the metadata log, then applied to
//! the image and to the live topic table. One async mutex serialises changes, so two
//! CreateTopics for the same name cannot both succeed.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use weir_protocol::ErrorCode;

use crate::applier::Applier;
use crate::config::ClusterSection;
use crate::group::records::OFFSETS_TOPIC;
use crate::metadata::{
    BrokerRecord, ClusterIdRecord, ConfigRecord, MetadataFileError, MetadataImage, MetadataRecord,
    PartitionRecord, Record, RemoveTopicRecord, TopicRecord, RESOURCE_TOPIC,
};
use crate::names::validate_topic_name;
use crate::partition::{blocking, PartitionError};
use crate::raft::state_machine::Applied;
use crate::topic_config::{with_overrides, TopicConfig};
use crate::topics::Topics;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub mod alter_partition;
mod fencing;
pub mod lease;
mod metadata_log;
pub mod placement;
mod producer_ids;
pub mod reassign;
mod reassignments;
pub mod rebalance;
mod startup;

pub use metadata_log::{send_heartbeat, MetadataLog, QUORUM_DIR};

use crate::clean_shutdown::{self, Taint};
use startup::{open_topics, remove_orphans};

/// Most partitions one topic may have (directories are created eagerly).
pub use crate::metadata::MAX_PARTITIONS;
/// Where the pre-quorum metadata log lived inside the data dir (migrated into the quorum
/// on the first start; see `metadata_log`). Cannot collide with a partition directory:
/// those always end in `-<digits>`.
pub const METADATA_LOG: &str = "meta/metadata.log";

/// A refused or failed admin operation: the code and a message for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminError {
    /// Protocol code.
    pub code: ErrorCode,
    /// Human-readable detail.
    pub message: String,
}

impl AdminError {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        AdminError {
            code,
            message: message.into(),
        }
    }
}

impl From<MetadataFileError> for AdminError {
    fn from(e: MetadataFileError) -> Self {
        tracing::error!(error = %e, "metadata log write failed");
        AdminError::new(ErrorCode::KafkaStorageError, e.to_string())
    }
}

impl From<PartitionError> for AdminError {
    fn from(e: PartitionError) -> Self {
        AdminError::new(crate::error::partition_error_code(&e), e.to_string())
    }
}

/// Startup failures.
#[derive(Debug, thiserror::Error)]
pub enum ControllerOpenError {
    /// The pre-quorum metadata log is unreadable.
    #[error(transparent)]
    Metadata(#[from] MetadataFileError),
    /// The metadata quorum could not start.
    #[error("metadata quorum: {0}")]
    Quorum(String),
    /// The clean-shutdown marker could not be read or removed.
    #[error(transparent)]
    Marker(#[from] clean_shutdown::MarkerError),
    /// A partition log could not be opened.
    #[error("cannot open partition {partition}: {source}")]
    Partition {
        /// "topic-index".
        partition: String,
        /// Storage error.
        source: crate::storage::Error,
    },
}

/// One voter of the metadata quorum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumVoter {
    /// Node id.
    pub id: i32,
    /// Controller address.
    pub address: String,
    /// Leader only: the highest index known replicated to it.
    pub match_index: Option<u64>,
    /// Leader only: how far its log trails the leader's.
    pub lag: Option<u64>,
}

/// The metadata quorum as one member sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumStatus {
    /// The leader (active controller), -1 while none is known.
    pub leader: i32,
    /// Current term.
    pub term: u64,
    /// Last index in this member's log.
    pub last_log_index: u64,
    /// Last index applied to this member's image.
    pub applied_index: u64,
    /// Every voter.
    pub voters: Vec<QuorumVoter>,
}

/// A topic to create.
#[derive(Debug, Clone)]
pub struct NewTopic {
    /// Name (validated here).
    pub name: String,
    /// -1 = broker default.
    pub partitions: i32,
    /// -1 = broker default (1 on a single node).
    pub replication_factor: i32,
    /// Kafka dotted-name overrides.
    pub configs: Vec<(String, String)>,
}

/// Defaults for what the controller creates.
#[derive(Debug, Clone, Copy)]
pub struct ControllerSettings {
    /// Partitions of a topic created with -1 (`topics.default_partitions`).
    pub default_partitions: i32,
    /// Replicas of a topic created with -1 (`topics.default_replication_factor`).
    pub default_replication_factor: i32,
    /// How long a change waits for this broker to open its replicas before answering.
    pub apply_timeout: Duration,
}

impl Default for ControllerSettings {
    fn default() -> Self {
        ControllerSettings {
            default_partitions: 1,
            default_replication_factor: 1,
            apply_timeout: Duration::from_secs(30),
        }
    }
}

/// How the membership loop runs.
#[derive(Debug, Clone, Copy)]
pub struct MembershipSettings {
    /// `cluster.broker_heartbeat_interval_ms`; also how often the controller decides.
    pub heartbeat_interval: Duration,
    /// `cluster.broker_session_timeout_ms`.
    pub session_timeout: Duration,
    /// Preferred-leader rebalance, when enabled.
    pub rebalance: Option<RebalanceSettings>,
    /// Partitions and replication factor of `__consumer_offsets`.
    pub offsets_topic: (i32, i32),
}

/// Preferred-leader rebalance settings.
#[derive(Debug, Clone, Copy)]
pub struct RebalanceSettings {
    /// How often to check.
    pub interval: Duration,
    /// Share of a broker's preferred partitions led by others that triggers a move back.
    pub threshold_percent: u32,
}

/// What a created topic looks like, for the CreateTopics answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedTopic {
    /// 16-byte id (empty for `validate_only`).
    pub id: Bytes,
    /// Partitions.
    pub partitions: i32,
    /// Replicas per partition.
    pub replication_factor: i32,
}

struct State {
    log: Option<MetadataLog>,
    image: MetadataImage,
    /// The applied index `image` is known to match (None: unknown, refresh it). Lets
    /// `lock_fresh` skip copying (or comparing) the whole image when nothing else changed.
    image_index: Option<u64>,
    next_producer_id: i64,
    producer_block_end: i64,
    /// transactional id → (producer id, epoch). In memory only until transactions land.
    transactional: HashMap<String, (i64, i16)>,
}

/// Owner of all metadata changes.
pub struct Controller {
    node_id: i32,
    data_dir: PathBuf,
    defaults: TopicConfig,
    settings: ControllerSettings,
    /// Several voters (not a single node).
    cluster: bool,
    topics: Topics,
    /// Opens and closes this broker's replicas as the image changes.
    applier: Arc<Applier>,
    /// Stops the applier (at close).
    applier_stop: CancellationToken,
    /// The applier's task, awaited at close so that no partition opens after it.
    applier_task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Whether a partition directory was left unclosed (no clean-shutdown marker then).
    taint: Arc<Taint>,
    /// The applied image, as the quorum publishes it.
    applied: watch::Receiver<Applied>,
    /// The quorum member (for who leads it).
    raft: crate::raft::Raft,
    /// Broker heartbeats heard while this broker leads the quorum.
    heartbeats: crate::raft::heartbeats::Heartbeats,
    /// How current this broker's image is known to be (renewed by its heartbeats).
    lease: lease::Lease,
    state: tokio::sync::Mutex<State>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("node_id", &self.node_id)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

impl Controller {
    /// Starts the metadata quorum member, opens every partition of the image it holds
    /// (recovering logs after a crash) and removes partition directories of topics the
    /// image says were deleted.
    pub async fn open(
        node_id: i32,
        data_dir: &Path,
        defaults: TopicConfig,
        settings: ControllerSettings,
        cluster: &ClusterSection,
    ) -> Result<Controller, ControllerOpenError> {
        let (log, image) = MetadataLog::open(data_dir, node_id, cluster).await?;
        let applied = log.subscribe();
        let index = applied.borrow().index;
        let raft = log.raft();
        let heartbeats = log.heartbeats();
        tracing::info!(topics = image.topics.len(), "metadata image loaded");
        let dir = data_dir.to_path_buf();
        let is_cluster = cluster.is_cluster();
        let (image, topics, defaults, taint) = tokio::task::spawn_blocking(move || {
            // A single node's high watermark is its log end; a cluster member's is what
            // it last knew the ISR had.
            let checkpoint = is_cluster.then(|| crate::hw_checkpoint::read(&dir));
            let shutdown = clean_shutdown::at_start(&dir)?;
            let topics = open_topics(
                &dir,
                &image,
                &defaults,
                node_id,
                startup::OPEN_THREADS,
                checkpoint.as_ref(),
                shutdown,
            )?;
            let taint = Arc::new(Taint::default());
            if !remove_orphans(&dir, &image, node_id) {
                taint.set("a partition directory not placed here could not be removed");
            }
            // Before the applier or any client can write: from here on a crash must make
            // every partition recover.
            clean_shutdown::remove(&dir)?;
            Ok::<_, ControllerOpenError>((image, topics, defaults, taint))
        })
        .await
        .map_err(|e| ControllerOpenError::Quorum(e.to_string()))??;
        let next = image.next_producer_id;
        let applier = Applier::new(
            node_id,
            data_dir.to_path_buf(),
            defaults.clone(),
            topics.clone(),
            index,
            is_cluster,
            taint.clone(),
        );
        let applier_stop = CancellationToken::new();
        let applier_task = tokio::spawn(applier.clone().run(applied.clone(), applier_stop.clone()));
        Ok(Controller {
            node_id,
            data_dir: data_dir.to_path_buf(),
            defaults,
            settings,
            cluster: cluster.is_cluster(),
            topics,
            applier,
            applier_stop,
            applier_task: std::sync::Mutex::new(Some(applier_task)),
            taint,
            applied,
            raft,
            heartbeats,
            lease: if is_cluster {
                lease::Lease::new(Duration::from_millis(cluster.broker_session_timeout_ms))
            } else {
                lease::Lease::forever()
            },
            state: tokio::sync::Mutex::new(State {
                log: Some(log),
                image,
                image_index: None,
                next_producer_id: next,
                producer_block_end: next,
                transactional: HashMap::new(),
            }),
        })
    }

    /// The applier that keeps this broker's partitions in line with the image.
    pub fn applier(&self) -> &Arc<Applier> {
        &self.applier
    }

    /// This broker's id.
    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// This broker's lease on its image (see `lease`).
    pub fn lease(&self) -> lease::Lease {
        self.lease.clone()
    }

    /// Follows the applied images.
    pub fn subscribe(&self) -> watch::Receiver<Applied> {
        self.applied.clone()
    }

    /// The metadata image as last applied (every broker has it, controller or not).
    pub fn image(&self) -> Arc<MetadataImage> {
        self.applied.borrow().image.clone()
    }

    /// The quorum as this member sees it (match indexes only on the leader).
    pub fn quorum_status(&self) -> QuorumStatus {
        // Clone and drop the borrow at once: holding it blocks openraft's core.
        let m = self.raft.metrics().borrow().clone();
        let replication = m.replication.clone().unwrap_or_default();
        let last = m.last_log_index.unwrap_or(0);
        let membership = m.membership_config.membership();
        let voters = membership
            .voter_ids()
            .map(|id| {
                let address = membership
                    .get_node(&id)
                    .map(|n| n.addr.clone())
                    .unwrap_or_default();
                let matched = replication.get(&id).map(|l| l.map_or(0, |l| l.index));
                QuorumVoter {
                    id: i32::try_from(id).unwrap_or(-1),
                    address,
                    match_index: matched,
                    lag: matched.map(|i| last.saturating_sub(i)),
                }
            })
            .collect();
        QuorumStatus {
            leader: m
                .current_leader
                .and_then(|l| i32::try_from(l).ok())
                .unwrap_or(-1),
            term: m.current_term,
            last_log_index: last,
            applied_index: m.last_applied.map_or(0, |l| l.index),
            voters,
        }
    }

    /// The active controller (the quorum's leader), -1 while none is known.
    pub fn controller_id(&self) -> i32 {
        let leader = self.raft.metrics().borrow().current_leader;
        leader.and_then(|l| i32::try_from(l).ok()).unwrap_or(-1)
    }

    /// Registers this broker's advertised address, and its Kafka listener's when it has
    /// one (forwarded to the controller when this broker is not it), under a new
    /// incarnation, which it returns (heartbeats carry it).
    pub async fn register_broker(
        &self,
        host: &str,
        port: i32,
        kafka: Option<(&str, i32)>,
    ) -> Result<i64, AdminError> {
        let incarnation = rand::random::<i64>().abs();
        let (kafka_host, kafka_port) = kafka.map_or((String::new(), 0), |(h, p)| (h.into(), p));
        let record = MetadataRecord {
            record: Some(Record::Broker(BrokerRecord {
                broker_id: self.node_id,
                host: host.to_string(),
                port,
                incarnation,
                kafka_host,
                kafka_port,
            })),
        };
        self.forward(vec![record]).await?;
        Ok(incarnation)
    }

    /// Writes `records` through the quorum's leader, whoever it is (registrations and
    /// proposals that need no controller-side checks).
    async fn forward(&self, records: Vec<MetadataRecord>) -> Result<(), AdminError> {
        let state = self.state.lock().await;
        let log = state
            .log
            .as_ref()
            .ok_or_else(|| AdminError::new(ErrorCode::KafkaStorageError, "shutting down"))?;
        log.forward(records).await
    }

    /// The cluster's id from the quorum. When the image has none yet (a new cluster, or a
    /// member that has not caught up), proposes `proposal` (or a random id): the first
    /// such record wins, so every member ends up with the same id. Waits (bounded) until
    /// this member's image has it.
    pub async fn settle_cluster_id(&self, proposal: Option<String>) -> Result<String, AdminError> {
        let mut applied = self.applied.clone();
        if let Some(id) = applied.borrow().image.cluster_id.clone() {
            return Ok(id);
        }
        let record = MetadataRecord {
            record: Some(Record::ClusterId(ClusterIdRecord {
                cluster_id: proposal.unwrap_or_else(crate::meta_properties::new_cluster_id),
            })),
        };
        self.forward(vec![record]).await?;
        let settled = tokio::time::timeout(
            metadata_log::CLUSTER_WAIT,
            applied.wait_for(|a| a.image.cluster_id.is_some()),
        )
        .await;
        match settled {
            Ok(Ok(a)) => Ok(a.image.cluster_id.clone().unwrap_or_default()),
            _ => Err(AdminError::new(
                ErrorCode::NotController,
                "the cluster id was not settled by the quorum in time",
            )),
        }
    }

    /// Cluster membership, until `shutdown`: heartbeats to the quorum's leader every
    /// `interval`, and, while this broker leads, fencing of silent brokers and leader
    /// election for their partitions (`fencing::decide`). On shutdown: a controlled
    /// shutdown, asking to be fenced and waiting (bounded) until the image says so, so its
    /// partitions get other leaders before it closes them.
    pub async fn run_membership(
        self: Arc<Self>,
        incarnation: i64,
        settings: MembershipSettings,
        shutdown: CancellationToken,
    ) {
        let (interval, session_timeout) = (settings.heartbeat_interval, settings.session_timeout);
        let me = u64::try_from(self.node_id).unwrap_or(u64::MAX);
        let timeout_ms = i64::try_from(session_timeout.as_millis()).unwrap_or(i64::MAX);
        let mut leader_since: Option<i64> = None;
        let mut last_rebalance_ms: Option<i64> = None;
        let mut registered: std::collections::HashSet<(i32, i64)> = Default::default();
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.cancelled() => break,
            }
            let sent = std::time::Instant::now();
            match send_heartbeat(
                &self.raft,
                &self.heartbeats,
                me,
                self.node_id,
                incarnation,
                false,
                session_timeout,
            )
            .await
            {
                Ok(leader_applied) => self.lease.renew(sent, leader_applied),
                Err(e) => tracing::debug!(error = %e, "broker heartbeat not delivered"),
            }
            let leading = self.controller_id() == self.node_id;
            if !leading {
                leader_since = None;
                continue;
            }
            let now = crate::clock::now_ms();
            let full_scan = leader_since.is_none();
            let since = *leader_since.get_or_insert(now);
            let Ok(mut state) = self.lock_fresh().await else {
                // Leadership moved meanwhile.
                leader_since = None;
                continue;
            };
            // A registration counts as a first heartbeat: a broker that registers after the
            // takeover grace is not fenced before it had a chance to beat.
            let mut beats = self.heartbeats.snapshot();
            for (id, b) in &state.image.brokers {
                let known = beats
                    .get(id)
                    .is_some_and(|x| x.incarnation == b.incarnation);
                if !known && registered.insert((*id, b.incarnation)) {
                    let first = crate::raft::heartbeats::Beat {
                        incarnation: b.incarnation,
                        at_ms: now,
                        shutting_down: false,
                    };
                    self.heartbeats.record(*id, first);
                    beats.insert(*id, first);
                }
            }
            if full_scan {
                // Moves the previous controller left ready but not completed.
                let done = reassignments::complete_ready(&mut state.image);
                if !done.is_empty() {
                    if let Err(e) = Self::append(&mut state, done).await {
                        tracing::warn!(error = %e.message, "could not complete reassignments");
                        state.image = (*self.applied.borrow().image).clone();
                    }
                }
            }
            let records = fencing::decide(&fencing::FencingInput {
                image: &state.image,
                beats: &beats,
                now_ms: now,
                session_timeout_ms: timeout_ms,
                leader_since_ms: since,
                me: self.node_id,
                full_scan,
            });
            if !records.is_empty() {
                tracing::info!(changes = records.len(), "fencing and leadership changes");
                for r in &records {
                    if let Some(Record::Partition(p)) = &r.record {
                        let before = state
                            .image
                            .topics
                            .get(&p.topic)
                            .and_then(|t| t.partitions.get(usize::try_from(p.partition).ok()?))
                            .map(|b| b.leader);
                        if before != Some(p.leader) {
                            crate::instruments::recorders::leader_election("fencing");
                        }
                    }
                }
                if let Err(e) = Self::append(&mut state, records).await {
                    tracing::warn!(error = %e.message, "could not write fencing changes");
                }
            }
            if let Some(r) = settings.rebalance {
                let interval_ms = i64::try_from(r.interval.as_millis()).unwrap_or(i64::MAX);
                let last = *last_rebalance_ms.get_or_insert(now);
                if now - last >= interval_ms {
                    last_rebalance_ms = Some(now);
                    let records = rebalance::decide(&state.image, r.threshold_percent);
                    if !records.is_empty() {
                        tracing::info!(moves = records.len(), "preferred leaders back");
                        for _ in &records {
                            crate::instruments::recorders::leader_election("preferred");
                        }
                        if let Err(e) = Self::append(&mut state, records).await {
                            tracing::warn!(error = %e.message, "could not write leader rebalance");
                        }
                    }
                }
            }
            // __consumer_offsets is placed once the brokers are there to hold it: when every
            // voter has registered, or a session timeout into this controller's term.
            let missing = !state.image.topics.contains_key(OFFSETS_TOPIC);
            let live = self.placeable(&state.image).len();
            drop(state);
            let voters = self.quorum_status().voters.len();
            if missing && (live >= voters || now - since > timeout_ms) {
                let (partitions, factor) = settings.offsets_topic;
                if let Err(e) = self.create_offsets_topic(partitions, factor).await {
                    tracing::warn!(error = %e.message, "could not create {OFFSETS_TOPIC}");
                }
            }
        }
        // Controlled shutdown. The controller itself is fenced by its successor instead (it
        // never fences itself while it leads).
        if self.controller_id() == self.node_id {
            return;
        }
        if let Err(e) = send_heartbeat(
            &self.raft,
            &self.heartbeats,
            me,
            self.node_id,
            incarnation,
            true,
            Duration::MAX,
        )
        .await
        {
            tracing::warn!(error = %e, "controlled shutdown: could not reach the controller");
            return;
        }
        let mut applied = self.applied.clone();
        let fenced = tokio::time::timeout(
            session_timeout,
            applied.wait_for(|a| a.image.brokers.get(&self.node_id).is_none_or(|b| b.fenced)),
        )
        .await
        .is_ok_and(|r| r.is_ok());
        tracing::info!(fenced, "controlled shutdown");
    }

    /// Takes the state lock with the image refreshed from the quorum, after making sure
    /// this broker leads it and has applied everything committed (a read index round): a
    /// broker that has just become the controller validates against everything the
    /// previous one wrote, and one that is not the controller refuses at once.
    async fn lock_fresh(&self) -> Result<tokio::sync::MutexGuard<'_, State>, AdminError> {
        let state = self.state.lock().await;
        self.raft.ensure_linearizable().await.map_err(|e| {
            AdminError::new(
                ErrorCode::NotController,
                format!("this broker is not the active controller: {e}"),
            )
        })?;
        let mut state = state;
        let (index, current) = {
            let a = self.applied.borrow();
            (a.index, a.image.clone())
        };
        if state.image_index != Some(index) {
            state.image = (*current).clone();
            state.image_index = Some(index);
        }
        // Another controller handed out producer ids past our block: never reuse them.
        if state.producer_block_end < state.image.next_producer_id {
            state.next_producer_id = state.image.next_producer_id;
            state.producer_block_end = state.image.next_producer_id;
        }
        Ok(state)
    }

    /// The live topic table.
    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    /// Broker-wide topic defaults.
    pub fn defaults(&self) -> &TopicConfig {
        &self.defaults
    }

    async fn append(state: &mut State, records: Vec<MetadataRecord>) -> Result<(), AdminError> {
        let Some(log) = &state.log else {
            return Err(AdminError::new(
                ErrorCode::KafkaStorageError,
                "the broker is shutting down",
            ));
        };
        // Until the write is known applied, the working image may not match the quorum's.
        state.image_index = None;
        let index = log.append(records.clone()).await?;
        for r in &records {
            state.image.apply(r);
        }
        // Only this controller writes image records, under this lock, and it started from
        // the image at the index it had: what lies between (blank and membership entries)
        // changes no image, so the working image is the quorum's at `index`.
        state.image_index = Some(index);
        Ok(())
    }

    /// Waits until this broker's own partitions match what has just been committed, so a
    /// single node answers CreateTopics with its logs open (other brokers open theirs as
    /// their images catch up; until then they answer with retriable errors, as Kafka's do).
    async fn await_applied(&self) {
        let index = self.applied.borrow().index;
        if !self
            .applier
            .caught_up(index, self.settings.apply_timeout)
            .await
        {
            tracing::warn!(
                index,
                "partitions not opened in time; they open in the background"
            );
        }
    }

    /// Brokers replicas may be placed on: registered and not fenced, sorted by id. Before
    /// this broker's own registration is applied (a single node's first start) it is the
    /// one.
    fn placeable(&self, image: &MetadataImage) -> Vec<i32> {
        let live: Vec<i32> = image
            .brokers
            .iter()
            .filter(|(_, b)| !b.fenced)
            .map(|(id, _)| *id)
            .collect();
        if live.is_empty() && !image.brokers.contains_key(&self.node_id) {
            return vec![self.node_id];
        }
        live
    }

    /// Replica lists for new partitions `range` of a topic, or INVALID_REPLICATION_FACTOR.
    fn place(
        &self,
        image: &MetadataImage,
        range: std::ops::Range<i32>,
        factor: i32,
        start: usize,
        shift: usize,
    ) -> Result<Vec<Vec<i32>>, AdminError> {
        placement::place(range, factor, &self.placeable(image), start, shift)
            .map_err(|e| AdminError::new(ErrorCode::InvalidReplicationFactor, e.to_string()))
    }

    /// Creates a topic (or, with `validate_only`, checks that it could be created).
    pub async fn create_topic(
        &self,
        req: NewTopic,
        validate_only: bool,
    ) -> Result<CreatedTopic, AdminError> {
        validate_topic_name(&req.name)
            .map_err(|e| AdminError::new(ErrorCode::InvalidTopicException, e.to_string()))?;
        let partitions = match req.partitions {
            -1 => self.settings.default_partitions,
            n if n <= 0 => {
                return Err(AdminError::new(
                    ErrorCode::InvalidPartitions,
                    format!("number of partitions must be positive, got {n}"),
                ))
            }
            n if n > MAX_PARTITIONS => {
                return Err(AdminError::new(
                    ErrorCode::InvalidPartitions,
                    format!("at most {MAX_PARTITIONS} partitions per topic, got {n}"),
                ))
            }
            n => n,
        };
        let factor = match req.replication_factor {
            -1 => self.settings.default_replication_factor,
            n => n,
        };
        let mut overrides = BTreeMap::new();
        for (k, v) in &req.configs {
            if overrides.insert(k.clone(), v.clone()).is_some() {
                return Err(AdminError::new(
                    ErrorCode::InvalidConfig,
                    format!("config {k} given twice"),
                ));
            }
        }
        with_overrides(&self.defaults, &overrides)
            .map_err(|e| AdminError::new(ErrorCode::InvalidConfig, e.to_string()))?;

        let mut state = self.lock_fresh().await?;
        if state.image.topics.contains_key(&req.name) {
            return Err(AdminError::new(
                ErrorCode::TopicAlreadyExists,
                format!("topic {} already exists", req.name),
            ));
        }
        // Kafka's rule: '.' and '_' collide in metric names, so "a.b" and "a_b" cannot both exist.
        let canon = req.name.replace('.', "_");
        if let Some(other) = state
            .image
            .topics
            .keys()
            .find(|n| n.replace('.', "_") == canon)
        {
            return Err(AdminError::new(
                ErrorCode::InvalidTopicException,
                format!("topic {} collides with existing topic {other}", req.name),
            ));
        }
        let n = self.placeable(&state.image).len().max(1);
        let replicas = self.place(
            &state.image,
            0..partitions,
            factor,
            rand::random_range(0..n),
            rand::random_range(0..n),
        )?;
        if validate_only {
            return Ok(CreatedTopic {
                id: Bytes::new(),
                partitions,
                replication_factor: factor,
            });
        }
        let id = Bytes::from(rand::random::<[u8; 16]>().to_vec());
        let mut records = vec![MetadataRecord {
            record: Some(Record::Topic(TopicRecord {
                name: req.name.clone(),
                topic_id: id.clone(),
                partition_count: partitions,
                configs: overrides.into_iter().collect(),
            })),
        }];
        records.extend(
            (0..partitions)
                .zip(replicas)
                .map(|(p, r)| partition_record(&req.name, &id, p, r)),
        );
        Self::append(&mut state, records).await?;
        drop(state);
        self.await_applied().await;
        tracing::info!(topic = %req.name, partitions, replication_factor = factor, "created topic");
        Ok(CreatedTopic {
            id,
            partitions,
            replication_factor: factor,
        })
    }

    /// Creates `__consumer_offsets` (compacted) with `factor` replicas, fewer when fewer
    /// brokers are live (Kafka refuses instead and retries; a group coordinator that is
    /// not there at all is worse than one with fewer replicas).
    pub async fn create_offsets_topic(
        &self,
        partitions: i32,
        factor: i32,
    ) -> Result<(), AdminError> {
        let live = i32::try_from(self.placeable(&self.image()).len()).unwrap_or(1);
        let created = self
            .create_topic(
                NewTopic {
                    name: OFFSETS_TOPIC.to_string(),
                    partitions,
                    replication_factor: factor.min(live).max(1),
                    configs: vec![("cleanup.policy".into(), "compact".into())],
                },
                false,
            )
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(e) if e.code == ErrorCode::TopicAlreadyExists => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Applies ISR changes proposed by partition leaders (AlterPartition), each validated
    /// against the current image; valid ones are written together. Returns per proposal
    /// its code and the partition as it stands afterwards.
    pub async fn alter_partitions(
        &self,
        req: weir_protocol::native::v1::AlterPartitionRequest,
    ) -> Result<weir_protocol::native::v1::AlterPartitionResponse, AdminError> {
        use weir_protocol::native::v1 as n;
        let mut state = self.lock_fresh().await?;
        let mut records = Vec::new();
        let mut results: Vec<(String, Vec<(i32, ErrorCode)>)> = Vec::new();
        for t in &req.topics {
            let mut items = Vec::new();
            for p in &t.partitions {
                let proposal = alter_partition::Proposal {
                    from: req.broker_id,
                    topic: &t.name,
                    partition: p.partition_index,
                    leader_epoch: p.leader_epoch,
                    partition_epoch: p.partition_epoch,
                    new_isr: &p.new_isr,
                };
                match alter_partition::validate(&state.image, &proposal) {
                    Ok(record) => {
                        let before = state
                            .image
                            .topics
                            .get(&t.name)
                            .and_then(|t| {
                                t.partitions.get(usize::try_from(p.partition_index).ok()?)
                            })
                            .map_or(0, |p| p.isr.len());
                        crate::instruments::recorders::isr_changed(if record.isr.len() < before {
                            "shrink"
                        } else {
                            "expand"
                        });
                        // Later proposals in this request see this one.
                        let r = MetadataRecord {
                            record: Some(Record::Partition(record)),
                        };
                        state.image.apply(&r);
                        records.push(r);
                        items.push((p.partition_index, ErrorCode::None));
                    }
                    Err(code) => items.push((p.partition_index, code)),
                }
            }
            results.push((t.name.clone(), items));
        }
        if !records.is_empty() {
            // A replica a reassignment added may just have joined: the move completes in
            // the same write.
            records.extend(reassignments::complete_ready(&mut state.image));
            tracing::info!(changes = records.len(), from = req.broker_id, "ISR changes");
            if let Err(e) = Self::append(&mut state, records).await {
                // Not written: take the image back from the quorum.
                state.image = (*self.applied.borrow().image).clone();
                return Err(e);
            }
        }
        let image = &state.image;
        let topics = results
            .into_iter()
            .map(|(name, items)| n::AlterPartitionTopicResult {
                partitions: items
                    .into_iter()
                    .map(|(index, code)| {
                        let now = image
                            .topics
                            .get(&name)
                            .and_then(|t| t.partitions.get(usize::try_from(index).ok()?));
                        n::AlterPartitionItemResult {
                            partition_index: index,
                            error_code: code.as_i32(),
                            leader_id: now.map_or(-1, |p| p.leader),
                            leader_epoch: now.map_or(-1, |p| p.leader_epoch),
                            isr: now.map(|p| p.isr.clone()).unwrap_or_default(),
                            partition_epoch: now.map_or(-1, |p| p.partition_epoch),
                        }
                    })
                    .collect(),
                name,
            })
            .collect();
        Ok(n::AlterPartitionResponse {
            error_code: 0,
            topics,
        })
    }

    /// Whether this broker is one voter among several.
    pub fn is_cluster(&self) -> bool {
        self.cluster
    }

    /// Deletes a topic; every broker's applier removes its data.
    pub async fn delete_topic(&self, name: &str) -> Result<(), AdminError> {
        let mut state = self.lock_fresh().await?;
        let Some(image) = state.image.topics.get(name) else {
            return Err(AdminError::new(
                ErrorCode::UnknownTopicOrPartition,
                format!("topic {name} does not exist"),
            ));
        };
        let record = MetadataRecord {
            record: Some(Record::RemoveTopic(RemoveTopicRecord {
                name: name.to_string(),
                topic_id: image.id.clone(),
            })),
        };
        Self::append(&mut state, vec![record]).await?;
        drop(state);
        self.await_applied().await;
        tracing::info!(topic = %name, "deleted topic");
        Ok(())
    }

    /// Raises a topic's partition count to `count`, placing the new partitions like the
    /// first ones (same replication factor).
    pub async fn create_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), AdminError> {
        let mut state = self.lock_fresh().await?;
        let Some(topic) = state.image.topics.get(name) else {
            return Err(AdminError::new(
                ErrorCode::UnknownTopicOrPartition,
                format!("topic {name} does not exist"),
            ));
        };
        let current = i32::try_from(topic.partitions.len()).unwrap_or(MAX_PARTITIONS);
        if count <= current {
            return Err(AdminError::new(
                ErrorCode::InvalidPartitions,
                format!(
                    "topic {name} has {current} partitions; the new count {count} must be larger"
                ),
            ));
        }
        if count > MAX_PARTITIONS {
            return Err(AdminError::new(
                ErrorCode::InvalidPartitions,
                format!("at most {MAX_PARTITIONS} partitions per topic, got {count}"),
            ));
        }
        let factor = topic
            .partitions
            .first()
            .map_or(1, |p| i32::try_from(p.replicas.len()).unwrap_or(1).max(1));
        let id = topic.id.clone();
        let n = self.placeable(&state.image).len().max(1);
        let replicas = self.place(
            &state.image,
            current..count,
            factor,
            rand::random_range(0..n),
            rand::random_range(0..n),
        )?;
        if validate_only {
            return Ok(());
        }
        let records = (current..count)
            .zip(replicas)
            .map(|(p, r)| partition_record(name, &id, p, r))
            .collect();
        Self::append(&mut state, records).await?;
        drop(state);
        self.await_applied().await;
        tracing::info!(topic = %name, from = current, to = count, "added partitions");
        Ok(())
    }

    /// Sets (`Some`) or resets (`None`) topic-level config keys.
    pub async fn alter_topic_configs(
        &self,
        name: &str,
        changes: Vec<(String, Option<String>)>,
        validate_only: bool,
    ) -> Result<(), AdminError> {
        let mut state = self.lock_fresh().await?;
        let Some(topic) = state.image.topics.get(name) else {
            return Err(AdminError::new(
                ErrorCode::UnknownTopicOrPartition,
                format!("topic {name} does not exist"),
            ));
        };
        let mut overrides = topic.configs.clone();
        for (k, v) in &changes {
            match v {
                Some(v) => {
                    overrides.insert(k.clone(), v.clone());
                }
                None => {
                    if crate::topic_config::get(&self.defaults, k).is_none() {
                        return Err(AdminError::new(
                            ErrorCode::InvalidConfig,
                            format!("config {k}: unknown topic config key"),
                        ));
                    }
                    overrides.remove(k);
                }
            }
        }
        with_overrides(&self.defaults, &overrides)
            .map_err(|e| AdminError::new(ErrorCode::InvalidConfig, e.to_string()))?;
        if validate_only {
            return Ok(());
        }
        let records = changes
            .into_iter()
            .map(|(k, v)| MetadataRecord {
                record: Some(Record::Config(ConfigRecord {
                    resource_type: RESOURCE_TOPIC,
                    resource_name: name.to_string(),
                    name: k,
                    value: v,
                })),
            })
            .collect();
        Self::append(&mut state, records).await?;
        drop(state);
        self.await_applied().await;
        Ok(())
    }

    /// Flushes and closes every partition log (graceful shutdown), then writes the data
    /// directory's clean-shutdown marker unless a partition was left unclosed.
    pub async fn close_all(&self) {
        if let Some(log) = self.state.lock().await.log.take() {
            log.close().await;
        }
        self.applier_stop.cancel();
        // An apply under way may still open partitions; they must be in the table below.
        let task = self.applier_task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            if task.await.is_err() {
                self.taint.set("the applier failed");
            }
        }
        let topics = self.topics.all();
        let taint = self.taint.clone();
        let dir = self.data_dir.clone();
        let _ = blocking(
            move || {
                for t in topics {
                    for p in t.hosted() {
                        if let Err(e) = p.close() {
                            tracing::error!(partition = %p.name(), error = %e, "close failed");
                            taint.set("a partition failed to close");
                        }
                    }
                }
                if !taint.is_set() {
                    if let Err(e) = clean_shutdown::write(&dir) {
                        tracing::error!(error = %e, "could not write the clean-shutdown marker");
                    }
                }
                Ok(())
            },
            "close logs",
        )
        .await;
    }
}

/// A new partition led by its first (preferred) replica, all replicas in sync.
fn partition_record(topic: &str, id: &Bytes, p: i32, replicas: Vec<i32>) -> MetadataRecord {
    MetadataRecord {
        record: Some(Record::Partition(PartitionRecord {
            topic: topic.to_string(),
            topic_id: id.clone(),
            partition: p,
            leader: replicas.first().copied().unwrap_or(-1),
            isr: replicas.clone(),
            replicas,
            leader_epoch: 0,
            partition_epoch: 0,
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
        })),
    }
}
