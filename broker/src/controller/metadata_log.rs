//! The controller's metadata log, replicated by the metadata quorum. On a single node the
//! quorum has one voter (this broker) and no controller listener, so a single node and a
//! cluster write metadata the same way: propose a batch, return once it is committed
//! (fsynced by a majority; on one node, by itself) and applied. Admin changes are made
//! only by the leader (the active controller; elsewhere they get NOT_CONTROLLER); what a
//! broker writes about itself (its registration) is forwarded to the leader.
//!
//! Upgrade: a data directory from before the quorum keeps its metadata in
//! `meta/metadata.log`. When the quorum has never held any metadata, those records are
//! proposed as its first batch, then the old file is renamed `metadata.log.migrated`
//! (kept, never read again). A crash in between is safe: on the next start the quorum is
//! no longer empty, so the file is only renamed.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use openraft::ServerState;
use tokio::net::TcpListener;
use tokio::sync::watch;
use weir_protocol::ErrorCode;

use super::{AdminError, ControllerOpenError, METADATA_LOG};
use crate::config::ClusterSection;
use crate::metadata::{MetadataFile, MetadataImage, MetadataRecord};
use crate::raft::network::forward;
use crate::raft::node::{QuorumConfig, QuorumNode};
use crate::raft::state_machine::Applied;
use crate::raft::voters::parse_voters;
use crate::raft::{MetadataBatch, NodeId};

/// The quorum's directory inside the data dir (under `meta/`, which no partition directory
/// can be named).
pub const QUORUM_DIR: &str = "meta/quorum";

/// How long a single-voter quorum may take to elect itself at start.
const ELECTION_WAIT: Duration = Duration::from_secs(30);

/// How long a cluster member waits for a quorum at start, or a forwarded write for a leader.
pub(crate) const CLUSTER_WAIT: Duration = Duration::from_secs(60);

/// Deadline of one forwarded write.
const FORWARD_TTL: Duration = Duration::from_secs(10);

/// The metadata log: a quorum member.
pub struct MetadataLog {
    node: QuorumNode,
    id: NodeId,
}

impl std::fmt::Debug for MetadataLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataLog").finish_non_exhaustive()
    }
}

fn open_err(e: impl std::fmt::Display) -> ControllerOpenError {
    ControllerOpenError::Quorum(e.to_string())
}

impl MetadataLog {
    /// Starts this node's quorum member and returns it with the current image: a quorum of
    /// one when `cluster.voters` is empty (migrating a pre-quorum `metadata.log` first),
    /// else a voter of the configured quorum, serving peers on `cluster.controller_listen`.
    pub async fn open(
        data_dir: &Path,
        node_id: i32,
        cluster: &ClusterSection,
    ) -> Result<(MetadataLog, MetadataImage), ControllerOpenError> {
        let id = NodeId::try_from(node_id)
            .map_err(|_| open_err(format!("server.node_id {node_id} is negative")))?;
        let dir = data_dir.join(QUORUM_DIR);
        let log = if cluster.is_cluster() {
            let voters = parse_voters(&cluster.voters, id).map_err(open_err)?;
            let listener = TcpListener::bind(&cluster.controller_listen)
                .await
                .map_err(|e| {
                    open_err(format!(
                        "cluster.controller_listen {}: {e}",
                        cluster.controller_listen
                    ))
                })?;
            let config = QuorumConfig {
                election_timeout_ms: (
                    cluster.election_timeout_min_ms,
                    cluster.election_timeout_max_ms,
                ),
                heartbeat_ms: cluster.heartbeat_interval_ms,
                snapshot_after_entries: cluster.metadata_snapshot_after_entries,
                ..QuorumConfig::new(id, voters)
            };
            let node = QuorumNode::start(&dir, config, Some(listener))
                .await
                .map_err(open_err)?;
            let log = MetadataLog { node, id };
            log.wait_caught_up().await?;
            log
        } else {
            // One voter: its address is never dialled.
            let voters: BTreeMap<NodeId, String> = [(id, "127.0.0.1:0".to_string())].into();
            let config = QuorumConfig {
                // Nobody to wait for: elect quickly after a restart.
                election_timeout_ms: (150, 300),
                heartbeat_ms: 50,
                snapshot_after_entries: cluster.metadata_snapshot_after_entries,
                ..QuorumConfig::new(id, voters)
            };
            let node = QuorumNode::start(&dir, config, None)
                .await
                .map_err(open_err)?;
            node.raft
                .wait(Some(ELECTION_WAIT))
                .state(ServerState::Leader, "single voter elects itself")
                .await
                .map_err(open_err)?;
            // Everything committed before the restart is applied before we read the image.
            node.raft.ensure_linearizable().await.map_err(open_err)?;
            let log = MetadataLog { node, id };
            log.migrate_legacy(data_dir, node_id).await?;
            log
        };
        let image = log.image();
        Ok((log, image))
    }

    /// Waits (bounded) until a leader is known, this member has applied what it holds, and
    /// then what the leader had applied when asked: the image it starts from is neither
    /// older than what it acknowledged before nor than what the cluster decided while it
    /// was away.
    async fn wait_caught_up(&self) -> Result<(), ControllerOpenError> {
        let deadline = tokio::time::Instant::now() + CLUSTER_WAIT;
        let mut rx = self.node.raft.metrics();
        loop {
            // Clone and drop the borrow at once: holding it blocks openraft's core.
            let m = rx.borrow_and_update().clone();
            let applied = m.last_applied.map_or(0, |l| l.index);
            if m.current_leader.is_some() && applied >= m.last_log_index.unwrap_or(0) {
                break;
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                return Err(open_err(format!(
                    "no quorum within {CLUSTER_WAIT:?}: are the other voters in cluster.voters running?"
                )));
            }
        }
        // A leader is known, but what this member holds can be far behind it (a restart
        // after a kill -9 or a partition): catch up to what the leader had applied when
        // asked, so the image this broker starts serving from (leaders, the groups it
        // coordinates) is not one the cluster has already left behind.
        let target = loop {
            match leader_applied_index(&self.node.raft, self.id).await {
                Ok(index) => break index,
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    tracing::warn!(error = %e, "metadata: could not ask the quorum leader how far it is; starting from what this member holds");
                    return Ok(());
                }
                Err(e) => {
                    tracing::debug!(error = %e, "metadata: asking the quorum leader how far it is");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        loop {
            let applied = rx.borrow_and_update().last_applied.map_or(0, |l| l.index);
            if applied >= target {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                return Err(open_err(format!(
                    "metadata: applied {applied} within {CLUSTER_WAIT:?}, the quorum leader had {target}"
                )));
            }
        }
    }

    /// Whether this member leads the quorum (is the active controller).
    pub fn is_leader(&self) -> bool {
        self.leader() == Some(self.id)
    }

    /// The quorum's leader as this member knows it.
    pub fn leader(&self) -> Option<NodeId> {
        self.node.raft.metrics().borrow().current_leader
    }

    /// Heartbeats heard while this member leads.
    pub fn heartbeats(&self) -> crate::raft::heartbeats::Heartbeats {
        self.node.heartbeats.clone()
    }

    /// The Raft handle (metrics, leader).
    pub fn raft(&self) -> crate::raft::Raft {
        self.node.raft.clone()
    }

    /// Follows the applied image.
    pub fn subscribe(&self) -> watch::Receiver<Applied> {
        self.node.subscribe()
    }

    /// Proposes `records` through the leader, wherever it is: for writes any broker makes
    /// about itself (its registration). Retries (bounded) while no leader is known.
    pub async fn forward(&self, records: Vec<MetadataRecord>) -> Result<(), AdminError> {
        let batch = MetadataBatch { records };
        let deadline = tokio::time::Instant::now() + CLUSTER_WAIT;
        loop {
            let err = match self.node.raft.client_write(batch.clone()).await {
                Ok(_) => return Ok(()),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                    match (f.leader_id, f.leader_node) {
                        (Some(leader), Some(node)) => {
                            match forward(leader, &node.addr, batch.clone(), FORWARD_TTL).await {
                                Ok(_) => return Ok(()),
                                Err(e) => e.to_string(),
                            }
                        }
                        _ => "no leader known".to_string(),
                    }
                }
                Err(e) => e.to_string(),
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(AdminError::new(
                    ErrorCode::NotController,
                    format!("metadata write not accepted by the quorum: {err}"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The applied image.
    pub fn image(&self) -> MetadataImage {
        (*self.node.subscribe().borrow().image).clone()
    }

    async fn migrate_legacy(
        &self,
        data_dir: &Path,
        node_id: i32,
    ) -> Result<(), ControllerOpenError> {
        let legacy = data_dir.join(METADATA_LOG);
        if !legacy.exists() {
            return Ok(());
        }
        // The coordinator creates __consumer_offsets on every start, so a quorum that ever
        // served has a topic: empty means nothing was ever written (or migrated) here.
        let image = self.image();
        if image.topics.is_empty() && image == MetadataImage::new(node_id) {
            let path = legacy.clone();
            let (_, records) = tokio::task::spawn_blocking(move || MetadataFile::open(&path))
                .await
                .map_err(open_err)??;
            tracing::info!(
                records = records.len(),
                "migrating {} into the metadata quorum",
                legacy.display()
            );
            self.append(records)
                .await
                .map_err(|e| open_err(e.message))?;
        }
        let done = legacy.with_extension("log.migrated");
        std::fs::rename(&legacy, &done).map_err(open_err)?;
        Ok(())
    }

    /// Proposes `records` as one batch; returns once committed and applied.
    /// Appends `records` as one entry; returns its log index once it is applied here.
    pub async fn append(&self, records: Vec<MetadataRecord>) -> Result<u64, AdminError> {
        match self.node.raft.client_write(MetadataBatch { records }).await {
            Ok(r) => Ok(r.log_id.index),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => Err(AdminError::new(
                ErrorCode::NotController,
                format!(
                    "this broker is not the controller (leader: {:?})",
                    f.leader_id
                ),
            )),
            Err(e) => {
                tracing::error!(error = %e, "metadata write failed");
                Err(AdminError::new(
                    ErrorCode::KafkaStorageError,
                    format!("metadata write failed: {e}"),
                ))
            }
        }
    }

    /// Shuts the quorum member down.
    pub async fn close(self) {
        self.node.stop().await;
    }
}

/// Tells the quorum's leader that `broker` is alive (or, `shutting_down`, about to stop);
/// returns the metadata index the leader had applied. When `me` leads, the beat is
/// recorded directly, and it counts only if a quorum acknowledged this leader within
/// `session` (an isolated leader does not know it has been replaced).
pub async fn send_heartbeat(
    raft: &crate::raft::Raft,
    beats: &crate::raft::heartbeats::Heartbeats,
    me: NodeId,
    broker: i32,
    incarnation: i64,
    shutting_down: bool,
    session: Duration,
) -> Result<u64, String> {
    let beat = weir_protocol::native::raft::BrokerHeartbeatRequest {
        broker_id: broker,
        incarnation,
        shutting_down,
        probe: false,
    };
    // A beat later than the session is worthless, and waiting longer on a leader that
    // stopped answering (paused, cut off) holds up the caller's loop, which fences
    // silent brokers once this broker leads (weir-chaos: with the controller paused, its
    // successor fenced nobody until the forward to the old one gave up, 10 s later).
    let index = to_leader(raft, beats, me, beat, session.min(FORWARD_TTL)).await?;
    // Clone and drop the borrow at once: holding it blocks openraft's core.
    let m = raft.metrics().borrow().clone();
    if m.current_leader == Some(me) {
        let acked = m.millis_since_quorum_ack.map(Duration::from_millis);
        if acked.is_none_or(|a| a >= session) {
            return Err("no quorum acknowledged this leader within the session".into());
        }
    }
    Ok(index)
}

/// The metadata index the quorum's leader has applied, asked without counting as a
/// heartbeat.
pub async fn leader_applied_index(raft: &crate::raft::Raft, me: NodeId) -> Result<u64, String> {
    let probe = weir_protocol::native::raft::BrokerHeartbeatRequest {
        probe: true,
        ..Default::default()
    };
    to_leader(raft, &Default::default(), me, probe, FORWARD_TTL).await
}

/// Delivers `beat` to the quorum's leader (recorded directly when `me` leads, unless a
/// probe); returns the leader's applied index.
async fn to_leader(
    raft: &crate::raft::Raft,
    beats: &crate::raft::heartbeats::Heartbeats,
    me: NodeId,
    beat: weir_protocol::native::raft::BrokerHeartbeatRequest,
    ttl: Duration,
) -> Result<u64, String> {
    // Clone and drop the borrow at once: holding it blocks openraft's core.
    let m = raft.metrics().borrow().clone();
    let Some(leader) = m.current_leader else {
        return Err("no quorum leader known".into());
    };
    if leader == me && beat.probe {
        // A member restarted after a kill -9 can believe it still leads the term it
        // crashed in; only a quorum's confirmation makes its own index the answer (a stale
        // leader fails here, steps down, and the caller asks again).
        tokio::time::timeout(ttl, raft.ensure_linearizable())
            .await
            .map_err(|_| "leadership not confirmed in time".to_string())?
            .map_err(|e| e.to_string())?;
        return Ok(raft.metrics().borrow().last_applied.map_or(0, |l| l.index));
    }
    if leader == me {
        if !beat.probe {
            beats.record(
                beat.broker_id,
                crate::raft::heartbeats::Beat {
                    incarnation: beat.incarnation,
                    at_ms: crate::clock::now_ms(),
                    shutting_down: beat.shutting_down,
                },
            );
        }
        return Ok(m.last_applied.map_or(0, |l| l.index));
    }
    let addr = m
        .membership_config
        .membership()
        .get_node(&leader)
        .map(|n| n.addr.clone())
        .ok_or("the leader has no address")?;
    crate::raft::network::heartbeat(leader, &addr, beat, ttl)
        .await
        .map_err(|e| e.to_string())
}
