//! Metadata (3): brokers, topics, partitions with leader, replicas, ISR and leader epoch,
//! plus each partition's log offsets and size (for `topic describe`).

use std::sync::Arc;

use weir_protocol::native::v1::{
    BrokerMetadata, MetadataRequest, MetadataResponse, PartitionMetadata, TopicMetadata,
};
use weir_protocol::ErrorCode;

use crate::controller::NewTopic;
use crate::ctx::BrokerCtx;
use crate::metadata::TopicImage;
use crate::names::{is_internal_topic, validate_topic_name};
use crate::partition::{blocking, PartitionRef};
use crate::topics::TopicState;

/// Describes the requested topics (all, none, or a list). Placement (leader, replicas, ISR,
/// epochs) and the broker list come from the metadata image, which every broker holds;
/// log offsets and sizes from the partitions this broker has open.
pub async fn handle(ctx: &BrokerCtx, req: MetadataRequest) -> MetadataResponse {
    let mut found = Vec::new();
    if req.all_topics {
        let image = ctx.controller.image();
        found.extend(image.topics.keys().map(|name| Ok(name.clone())));
    } else {
        for name in req.topics {
            found.push(lookup(ctx, name, req.allow_auto_topic_creation).await);
        }
    }
    // After any auto-creation, so created topics are in it.
    let image = ctx.controller.image();
    let local: Vec<Option<Arc<TopicState>>> = found
        .iter()
        .map(|f| f.as_ref().ok().and_then(|name| ctx.topics.get(name)))
        .collect();
    let stats = log_stats(&local).await;
    let topics = found
        .into_iter()
        .zip(local.iter().zip(stats))
        .map(|(t, (local, stats))| match t {
            Ok(name) => match image.topics.get(&name) {
                Some(placed) => describe(&name, placed, local.as_deref(), &stats),
                None => error_topic(name, ErrorCode::UnknownTopicOrPartition),
            },
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

/// A topic's name, or the finished error entry that replaces it.
type Found = Result<String, TopicMetadata>;

/// A partition log's offsets and size at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LogStats {
    start: i64,
    end: i64,
    size: u64,
}

/// Stats of every partition open here of the found topics, by partition index (`None`
/// where not open), read in one blocking section: the log lock can be held across an
/// fsync, so it is never taken on an async worker.
async fn log_stats(local: &[Option<Arc<TopicState>>]) -> Vec<Vec<Option<LogStats>>> {
    let parts: Vec<Vec<Option<PartitionRef>>> = local
        .iter()
        .map(|t| t.as_ref().map_or_else(Vec::new, |t| t.partitions.clone()))
        .collect();
    let empty: Vec<Vec<Option<LogStats>>> = parts.iter().map(|p| vec![None; p.len()]).collect();
    if parts.iter().flatten().all(Option::is_none) {
        return empty;
    }
    let read = move || {
        Ok(parts
            .iter()
            .map(|topic| {
                topic
                    .iter()
                    .map(|p| p.as_ref().and_then(read_stats))
                    .collect()
            })
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

/// The topic `name` if the image has it (created first if allowed), or its error entry.
async fn lookup(ctx: &BrokerCtx, name: String, auto_create: bool) -> Found {
    if let Err(e) = validate_topic_name(&name) {
        tracing::debug!(error = %e, "metadata for invalid topic name");
        return Err(error_topic(name, ErrorCode::InvalidTopicException));
    }
    if ctx.controller.image().topics.contains_key(&name) {
        return Ok(name);
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
            Ok(_) => return Ok(name),
            // Another request created it meanwhile.
            Err(e) if e.code == ErrorCode::TopicAlreadyExists => return Ok(name),
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

/// A topic as the image places it, with log figures for the partitions open here.
fn describe(
    name: &str,
    placed: &TopicImage,
    local: Option<&TopicState>,
    stats: &[Option<LogStats>],
) -> TopicMetadata {
    TopicMetadata {
        error_code: 0,
        name: name.to_string(),
        topic_id: placed.id.clone(),
        is_internal: name.starts_with("__"),
        partitions: placed
            .partitions
            .iter()
            .enumerate()
            .map(|(i, at)| {
                let stats = stats.get(i).copied().flatten();
                let open = local
                    .and_then(|t| t.partitions.get(i))
                    .and_then(Option::as_ref);
                PartitionMetadata {
                    error_code: 0,
                    partition_index: i32::try_from(i).unwrap_or(i32::MAX),
                    leader_id: at.leader,
                    leader_epoch: at.leader_epoch,
                    replica_nodes: at.replicas.clone(),
                    isr_nodes: at.isr.clone(),
                    offline_replicas: Vec::new(),
                    log_start_offset: stats.map(|s| s.start),
                    log_end_offset: stats.map(|s| s.end),
                    high_watermark: stats.and(open).map(|p| p.high_watermark()),
                    size_bytes: stats.map(|s| s.size),
                }
            })
            .collect(),
    }
}
