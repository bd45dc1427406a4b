//! Metadata (3): brokers, topics, partitions with leader, replicas, ISR and leader epoch.

use weir_protocol::native::v1::{
    BrokerMetadata, MetadataRequest, MetadataResponse, PartitionMetadata, TopicMetadata,
};
use weir_protocol::ErrorCode;

use crate::controller::NewTopic;
use crate::ctx::BrokerCtx;
use crate::names::validate_topic_name;
use crate::topics::TopicState;

/// Describes the requested topics (all, none, or a list).
pub async fn handle(ctx: &BrokerCtx, req: MetadataRequest) -> MetadataResponse {
    let mut topics = Vec::new();
    if req.all_topics {
        topics.extend(ctx.topics.all().iter().map(|t| describe(ctx, t)));
    } else {
        for name in req.topics {
            topics.push(lookup(ctx, name, req.allow_auto_topic_creation).await);
        }
    }
    MetadataResponse {
        brokers: vec![BrokerMetadata {
            node_id: ctx.node_id,
            host: ctx.advertised_host.clone(),
            port: ctx.advertised_port,
            rack: None,
        }],
        cluster_id: ctx.cluster_id.clone(),
        controller_id: ctx.node_id,
        topics,
        throttle_time_ms: 0,
    }
}

async fn lookup(ctx: &BrokerCtx, name: String, auto_create: bool) -> TopicMetadata {
    if let Err(e) = validate_topic_name(&name) {
        tracing::debug!(error = %e, "metadata for invalid topic name");
        return error_topic(name, ErrorCode::InvalidTopicException);
    }
    if let Some(t) = ctx.topics.get(&name) {
        return describe(ctx, &t);
    }
    if auto_create && ctx.auto_create_topics {
        let new = NewTopic {
            name: name.clone(),
            partitions: -1,
            replication_factor: -1,
            configs: Vec::new(),
        };
        match ctx.controller.create_topic(new, false).await {
            Ok(t) => return describe(ctx, &t),
            // Another request created it meanwhile.
            Err(e) if e.code == ErrorCode::TopicAlreadyExists => {
                if let Some(t) = ctx.topics.get(&name) {
                    return describe(ctx, &t);
                }
            }
            Err(e) => return error_topic(name, e.code),
        }
    }
    error_topic(name, ErrorCode::UnknownTopicOrPartition)
}

fn error_topic(name: String, code: ErrorCode) -> TopicMetadata {
    TopicMetadata {
        error_code: code.as_i32(),
        name,
        ..Default::default()
    }
}

fn describe(ctx: &BrokerCtx, t: &TopicState) -> TopicMetadata {
    TopicMetadata {
        error_code: 0,
        name: t.name.clone(),
        topic_id: t.id.clone(),
        is_internal: t.name.starts_with("__"),
        partitions: t
            .partitions
            .iter()
            .map(|p| PartitionMetadata {
                error_code: 0,
                partition_index: p.index(),
                leader_id: ctx.node_id,
                leader_epoch: p.leader_epoch(),
                replica_nodes: vec![ctx.node_id],
                isr_nodes: vec![ctx.node_id],
                offline_replicas: Vec::new(),
            })
            .collect(),
    }
}
