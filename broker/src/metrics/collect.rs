//! Takes a [`Snapshot`] of groups and partitions from the live broker (blocking: reads
//! each log's start offset, size and segment count under its read lock), and renders
//! the families read at scrape time: per-topic throughput and process facts.

use std::sync::atomic::Ordering;

use crate::clock::now_ms;
use crate::coordinator::{fill_lag_ms, Coordinator};
use crate::topics::Topics;

use super::names;
use super::snapshot::{GroupSnapshot, OffsetRow, PartitionStat, Snapshot};
use super::text::Exposition;

/// Every group with its members and committed offsets, lag in time included (reads one
/// batch per lagging partition). Blocking.
pub fn groups(coordinator: &Coordinator, topics: &Topics) -> Vec<GroupSnapshot> {
    let now = now_ms();
    coordinator
        .list(&[])
        .into_iter()
        .filter_map(|l| coordinator.describe(&l.group_id))
        .map(|mut g| {
            fill_lag_ms(topics, &mut g.offsets, now);
            g
        })
        .map(|g| GroupSnapshot {
            id: g.group_id,
            state: g.state,
            members: g.members.len(),
            offsets: g
                .offsets
                .into_iter()
                .map(|r| OffsetRow {
                    topic: r.topic,
                    partition: r.partition,
                    committed: r.committed,
                    high_watermark: r.log_end,
                    lag_ms: r.lag_ms,
                })
                .collect(),
        })
        .collect()
}

/// Every partition's stats, or `None` above `max_series` partitions. Blocking.
pub fn partitions(topics: &Topics, max_series: usize) -> Option<Vec<PartitionStat>> {
    let all = topics.all();
    let count: usize = all.iter().map(|t| t.hosted().count()).sum();
    if count > max_series {
        return None;
    }
    let mut out = Vec::with_capacity(count);
    for t in &all {
        for p in t.hosted() {
            let stats = p.with_log(|log| {
                Ok((
                    log.log_start_offset(),
                    log.log_end_offset(),
                    log.size_bytes(),
                    log.segment_count(),
                ))
            });
            // A partition closed or deleted meanwhile is simply left out.
            if let Ok((log_start, log_end, size_bytes, segments)) = stats {
                out.push(PartitionStat {
                    topic: t.name.clone(),
                    partition: p.index(),
                    log_start,
                    log_end,
                    high_watermark: p.high_watermark(),
                    size_bytes,
                    segments,
                });
            }
        }
    }
    Some(out)
}

/// One refresh. Blocking.
pub fn snapshot(topics: &Topics, groups_of: &Coordinator, max_series: usize) -> Snapshot {
    Snapshot {
        groups: groups(groups_of, topics),
        partitions: partitions(topics, max_series),
    }
}

/// Per-topic throughput counters, read at scrape time.
pub fn throughput(e: &mut Exposition, topics: &Topics) {
    let all = topics.all();
    type Get = fn(&crate::topics::TopicCounters) -> u64;
    let families: [(&str, Get); 3] = [
        (names::PRODUCED_RECORDS, |c| {
            c.produced_records.load(Ordering::Relaxed)
        }),
        (names::PRODUCED_BYTES, |c| {
            c.produced_bytes.load(Ordering::Relaxed)
        }),
        (names::FETCHED_BYTES, |c| {
            c.fetched_bytes.load(Ordering::Relaxed)
        }),
    ];
    for (name, get) in families {
        e.family(name);
        for t in &all {
            e.sample(name, &[("topic", &t.name)], get(&t.counters));
        }
    }
}
