//! One member of the metadata quorum: its storage opened from a directory, its Raft
//! instance, and its controller listener serving peers.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use openraft::{BasicNode, Config, SnapshotPolicy};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::heartbeats::Heartbeats;
use super::log_store::{DiskError, LogStore};
use super::network::{serve, Network};
use super::state_machine::{Applied, StateMachine};
use super::{NodeId, Raft};

/// How a quorum member runs.
#[derive(Debug, Clone)]
pub struct QuorumConfig {
    /// This node.
    pub node_id: NodeId,
    /// Every voter and its controller address (Kafka's `controller.quorum.voters`).
    pub voters: BTreeMap<NodeId, String>,
    /// Leader heartbeat interval.
    pub heartbeat_ms: u64,
    /// Election timeout range; a follower that hears nothing for a random time in it runs.
    pub election_timeout_ms: (u64, u64),
    /// Take a snapshot (and purge the log below it) after this many applied entries.
    pub snapshot_after_entries: u64,
}

impl QuorumConfig {
    /// Defaults for a LAN quorum: heartbeat 100 ms, elections after 1–2 s (KRaft's range,
    /// with room for an fsync stall), a snapshot every 5,000 entries.
    pub fn new(node_id: NodeId, voters: BTreeMap<NodeId, String>) -> Self {
        QuorumConfig {
            node_id,
            voters,
            heartbeat_ms: 100,
            election_timeout_ms: (1_000, 2_000),
            snapshot_after_entries: 5_000,
        }
    }
}

/// Why a quorum member could not start.
#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    /// The voter list does not name this node.
    #[error("cluster.voters does not contain this node's id {0}")]
    NotAVoter(NodeId),
    /// Raft settings openraft refuses.
    #[error("raft config: {0}")]
    Config(#[from] openraft::ConfigError),
    /// The log, vote or snapshot could not be read.
    #[error(transparent)]
    Storage(#[from] DiskError),
    /// openraft failed to start or to initialize.
    #[error("raft: {0}")]
    Raft(String),
}

/// A running member.
pub struct QuorumNode {
    /// The Raft handle (writes go to `client_write` on the leader).
    pub raft: Raft,
    /// The state machine, to follow the applied image.
    state_machine: StateMachine,
    /// Where peers reach this node (`None` without a controller listener).
    pub addr: Option<SocketAddr>,
    /// Broker heartbeats received while this node leads.
    pub heartbeats: Heartbeats,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for QuorumNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuorumNode")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl QuorumNode {
    /// Opens the member's storage in `dir`, starts Raft and serves peers on `listener`. A
    /// pristine member (no vote, no log) proposes the static voter set; every voter does so
    /// with the same set, which openraft allows.
    pub async fn start(
        dir: &Path,
        cfg: QuorumConfig,
        listener: Option<TcpListener>,
    ) -> Result<QuorumNode, QuorumError> {
        if !cfg.voters.contains_key(&cfg.node_id) {
            return Err(QuorumError::NotAVoter(cfg.node_id));
        }
        let config = Config {
            cluster_name: "weir".into(),
            heartbeat_interval: cfg.heartbeat_ms,
            election_timeout_min: cfg.election_timeout_ms.0,
            election_timeout_max: cfg.election_timeout_ms.1,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(cfg.snapshot_after_entries),
            max_in_snapshot_log_to_keep: 0,
            ..Config::default()
        }
        .validate()?;
        let addr = match &listener {
            Some(l) => Some(
                l.local_addr()
                    .map_err(|e| QuorumError::Raft(format!("controller listener: {e}")))?,
            ),
            None => None,
        };
        let d = dir.to_path_buf();
        let default_leader = i32::try_from(cfg.node_id).unwrap_or(-1);
        let (log, sm) = tokio::task::spawn_blocking(move || {
            Ok::<_, DiskError>((LogStore::open(&d)?, StateMachine::open(&d, default_leader)?))
        })
        .await
        .map_err(|e| QuorumError::Raft(e.to_string()))??;
        let raft = Raft::new(cfg.node_id, Arc::new(config), Network, log, sm.clone())
            .await
            .map_err(|e| QuorumError::Raft(e.to_string()))?;
        let shutdown = CancellationToken::new();
        tokio::spawn(report_metrics(raft.clone()));
        tokio::spawn(report_digest(sm.subscribe()));
        let heartbeats = Heartbeats::default();
        if let Some(listener) = listener {
            tokio::spawn(serve(
                listener,
                raft.clone(),
                cfg.node_id,
                heartbeats.clone(),
                shutdown.clone(),
            ));
        }

        let pristine = {
            let m = raft.metrics().borrow().clone();
            m.vote.leader_id.term == 0 && m.last_log_index.is_none() && m.snapshot.is_none()
        };
        if pristine {
            let members: BTreeMap<NodeId, BasicNode> = cfg
                .voters
                .iter()
                .map(|(id, a)| (*id, BasicNode::new(a.clone())))
                .collect();
            if let Err(e) = raft.initialize(members).await {
                // NotAllowed: already initialized (by an earlier start); anything else is real.
                if !matches!(
                    e,
                    openraft::error::RaftError::APIError(
                        openraft::error::InitializeError::NotAllowed(_)
                    )
                ) {
                    return Err(QuorumError::Raft(e.to_string()));
                }
            }
        }
        Ok(QuorumNode {
            raft,
            state_machine: sm,
            addr,
            heartbeats,
            shutdown,
        })
    }

    /// Follows the applied metadata image.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Applied> {
        self.state_machine.subscribe()
    }

    /// Stops serving peers and shuts Raft down.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.raft.shutdown().await;
    }
}

/// Mirrors openraft's metrics into ours each time they change, until Raft shuts down.
///
/// Also the broker's fault handler for the metadata quorum: when Raft's core dies of a
/// storage error (the metadata log cannot be written: a full or failing disk) or a panic,
/// the process halts, as Kafka halts on a metadata log failure. Running on would serve a
/// frozen image: leading partitions the controller has moved away, never rejoining an ISR
/// (weir-chaos seeds 4 and 6, disk-full fault). A restart recovers the log from disk.
async fn report_metrics(raft: Raft) {
    use crate::instruments::names;
    let mut rx = raft.metrics();
    loop {
        // Clone and drop the borrow at once: holding it blocks openraft's core (#1238).
        let m = rx.borrow_and_update().clone();
        if let Err(fatal) = &m.running_state {
            if !matches!(fatal, openraft::error::Fatal::Stopped) {
                tracing::error!(error = %fatal, "the metadata quorum failed; halting");
                std::process::exit(1);
            }
        }
        let leader = m
            .current_leader
            .and_then(|l| i64::try_from(l).ok())
            .unwrap_or(-1);
        metrics::gauge!(names::QUORUM_LEADER).set(leader as f64);
        metrics::gauge!(names::QUORUM_TERM).set(m.current_term as f64);
        let last = m.last_log_index.unwrap_or(0);
        metrics::gauge!(names::QUORUM_LOG_END).set(last as f64);
        metrics::gauge!(names::QUORUM_APPLIED).set(m.last_applied.map_or(0, |l| l.index) as f64);
        metrics::gauge!(names::QUORUM_SNAPSHOT).set(m.snapshot.map_or(0, |l| l.index) as f64);
        metrics::gauge!(names::QUORUM_PURGED).set(m.purged.map_or(0, |l| l.index) as f64);
        if let Some(replication) = &m.replication {
            for (voter, matched) in replication {
                let lag = last.saturating_sub(matched.map_or(0, |l| l.index));
                metrics::gauge!(names::QUORUM_VOTER_LAG, "voter" => voter.to_string())
                    .set(lag as f64);
            }
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Publishes the image digest and the partition-state gauges after applied changes, until
/// Raft shuts down. Each report walks (and the digest re-encodes) the whole image, so a
/// burst of changes (thousands of CreateTopics) is reported at most every
/// `DIGEST_COALESCE`, on the image as it stands then, not once per change.
async fn report_digest(mut rx: tokio::sync::watch::Receiver<Applied>) {
    const DIGEST_COALESCE: std::time::Duration = std::time::Duration::from_millis(200);
    loop {
        use crate::instruments::names;
        let (index, image) = {
            let a = rx.borrow_and_update();
            (a.index, a.image.clone())
        };
        metrics::gauge!(names::IMAGE_DIGEST).set(f64::from(image.digest()));
        metrics::gauge!(names::IMAGE_DIGEST_INDEX).set(index as f64);
        let fenced = image.brokers.values().filter(|b| b.fenced).count();
        metrics::gauge!(names::FENCED_BROKERS).set(fenced as f64);
        let offline = image
            .topics
            .values()
            .flat_map(|t| &t.partitions)
            .filter(|p| p.leader < 0 || image.brokers.get(&p.leader).is_some_and(|b| b.fenced))
            .count();
        metrics::gauge!(names::OFFLINE_PARTITIONS).set(offline as f64);
        let under_replicated = image
            .topics
            .values()
            .flat_map(|t| &t.partitions)
            // A replica a move is adding is not missing yet: count target replicas only.
            .filter(|p| p.target_replicas().iter().any(|r| !p.isr.contains(r)))
            .count();
        metrics::gauge!(names::UNDER_REPLICATED).set(under_replicated as f64);
        let reassigning = image
            .topics
            .values()
            .flat_map(|t| &t.partitions)
            .filter(|p| p.reassigning())
            .count();
        metrics::gauge!(names::REASSIGNING_PARTITIONS).set(reassigning as f64);
        // Only the topic's own override is in the image; the broker default is 1.
        let under_min_isr = image
            .topics
            .values()
            .flat_map(|t| {
                let min = t
                    .configs
                    .get("min.insync.replicas")
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(1);
                t.partitions.iter().filter(move |p| p.isr.len() < min)
            })
            .count();
        metrics::gauge!(names::UNDER_MIN_ISR).set(under_min_isr as f64);
        if rx.changed().await.is_err() {
            return;
        }
        tokio::time::sleep(DIGEST_COALESCE).await;
    }
}
