//! Partition reassignment on [`Admin`] (`weir partition reassign`): move partitions to new
//! replica sets, cancel moves, and list the moves in progress.

use weir_protocol::native::v1 as n;
use weir_protocol::ErrorCode;

use crate::admin::Admin;
use crate::error::{Error, Result};

/// One partition to move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    /// Topic.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// The target replica set, preferred leader first.
    pub replicas: Vec<i32>,
}

/// A move the controller refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Topic.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Why.
    pub code: ErrorCode,
    /// The controller's explanation.
    pub message: String,
}

/// A move in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OngoingMove {
    /// Topic.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Every replica now: the target set first, then those leaving.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// Target replicas still catching up.
    pub adding: Vec<i32>,
    /// Replicas that leave when the move completes.
    pub removing: Vec<i32>,
    /// Current leader.
    pub leader: i32,
}

impl Admin {
    /// Starts `moves`; new replicas catch up, join the ISR, then the old ones are removed.
    /// `throttle` limits each added replica's fetching, in bytes/s, until its topic's moves
    /// complete. Returns the moves the controller refused (empty: all started).
    ///
    /// Cancellation safety: safe; dropping it changes nothing, but a request already sent
    /// may be applied.
    pub async fn reassign_partitions(
        &self,
        moves: &[Move],
        throttle: Option<u64>,
    ) -> Result<Vec<Refusal>> {
        let req = n::AlterPartitionReassignmentsRequest {
            topics: group_by_topic(moves.iter().map(|m| {
                (
                    m.topic.clone(),
                    n::ReassignPartition {
                        partition_index: m.partition,
                        replicas: m.replicas.clone(),
                        cancel: false,
                    },
                )
            })),
            throttle_bytes_per_sec: throttle.map_or(0, |t| i64::try_from(t).unwrap_or(i64::MAX)),
        };
        self.send_reassignments(req).await
    }

    /// Cancels the running moves of `partitions` (topic, index): each reverts to the
    /// replicas it started from. Returns the cancellations refused.
    ///
    /// Cancellation safety: safe; dropping it changes nothing, but a request already sent
    /// may be applied.
    pub async fn cancel_reassignments(&self, partitions: &[(String, i32)]) -> Result<Vec<Refusal>> {
        let req = n::AlterPartitionReassignmentsRequest {
            topics: group_by_topic(partitions.iter().map(|(t, p)| {
                (
                    t.clone(),
                    n::ReassignPartition {
                        partition_index: *p,
                        replicas: Vec::new(),
                        cancel: true,
                    },
                )
            })),
            throttle_bytes_per_sec: 0,
        };
        self.send_reassignments(req).await
    }

    async fn send_reassignments(
        &self,
        req: n::AlterPartitionReassignmentsRequest,
    ) -> Result<Vec<Refusal>> {
        let r = self.client().request_controller(req).await?;
        Error::check(
            r.error_code,
            || "reassign partitions".into(),
            &r.error_message,
        )?;
        let mut refused = Vec::new();
        for t in r.topics {
            for p in t.partitions {
                let code = ErrorCode::from_i32(p.error_code);
                if !code.is_ok() {
                    refused.push(Refusal {
                        topic: t.name.clone(),
                        partition: p.partition_index,
                        code,
                        message: p.error_message,
                    });
                }
            }
        }
        Ok(refused)
    }

    /// The moves in progress, of `topics` (all when empty), as the controller has them.
    ///
    /// Cancellation safety: safe; dropping it changes nothing.
    pub async fn list_reassignments(&self, topics: &[String]) -> Result<Vec<OngoingMove>> {
        let r = self
            .client()
            .request_controller(n::ListPartitionReassignmentsRequest {
                topics: topics.to_vec(),
            })
            .await?;
        Error::check(
            r.error_code,
            || "list reassignments".into(),
            &r.error_message,
        )?;
        Ok(r.reassignments
            .into_iter()
            .map(|m| OngoingMove {
                topic: m.topic,
                partition: m.partition_index,
                replicas: m.replicas,
                isr: m.isr,
                adding: m.adding_replicas,
                removing: m.removing_replicas,
                leader: m.leader,
            })
            .collect())
    }
}

fn group_by_topic(
    items: impl Iterator<Item = (String, n::ReassignPartition)>,
) -> Vec<n::ReassignTopic> {
    let mut topics: Vec<n::ReassignTopic> = Vec::new();
    for (topic, p) in items {
        match topics.iter_mut().find(|t| t.name == topic) {
            Some(t) => t.partitions.push(p),
            None => topics.push(n::ReassignTopic {
                name: topic,
                partitions: vec![p],
            }),
        }
    }
    topics
}
