//! The controller's metadata log, replicated by the metadata quorum. On a single node the
//! quorum has one voter (this broker) and no controller listener, so a single node and a
//! cluster write metadata the same way: propose a batch, return once it is committed
//! (fsynced by a majority; here, by this node) and applied.
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
use weir_protocol::ErrorCode;

use super::{AdminError, ControllerOpenError, METADATA_LOG};
use crate::metadata::{MetadataFile, MetadataImage, MetadataRecord};
use crate::raft::node::{QuorumConfig, QuorumNode};
use crate::raft::{MetadataBatch, NodeId};

/// The quorum's directory inside the data dir (under `meta/`, which no partition directory
/// can be named).
pub const QUORUM_DIR: &str = "meta/quorum";

/// How long a single-voter quorum may take to elect itself at start.
const ELECTION_WAIT: Duration = Duration::from_secs(30);

/// The metadata log: a quorum member.
pub struct MetadataLog {
    node: QuorumNode,
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
    /// Starts this node's quorum member (a quorum of one) and returns it with the current
    /// image, migrating a pre-quorum `metadata.log` first.
    pub async fn open(
        data_dir: &Path,
        node_id: i32,
    ) -> Result<(MetadataLog, MetadataImage), ControllerOpenError> {
        let id = NodeId::try_from(node_id)
            .map_err(|_| open_err(format!("server.node_id {node_id} is negative")))?;
        // One voter: its address is never dialled.
        let voters: BTreeMap<NodeId, String> = [(id, "127.0.0.1:0".to_string())].into();
        let config = QuorumConfig {
            // Nobody to wait for: elect quickly after a restart.
            election_timeout_ms: (150, 300),
            heartbeat_ms: 50,
            ..QuorumConfig::new(id, voters)
        };
        let node = QuorumNode::start(&data_dir.join(QUORUM_DIR), config, None)
            .await
            .map_err(open_err)?;
        node.raft
            .wait(Some(ELECTION_WAIT))
            .state(ServerState::Leader, "single voter elects itself")
            .await
            .map_err(open_err)?;
        // Everything committed before the restart is applied before we read the image.
        node.raft.ensure_linearizable().await.map_err(open_err)?;
        let log = MetadataLog { node };
        log.migrate_legacy(data_dir, node_id).await?;
        let image = log.image();
        Ok((log, image))
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
    pub async fn append(&self, records: Vec<MetadataRecord>) -> Result<(), AdminError> {
        match self.node.raft.client_write(MetadataBatch { records }).await {
            Ok(_) => Ok(()),
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
