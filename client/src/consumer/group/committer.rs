//! [`Committer`]: commits a group member's offsets. A cheap, cloneable handle apart from
//! the consumer, so a program can commit what it processed while a `stream()` borrows
//! the consumer, or from another task.

use std::sync::Arc;
use std::time::Duration;

use weir_protocol::native::v1;

use super::heartbeat::Shared;
use super::link::{link_failure, Lane, Link};
use crate::consumer::{ConsumerRecord, TopicPartition};
use crate::error::{Error, Result};

/// Commits offsets for one group member, with the member's current id and generation.
#[derive(Clone)]
pub struct Committer {
    pub(super) link: Arc<Link>,
    pub(super) shared: Arc<Shared>,
    pub(super) group_id: String,
    pub(super) instance_id: Option<String>,
    pub(super) timeout: Duration,
    pub(super) retry_backoff: Duration,
}

impl std::fmt::Debug for Committer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committer")
            .field("group_id", &self.group_id)
            .finish_non_exhaustive()
    }
}

impl Committer {
    /// Commits exactly these offsets (each the next offset to read). A lost connection or
    /// a moved coordinator is retried once against the coordinator found again (a commit
    /// is safe to repeat).
    ///
    /// Cancellation safety: safe to drop; the commit then may or may not have happened.
    pub async fn commit_offsets<T: Clone + Into<TopicPartition>>(
        &self,
        offsets: &[(T, i64)],
    ) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        let offsets: Vec<(TopicPartition, i64)> = offsets
            .iter()
            .map(|(tp, o)| (tp.clone().into(), *o))
            .collect();
        let req = self.request(&offsets);
        match send(&self.link, req.clone(), self.timeout).await {
            Err(e) if link_failure(&e) => {
                tokio::time::sleep(self.retry_backoff).await;
                send(&self.link, req, self.timeout).await
            }
            other => other,
        }
    }

    /// Commits `record` as processed: the group resumes after it (its offset + 1).
    ///
    /// Cancellation safety: safe to drop; the commit then may or may not have happened.
    pub async fn commit_record(&self, record: &ConsumerRecord) -> Result<()> {
        self.commit_offsets(&[(record.topic_partition(), record.offset + 1)])
            .await
    }

    pub(super) fn request(&self, offsets: &[(TopicPartition, i64)]) -> v1::OffsetCommitRequest {
        let (member_id, generation) = self.shared.membership();
        let mut topics: Vec<v1::OffsetCommitTopic> = Vec::new();
        for (TopicPartition { topic, partition }, offset) in offsets {
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
            group_id: self.group_id.clone(),
            generation_id: generation,
            member_id,
            group_instance_id: self.instance_id.clone(),
            retention_time_ms: -1,
            topics,
        }
    }
}

/// Sends one OffsetCommit; the first failing partition's code is the error.
pub(super) async fn send(
    link: &Link,
    req: v1::OffsetCommitRequest,
    timeout: Duration,
) -> Result<()> {
    let first_code = |r: &v1::OffsetCommitResponse| {
        r.topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .map(|p| p.error_code)
            .next()
            .unwrap_or(0)
    };
    let r = link.request(Lane::Other, req, timeout, first_code).await?;
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
