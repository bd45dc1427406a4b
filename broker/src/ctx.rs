//! What handlers may use: the topic table, the controller (for metadata changes) and a
//! few broker facts. Handlers get `&BrokerCtx`, never the socket.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use weir_protocol::ErrorCode;

use crate::controller::Controller;
use crate::coordinator::Coordinator;
use crate::topics::Topics;

/// Shared state of a running broker, as handlers see it.
#[derive(Debug)]
pub struct BrokerCtx {
    /// This broker's id.
    pub node_id: i32,
    /// Host clients should connect to (Metadata brokers list).
    pub advertised_host: String,
    /// Port clients should connect to.
    pub advertised_port: i32,
    /// Reported in Metadata.
    pub cluster_id: String,
    /// Writer of metadata changes.
    pub controller: Arc<Controller>,
    /// Live topics and partitions.
    pub topics: Topics,
    /// The consumer-group coordinator.
    pub groups: Coordinator,
    /// Cap on a Fetch's max_wait_ms.
    pub max_fetch_wait: Duration,
    /// Cap on a Fetch's max_bytes (bytes of records in one response).
    pub fetch_max_bytes: usize,
    /// Send fetched records that sit in the page cache from the segment files
    /// (`sendfile`), instead of copying them into the response (both listeners).
    pub fetch_zero_copy: bool,
    /// Create unknown topics named in Metadata requests that allow it.
    pub auto_create_topics: bool,
    /// Fires on graceful shutdown; long polls return early.
    pub shutdown: CancellationToken,
}

impl BrokerCtx {
    /// The open partition `topic`-`index` this broker leads, or the code a client should
    /// act on: a partition the image gives another leader (or none: fenced, offline) is
    /// NOT_LEADER_OR_FOLLOWER, even when its log is open here (a fenced broker leads
    /// nothing), and so is one this broker leads but has not opened yet (the applier is a
    /// moment behind the image); one nobody knows is UNKNOWN_TOPIC_OR_PARTITION.
    pub fn partition(
        &self,
        topic: &str,
        index: i32,
    ) -> Result<crate::partition::PartitionRef, ErrorCode> {
        let leader = self.controller.image().topics.get(topic).and_then(|t| {
            t.partitions
                .get(usize::try_from(index).ok()?)
                .map(|p| p.leader)
        });
        match (leader, self.topics.partition(topic, index)) {
            (Some(l), _) if l != self.node_id => Err(ErrorCode::NotLeaderOrFollower),
            (Some(_), Err(_)) => Err(ErrorCode::NotLeaderOrFollower),
            (_, found) => found,
        }
    }
}
