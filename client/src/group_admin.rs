//! Group administration on [`Admin`]: list, describe (with lag computed by the broker),
//! delete, and standalone offset commits for `weir group reset-offsets`.

use weir_protocol::native::v1;
use weir_protocol::ErrorCode;

use crate::admin::Admin;
use crate::consumer::TopicPartition;
use crate::error::{Error, Result};

/// A listed group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// Group id.
    pub group: String,
    /// "consumer".
    pub protocol_type: String,
    /// Kafka's state name.
    pub state: String,
}

/// One member of a described group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMemberDescription {
    /// Member id.
    pub member_id: String,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub host: String,
    /// Assigned (topic, partition) pairs.
    pub assignment: Vec<TopicPartition>,
}

/// Committed offset of one partition with the broker's lag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOffset {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Committed offset.
    pub committed_offset: i64,
    /// High watermark (absent if the partition is gone).
    pub log_end_offset: Option<i64>,
    /// Lag (absent if unknown).
    pub lag: Option<i64>,
    /// Lag in time: milliseconds since the first uncommitted record was written, 0 when
    /// caught up (absent if unknown).
    pub lag_ms: Option<i64>,
}

/// A described group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// Group id.
    pub group: String,
    /// State.
    pub state: String,
    /// Generation.
    pub generation: i32,
    /// Assignor.
    pub protocol: String,
    /// Members.
    pub members: Vec<GroupMemberDescription>,
    /// Committed offsets.
    pub offsets: Vec<GroupOffset>,
}

impl Admin {
    /// Every group of the cluster: each broker coordinates its own share, so every
    /// broker is asked (as Kafka's admin client does). Brokers that cannot be reached are
    /// skipped with a warning; an error only when none answered.
    ///
    /// Cancellation safety: safe; dropping it changes nothing.
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>> {
        let client = self.client();
        let brokers = client
            .request_any(v1::MetadataRequest {
                topics: Vec::new(),
                all_topics: false,
                allow_auto_topic_creation: false,
            })
            .await?
            .brokers;
        let mut addrs: Vec<String> = brokers
            .iter()
            .map(|b| format!("{}:{}", b.host, b.port))
            .collect();
        addrs.sort();
        addrs.dedup();
        let mut out: Vec<GroupListing> = Vec::new();
        let mut last_error = None;
        let mut answered = 0;
        for addr in &addrs {
            let r = match client
                .request_addr(addr, v1::ListGroupsRequest::default())
                .await
                .and_then(|r| Error::check(r.error_code, || "list groups".into(), "").map(|()| r))
            {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(broker = %addr, error = %e, "list groups: broker skipped");
                    last_error = Some(e);
                    continue;
                }
            };
            answered += 1;
            for g in r.groups {
                if !out.iter().any(|o| o.group == g.group_id) {
                    out.push(GroupListing {
                        group: g.group_id,
                        protocol_type: g.protocol_type,
                        state: g.group_state,
                    });
                }
            }
        }
        if answered == 0 {
            if let Some(e) = last_error {
                return Err(e);
            }
        }
        out.sort_by(|a, b| a.group.cmp(&b.group));
        Ok(out)
    }

    /// State, members and committed offsets with lag.
    ///
    /// Cancellation safety: safe; dropping it changes nothing.
    pub async fn describe_group(&self, group: &str) -> Result<GroupDescription> {
        let r = self
            .client()
            .request_coordinator(
                group,
                v1::DescribeGroupsRequest {
                    groups: vec![group.to_owned()],
                    include_offsets: true,
                },
                |r| r.groups.first().map_or(0, |g| g.error_code),
            )
            .await?;
        let g = r.groups.into_iter().next().ok_or_else(|| Error::Protocol {
            addr: "coordinator".into(),
            reason: "empty DescribeGroups response".into(),
        })?;
        Error::check(g.error_code, || format!("describe group {group}"), "")?;
        Ok(GroupDescription {
            group: g.group_id,
            state: g.group_state,
            generation: g.generation_id,
            protocol: g.protocol_data,
            members: g
                .members
                .into_iter()
                .map(|m| GroupMemberDescription {
                    member_id: m.member_id,
                    client_id: m.client_id,
                    host: m.client_host,
                    assignment: m
                        .assignment
                        .iter()
                        .flat_map(|t| {
                            t.partitions
                                .iter()
                                .map(|p| TopicPartition::new(t.topic.as_str(), *p))
                        })
                        .collect(),
                })
                .collect(),
            offsets: g
                .offsets
                .into_iter()
                .map(|o| GroupOffset {
                    topic: o.topic,
                    partition: o.partition,
                    committed_offset: o.committed_offset,
                    log_end_offset: o.log_end_offset,
                    lag: o.lag,
                    lag_ms: o.lag_ms,
                })
                .collect(),
        })
    }

    /// Deletes a group without members (and its committed offsets).
    ///
    /// Cancellation safety: safe to drop, but the broker may or may not have applied the change.
    pub async fn delete_group(&self, group: &str) -> Result<()> {
        let r = self
            .client()
            .request_coordinator(
                group,
                v1::DeleteGroupsRequest {
                    groups_names: vec![group.to_owned()],
                },
                |r| r.results.first().map_or(0, |x| x.error_code),
            )
            .await?;
        let code = r
            .results
            .first()
            .map_or(ErrorCode::Unknown.as_i32(), |x| x.error_code);
        Error::check(code, || format!("delete group {group}"), "")
    }

    /// Commits offsets for a group without members (refused by the broker otherwise).
    ///
    /// Cancellation safety: safe to drop, but the broker may or may not have applied the change.
    pub async fn commit_group_offsets<T: Clone + Into<TopicPartition>>(
        &self,
        group: &str,
        offsets: &[(T, i64)],
    ) -> Result<()> {
        let mut topics: Vec<v1::OffsetCommitTopic> = Vec::new();
        for (tp, offset) in offsets {
            let TopicPartition { topic, partition } = tp.clone().into();
            let p = v1::OffsetCommitPartition {
                partition_index: partition,
                committed_offset: *offset,
                committed_leader_epoch: None,
                committed_metadata: Some("weir group reset-offsets".into()),
            };
            match topics.iter_mut().find(|t| t.name == topic) {
                Some(t) => t.partitions.push(p),
                None => topics.push(v1::OffsetCommitTopic {
                    name: topic,
                    partitions: vec![p],
                }),
            }
        }
        let r = self
            .client()
            .request_coordinator(
                group,
                v1::OffsetCommitRequest {
                    group_id: group.to_owned(),
                    generation_id: -1,
                    member_id: String::new(),
                    group_instance_id: None,
                    retention_time_ms: -1,
                    topics,
                },
                |r| {
                    r.topics
                        .iter()
                        .flat_map(|t| &t.partitions)
                        .map(|p| p.error_code)
                        .find(|c| *c != 0)
                        .unwrap_or(0)
                },
            )
            .await?;
        for t in r.topics {
            for p in t.partitions {
                Error::check(
                    p.error_code,
                    || format!("commit {group} {}-{}", t.name, p.partition_index),
                    "",
                )?;
            }
        }
        Ok(())
    }

    /// Committed offsets of `topic` for `group` (partition → offset), committed ones only.
    ///
    /// Cancellation safety: safe; dropping it changes nothing.
    pub async fn group_offsets(&self, group: &str, topic: &str) -> Result<Vec<(i32, i64)>> {
        let r = self
            .client()
            .request_coordinator(
                group,
                v1::OffsetFetchRequest {
                    group_id: group.to_owned(),
                    all_topics: true,
                    ..Default::default()
                },
                |r| r.error_code,
            )
            .await?;
        Error::check(r.error_code, || format!("offsets of {group}"), "")?;
        Ok(r.topics
            .into_iter()
            .filter(|t| t.name == topic)
            .flat_map(|t| {
                t.partitions
                    .into_iter()
                    .map(|p| (p.partition_index, p.committed_offset))
            })
            .collect())
    }
}
