//! Cluster administration on [`Admin`]: the metadata quorum and the registered brokers
//! (`weir cluster describe`).

use weir_protocol::native::v1::DescribeQuorumRequest;

use crate::admin::Admin;
use crate::error::{Error, Result};

/// One voter of the metadata quorum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumVoter {
    /// Node id.
    pub id: i32,
    /// Controller address (`HOST:PORT` of its controller listener).
    pub address: String,
    /// Highest index known replicated to it (reported by the leader only).
    pub match_index: Option<u64>,
    /// Entries its log trails the leader's (reported by the leader only).
    pub lag: Option<u64>,
}

/// One registered broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterBroker {
    /// Node id.
    pub id: i32,
    /// Advertised `HOST:PORT`.
    pub address: String,
    /// Fenced by the controller (silent past its session timeout, or shut down).
    pub fenced: bool,
    /// Partitions it leads.
    pub partitions_led: i32,
}

/// The cluster as the active controller describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    /// Random id written at the first start of the (first) broker.
    pub cluster_id: String,
    /// The active controller (the quorum's leader); -1 while none is known.
    pub leader: i32,
    /// Raft term.
    pub term: u64,
    /// Last index in the answering broker's metadata log.
    pub last_log_index: u64,
    /// Last index it applied.
    pub commit_index: u64,
    /// The voters.
    pub voters: Vec<QuorumVoter>,
    /// The registered brokers.
    pub brokers: Vec<ClusterBroker>,
    /// CRC-32C of the answering broker's metadata image.
    pub image_digest: u32,
    /// The broker that answered.
    pub answered_by: i32,
}

impl Admin {
    /// Describes the metadata quorum and the registered brokers, asking the active
    /// controller (only it knows each voter's replication lag).
    ///
    /// Cancellation safety: safe; dropping it changes nothing.
    pub async fn describe_cluster(&self) -> Result<ClusterDescription> {
        let r = self
            .client()
            .request_controller(DescribeQuorumRequest {})
            .await?;
        Error::check(r.error_code, || "describe cluster".to_string(), "")?;
        Ok(ClusterDescription {
            cluster_id: r.cluster_id,
            leader: r.leader_id,
            term: r.term,
            last_log_index: r.last_log_index,
            commit_index: r.applied_index,
            voters: r
                .voters
                .into_iter()
                .map(|v| QuorumVoter {
                    id: v.id,
                    address: v.address,
                    match_index: v.match_index,
                    lag: v.lag,
                })
                .collect(),
            brokers: r
                .brokers
                .into_iter()
                .map(|b| ClusterBroker {
                    id: b.id,
                    address: format!("{}:{}", b.host, b.port),
                    fenced: b.fenced,
                    partitions_led: b.partitions_led,
                })
                .collect(),
            image_digest: r.image_digest,
            answered_by: r.node_id,
        })
    }
}
