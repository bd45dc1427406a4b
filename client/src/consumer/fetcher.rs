//! The prefetch task of one broker: resolves start positions with ListOffsets, then
//! fetches the partitions this broker leads, ahead of `poll`, within the buffer budget.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use weir_protocol::batch::BatchIter;
use weir_protocol::native::v1::{
    FetchPartition, FetchRequest, FetchTopic, ListOffsetsPartition, ListOffsetsRequest,
    ListOffsetsTopic,
};
use weir_protocol::ErrorCode;

use super::{Chunk, ChunkKind, Shared, Start, TopicPartition};
use crate::config::OffsetReset;
use crate::error::{Error, Result};

const EARLIEST: i64 = -2;
const LATEST: i64 = -1;

pub(super) async fn run(shared: Arc<Shared>, node: i32) {
    let backoff = shared.client.config().retry_backoff;
    loop {
        match step(&shared, node).await {
            Ok(true) => {}
            Ok(false) => {
                // Nothing to fetch from this broker: wait for assign/seek.
                let changed = shared.changed.notified();
                let _ = tokio::time::timeout(Duration::from_millis(100), changed).await;
            }
            Err(e) => {
                tracing::debug!(node, error = %e, "fetch failed");
                if e.invalidates_metadata() {
                    let mut parts = shared.parts();
                    for p in parts.values_mut().filter(|p| p.leader == Some(node)) {
                        p.leader = None;
                    }
                }
                tokio::time::sleep(backoff).await;
            }
        }
    }
}

/// One round: resolve pending starts, then one fetch. `Ok(false)` when idle.
async fn step(shared: &Shared, node: i32) -> Result<bool> {
    let pending: Vec<(TopicPartition, Start, u64)> = shared
        .parts()
        .iter()
        .filter(|(_, p)| p.leader == Some(node))
        .filter_map(|(tp, p)| p.start.map(|s| (tp.clone(), s, p.epoch)))
        .collect();
    if !pending.is_empty() {
        resolve(shared, node, pending).await?;
    }
    let targets: Vec<(TopicPartition, i64, u64)> = shared
        .parts()
        .iter()
        .filter(|(_, p)| p.leader == Some(node) && p.start.is_none())
        .filter_map(|(tp, p)| p.fetch_offset.map(|o| (tp.clone(), o, p.epoch)))
        .collect();
    if targets.is_empty() {
        return Ok(false);
    }
    let cfg = &shared.config;
    let budget = cfg.fetch_max_bytes.min(u32::MAX as usize);
    let permit = shared
        .memory
        .clone()
        .acquire_many_owned(budget as u32)
        .await
        .map_err(|_| Error::Closed)?;
    permit.forget();
    let mut remaining = budget;
    let result = fetch(shared, node, &targets, &mut remaining).await;
    shared.memory.add_permits(remaining);
    result.map(|()| true)
}

async fn fetch(
    shared: &Shared,
    node: i32,
    targets: &[(TopicPartition, i64, u64)],
    remaining: &mut usize,
) -> Result<()> {
    let cfg = &shared.config;
    let mut topics: Vec<FetchTopic> = Vec::new();
    for (TopicPartition { topic, partition }, offset, _) in targets {
        let fp = FetchPartition {
            partition: *partition,
            current_leader_epoch: None,
            fetch_offset: *offset,
            partition_max_bytes: cfg.partition_max_bytes.min(i32::MAX as usize) as i32,
        };
        match topics.iter_mut().find(|t| &t.topic == topic) {
            Some(t) => t.partitions.push(fp),
            None => topics.push(FetchTopic {
                topic: topic.clone(),
                partitions: vec![fp],
            }),
        }
    }
    let request = FetchRequest {
        replica_id: None,
        max_wait_ms: cfg.fetch_max_wait.as_millis().min(i32::MAX as u128) as i32,
        min_bytes: 1,
        max_bytes: (*remaining).min(i32::MAX as usize) as i32,
        isolation_level: 0,
        topics,
    };
    let conn = shared.client.node_connection(node).await?;
    let timeout = shared.client.config().request_timeout + cfg.fetch_max_wait;
    let response = conn.request(request, timeout).await?;
    Error::check(
        response.error_code,
        || format!("fetch from node {node}"),
        "",
    )?;
    let epochs: HashMap<&TopicPartition, (i64, u64)> =
        targets.iter().map(|(tp, o, e)| (tp, (*o, *e))).collect();
    for t in response.responses {
        for p in t.partitions {
            let tp = TopicPartition::new(t.topic.as_str(), p.partition_index);
            let Some(&(offset, epoch)) = epochs.get(&tp) else {
                continue;
            };
            let code = ErrorCode::from_i32(p.error_code);
            if code == ErrorCode::OffsetOutOfRange {
                out_of_range(shared, &tp, offset, epoch);
                continue;
            }
            if !code.is_ok() {
                let e = Error::Broker {
                    code,
                    context: format!("fetch {tp}"),
                    message: String::new(),
                };
                if e.invalidates_metadata() {
                    shared.client.invalidate(&tp.topic);
                    if let Some(s) = shared.parts().get_mut(&tp) {
                        s.leader = None;
                    }
                } else if !e.is_retriable() {
                    send(shared, tp, epoch, ChunkKind::Failed(e), 0);
                }
                continue;
            }
            if p.records.is_empty() {
                continue;
            }
            // Only whole batches: the broker may cut the last one at the size limit.
            let mut whole = 0usize;
            let mut next = offset;
            for (h, b) in BatchIter::new(&p.records, false).map_while(|r| r.ok()) {
                whole += b.len();
                next = next.max(h.next_offset());
            }
            if whole == 0 {
                continue;
            }
            let records = p.records.slice(..whole);
            {
                let mut parts = shared.parts();
                match parts.get_mut(&tp) {
                    Some(s) if s.epoch == epoch => {
                        s.fetch_offset = Some(next);
                        s.out_of_range_once = false;
                    }
                    _ => continue,
                }
            }
            let size = whole.min(*remaining);
            *remaining -= size;
            send(shared, tp, epoch, ChunkKind::Records(records), size);
        }
    }
    Ok(())
}

fn send(shared: &Shared, tp: TopicPartition, epoch: u64, kind: ChunkKind, permits: usize) {
    let _ = shared.tx.send(Chunk {
        tp,
        epoch,
        kind,
        permits,
        memory: shared.memory.clone(),
    });
}

fn out_of_range(shared: &Shared, tp: &TopicPartition, offset: i64, epoch: u64) {
    let policy = shared.config.auto_offset_reset;
    let mut parts = shared.parts();
    let Some(s) = parts.get_mut(tp) else { return };
    if s.epoch != epoch {
        return;
    }
    if !s.out_of_range_once {
        // First answer: maybe from a broker that still thinks it leads (behind on
        // metadata, cut off, just restarted) with a shorter log. Ask again at the leader
        // fresh metadata names before giving up the position.
        s.out_of_range_once = true;
        s.leader = None;
        drop(parts);
        shared.client.invalidate(&tp.topic);
        tracing::debug!(topic = %tp.topic, partition = tp.partition, offset, "offset out of range; checking with fresh metadata");
        return;
    }
    s.out_of_range_once = false;
    match policy {
        OffsetReset::Earliest | OffsetReset::Latest => {
            tracing::info!(topic = %tp.topic, partition = tp.partition, offset, ?policy, "offset out of range; resetting");
            s.fetch_offset = None;
            s.start = Some(if policy == OffsetReset::Earliest {
                Start::Earliest
            } else {
                Start::Latest
            });
        }
        OffsetReset::Error => {
            // Stop fetching this partition until the user seeks.
            s.fetch_offset = None;
            drop(parts);
            let e = Error::OffsetOutOfRange {
                topic: tp.topic.clone(),
                partition: tp.partition,
                offset,
            };
            send(shared, tp.clone(), epoch, ChunkKind::Failed(e), 0);
        }
    }
}

/// Turns pending starts (earliest/latest/timestamp) into offsets with one ListOffsets.
async fn resolve(
    shared: &Shared,
    node: i32,
    pending: Vec<(TopicPartition, Start, u64)>,
) -> Result<()> {
    let mut topics: Vec<ListOffsetsTopic> = Vec::new();
    let mut direct = Vec::new();
    for (TopicPartition { topic, partition }, start, epoch) in &pending {
        let timestamp = match start {
            Start::Offset(o) => {
                direct.push((TopicPartition::new(topic.as_str(), *partition), *o, *epoch));
                continue;
            }
            Start::Earliest => EARLIEST,
            Start::Latest => LATEST,
            Start::Timestamp(t) => *t,
        };
        let lp = ListOffsetsPartition {
            partition_index: *partition,
            current_leader_epoch: None,
            timestamp,
        };
        match topics.iter_mut().find(|t| &t.name == topic) {
            Some(t) => t.partitions.push(lp),
            None => topics.push(ListOffsetsTopic {
                name: topic.clone(),
                partitions: vec![lp],
            }),
        }
    }
    let mut resolved = direct;
    if !topics.is_empty() {
        let conn = shared.client.node_connection(node).await?;
        let r = conn
            .request(
                ListOffsetsRequest {
                    isolation_level: 0,
                    topics,
                },
                shared.client.config().request_timeout,
            )
            .await?;
        for t in r.topics {
            for p in t.partitions {
                let tp = TopicPartition::new(t.name.as_str(), p.partition_index);
                let Some((_, start, epoch)) = pending.iter().find(|(x, _, _)| *x == tp) else {
                    continue;
                };
                Error::check(p.error_code, || format!("list offsets {tp}"), "")?;
                if p.offset < 0 {
                    // No record that late: behave like "latest" on the next round.
                    if matches!(start, Start::Timestamp(_)) {
                        if let Some(s) = shared.parts().get_mut(&tp) {
                            if s.epoch == *epoch {
                                s.start = Some(Start::Latest);
                            }
                        }
                    }
                    continue;
                }
                resolved.push((tp, p.offset, *epoch));
            }
        }
    }
    let mut parts = shared.parts();
    for (tp, offset, epoch) in resolved {
        if let Some(s) = parts.get_mut(&tp) {
            if s.epoch == epoch {
                s.start = None;
                s.position = offset;
                s.fetch_offset = Some(offset);
            }
        }
    }
    Ok(())
}
