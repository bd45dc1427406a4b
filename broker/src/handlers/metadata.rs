//! Metadata (3): brokers, topics, partitions with leader, replicas, ISR and leader epoch,
//! plus each partition's log offsets and size (for `topic describe`).

use std::sync::Arc;

use weir_protocol::native::v1::{
    BrokerMetadata, MetadataRequest, MetadataResponse, PartitionMetadata, TopicMetadata,
};
use weir_protocol::ErrorCode;

use crate::controller::NewTopic;
use crate::ctx::BrokerCtx;
use crate::metadata::{MetadataImage, TopicImage};
use crate::names::{is_internal_topic, validate_topic_name};
use crate::partition::{blocking, PartitionRef};
use crate::topics::TopicState;

/// Describes the requested topics (all, none, or a list). Placement (leader, replicas, ISR,
/// epochs) and the broker list come from the metadata image, which every broker holds;
/// log offsets and sizes from the partitions this broker has open.
pub async fn handle(ctx: &BrokerCtx, req: MetadataRequest) -> MetadataResponse {
    let image = ctx.controller.image();
    let mut found = Vec::new();
    if req.all_topics {
        found.extend(ctx.topics.all().into_iter().map(Ok));
        // Topics this broker holds no partition of (led elsewhere in a cluster).
        for (name, t) in &image.topics {
            if ctx.topics.get(name).is_none() {
                found.push(Err(from_image(name, t)));
            }
        }
    } else {
        for name in req.topics {
            found.push(lookup(ctx, name, req.allow_auto_topic_creation).await);
        }
    }
    let stats = log_stats(&found).await;
    let topics = found
        .into_iter()
        .zip(stats)
        .map(|(t, stats)| match t {
            Ok(t) => describe(ctx, &image, &t, &stats),
            Err(entry) => entry,
        })
        .collect();
    // Fenced brokers lead nothing and are not offered to clients (as Kafka does).
    let mut brokers: Vec<BrokerMetadata> = image
        .brokers
        .iter()
        .filter(|(_, b)| !b.fenced)
        .map(|(id, b)| BrokerMetadata {
            node_id: *id,
            host: b.host.clone(),
            port: b.port,
            rack: None,
        })
        .collect();
    // Before its registration is applied a broker still names itself.
    if !image.brokers.contains_key(&ctx.node_id) {
        brokers.push(BrokerMetadata {
            node_id: ctx.node_id,
            host: ctx.advertised_host.clone(),
            port: ctx.advertised_port,
            rack: None,
        });
    }
    MetadataResponse {
        brokers,
        cluster_id: ctx.cluster_id.clone(),
        controller_id: ctx.controller.controller_id(),
        topics,
        throttle_time_ms: 0,
    }
}

/// A topic this broker has open, or the finished entry that replaces it (an error, or a
/// topic known only from the image).
type Found = Result<Arc<TopicState>, TopicMetadata>;

/// A partition log's offsets and size at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LogStats {
    start: i64,
    end: i64,
    size: u64,
}

/// Stats of every partition of the found topics (`None` for a closed log), read in one
/// blocking section: the log lock can be held across an fsync, so it is never taken on
/// an async worker. Topics that were not found get no entries.
async fn log_stats(found: &[Found]) -> Vec<Vec<Option<LogStats>>> {
    let parts: Vec<Vec<PartitionRef>> = found
        .iter()
        .map(|t| {
            t.as_ref()
                .map_or_else(|_| Vec::new(), |t| t.partitions.clone())
        })
        .collect();
    let empty: Vec<Vec<Option<LogStats>>> = parts.iter().map(|p| vec![None; p.len()]).collect();
    if parts.iter().all(Vec::is_empty) {
        return empty;
    }
    let read = move || {
        Ok(parts
            .iter()
            .map(|topic| topic.iter().map(read_stats).collect())
            .collect())
    };
    blocking(read, "metadata log stats").await.unwrap_or(empty)
}

fn read_stats(p: &PartitionRef) -> Option<LogStats> {
    p.with_log(|log| {
        Ok(LogStats {
            start: log.log_start_offset(),
            end: log.log_end_offset(),
            size: log.size_bytes(),
        })
    })
    .ok()
}

/// The topic `name` (created first if allowed), or its error entry.
async fn lookup(ctx: &BrokerCtx, name: String, auto_create: bool) -> Found {
    if let Err(e) = validate_topic_name(&name) {
        tracing::debug!(error = %e, "metadata for invalid topic name");
        return Err(error_topic(name, ErrorCode::InvalidTopicException));
    }
    if let Some(t) = ctx.topics.get(&name) {
        return Ok(t);
    }
    if let Some(t) = ctx.controller.image().topics.get(&name) {
        return Err(from_image(&name, t));
    }
    // Internal topics are created by their owners with their own settings, never as a
    // plain topic on first mention.
    if auto_create && ctx.auto_create_topics && !is_internal_topic(&name) {
        let new = NewTopic {
            name: name.clone(),
            partitions: -1,
            replication_factor: -1,
            configs: Vec::new(),
        };
        match ctx.controller.create_topic(new, false).await {
            Ok(t) => return Ok(t),
            // Another request created it meanwhile.
            Err(e) if e.code == ErrorCode::TopicAlreadyExists => {
                if let Some(t) = ctx.topics.get(&name) {
                    return Ok(t);
                }
            }
            Err(e) => return Err(error_topic(name, e.code)),
        }
    }
    Err(error_topic(name, ErrorCode::UnknownTopicOrPartition))
}

fn error_topic(name: String, code: ErrorCode) -> TopicMetadata {
    TopicMetadata {
        error_code: code.as_i32(),
        name,
        ..Default::default()
    }
}

/// A topic as the image places it, with no log figures (this broker holds none of it).
fn from_image(name: &str, t: &TopicImage) -> TopicMetadata {
    TopicMetadata {
        error_code: 0,
        name: name.to_string(),
        topic_id: t.id.clone(),
        is_internal: name.starts_with("__"),
        partitions: t
            .partitions
            .iter()
            .enumerate()
            .map(|(i, p)| PartitionMetadata {
                error_code: 0,
                partition_index: i32::try_from(i).unwrap_or(i32::MAX),
                leader_id: p.leader,
                leader_epoch: p.leader_epoch,
                replica_nodes: p.replicas.clone(),
                isr_nodes: p.isr.clone(),
                ..Default::default()
            })
            .collect(),
    }
}

fn describe(
    ctx: &BrokerCtx,
    image: &MetadataImage,
    t: &TopicState,
    stats: &[Option<LogStats>],
) -> TopicMetadata {
    let placed = image.topics.get(&t.name);
    TopicMetadata {
        error_code: 0,
        name: t.name.clone(),
        topic_id: t.id.clone(),
        is_internal: t.name.starts_with("__"),
        partitions: t
            .partitions
            .iter()
            .zip(stats)
            .map(|(p, stats)| {
                let at = placed.and_then(|t| {
                    t.partitions
                        .get(usize::try_from(p.index()).unwrap_or(usize::MAX))
                });
                (p, stats, at)
            })
            .map(|(p, stats, at)| PartitionMetadata {
                error_code: 0,
                partition_index: p.index(),
                leader_id: at.map_or(ctx.node_id, |a| a.leader),
                leader_epoch: at.map_or_else(|| p.leader_epoch(), |a| a.leader_epoch),
                replica_nodes: at.map_or_else(|| vec![ctx.node_id], |a| a.replicas.clone()),
                isr_nodes: at.map_or_else(|| vec![ctx.node_id], |a| a.isr.clone()),
                offline_replicas: Vec::new(),
                log_start_offset: stats.map(|s| s.start),
                log_end_offset: stats.map(|s| s.end),
                high_watermark: stats.map(|_| p.high_watermark()),
                size_bytes: stats.map(|s| s.size),
            })
            .collect(),
    }
}
