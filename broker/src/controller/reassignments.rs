//! The controller's side of partition reassignment: AlterPartitionReassignments writes
//! the start records (`reassign::start`), completion happens when an ISR change brings the
//! last target replica in (`Controller::alter_partitions`) or when a new controller takes
//! over, and ListPartitionReassignments reads the image.

use std::collections::BTreeSet;

use weir_protocol::native::v1 as n;
use weir_protocol::ErrorCode;

use super::reassign::{self, Request};
use super::{AdminError, Controller};
use crate::metadata::{ConfigRecord, MetadataImage, MetadataRecord, Record, RESOURCE_TOPIC};
use crate::topic_config::THROTTLE_KEY;

impl Controller {
    /// Starts (or cancels) the requested moves; each partition is answered on its own.
    pub async fn reassign_partitions(
        &self,
        req: n::AlterPartitionReassignmentsRequest,
    ) -> Result<n::AlterPartitionReassignmentsResponse, AdminError> {
        let mut state = self.lock_fresh().await?;
        let mut records = Vec::new();
        let mut touched = BTreeSet::new();
        let mut topics = Vec::new();
        for t in &req.topics {
            let mut partitions = Vec::new();
            for p in &t.partitions {
                let request = if p.cancel {
                    Request::Cancel
                } else {
                    Request::MoveTo(&p.replicas)
                };
                let (code, message) =
                    match reassign::start(&state.image, &t.name, p.partition_index, request) {
                        Ok(record) => {
                            tracing::info!(
                                topic = %t.name,
                                partition = p.partition_index,
                                replicas = ?record.replicas,
                                adding = ?record.adding_replicas,
                                removing = ?record.removing_replicas,
                                "reassignment"
                            );
                            let r = MetadataRecord {
                                record: Some(Record::Partition(record)),
                            };
                            state.image.apply(&r);
                            records.push(r);
                            touched.insert(t.name.clone());
                            (ErrorCode::None, String::new())
                        }
                        Err(e) => (e.code, e.message),
                    };
                partitions.push(n::ReassignPartitionResult {
                    partition_index: p.partition_index,
                    error_code: code.as_i32(),
                    error_message: message,
                });
            }
            topics.push(n::ReassignTopicResult {
                name: t.name.clone(),
                partitions,
            });
        }
        if let Ok(rate) = u64::try_from(req.throttle_bytes_per_sec) {
            if rate > 0 {
                for name in &touched {
                    let r = throttle_record(name, Some(rate.to_string()));
                    state.image.apply(&r);
                    records.push(r);
                }
            }
        }
        let cleared = throttles_to_clear(&state.image, &touched);
        records.extend(cleared);
        if !records.is_empty() {
            if let Err(e) = Self::append(&mut state, records).await {
                state.image = (*self.applied.borrow().image).clone();
                return Err(e);
            }
        }
        drop(state);
        self.await_applied().await;
        Ok(n::AlterPartitionReassignmentsResponse {
            error_code: 0,
            error_message: String::new(),
            topics,
        })
    }

    /// The moves in progress, of `topics` (all when empty).
    pub fn list_reassignments(&self, topics: &[String]) -> n::ListPartitionReassignmentsResponse {
        let image = self.image();
        let mut reassignments = Vec::new();
        for (name, t) in &image.topics {
            if !topics.is_empty() && !topics.contains(name) {
                continue;
            }
            for (i, p) in t.partitions.iter().enumerate() {
                if !p.reassigning() {
                    continue;
                }
                reassignments.push(n::OngoingReassignment {
                    topic: name.clone(),
                    partition_index: i32::try_from(i).unwrap_or(i32::MAX),
                    replicas: p.replicas.clone(),
                    isr: p.isr.clone(),
                    adding_replicas: p.adding.clone(),
                    removing_replicas: p.removing.clone(),
                    leader: p.leader,
                });
            }
        }
        n::ListPartitionReassignmentsResponse {
            error_code: 0,
            error_message: String::new(),
            reassignments,
        }
    }
}

/// Records that complete the moves `image` allows to complete now and clear the throttle
/// of topics left with no move; applied to `image` as they are made.
pub(super) fn complete_ready(image: &mut MetadataImage) -> Vec<MetadataRecord> {
    let mut out = Vec::new();
    let mut touched = BTreeSet::new();
    for record in reassign::completions(image) {
        tracing::info!(
            topic = %record.topic,
            partition = record.partition,
            replicas = ?record.replicas,
            leader = record.leader,
            "reassignment complete"
        );
        touched.insert(record.topic.clone());
        let r = MetadataRecord {
            record: Some(Record::Partition(record)),
        };
        image.apply(&r);
        out.push(r);
    }
    let cleared = throttles_to_clear(image, &touched);
    for r in &cleared {
        image.apply(r);
    }
    out.extend(cleared);
    out
}

/// Throttle removals for the `topics` that have one and no running move.
fn throttles_to_clear(image: &MetadataImage, topics: &BTreeSet<String>) -> Vec<MetadataRecord> {
    topics
        .iter()
        .filter(|name| {
            image.topics.get(*name).is_some_and(|t| {
                t.configs.contains_key(THROTTLE_KEY)
                    && !t.partitions.iter().any(|p| p.reassigning())
            })
        })
        .map(|name| throttle_record(name, None))
        .collect()
}

fn throttle_record(topic: &str, value: Option<String>) -> MetadataRecord {
    MetadataRecord {
        record: Some(Record::Config(ConfigRecord {
            resource_type: RESOURCE_TOPIC,
            resource_name: topic.to_string(),
            name: THROTTLE_KEY.to_string(),
            value,
        })),
    }
}
