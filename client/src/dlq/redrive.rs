//! Reading a dead-letter topic back: [`list`] shows what is parked and not yet redriven,
//! [`redrive`] re-produces it to the original topics. Progress is the committed offset of
//! the group `weir-dlq-redrive-<dead-letter topic>`, moved only after the re-produced
//! records are acknowledged, so a redrive never loses a record and a second redrive does
//! not repeat the first (a crash between the acknowledgement and the commit can repeat
//! the last batch: at-least-once).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::policy::Parked;
use crate::admin::{Admin, OffsetSpec};
use crate::client::Client;
use crate::config::{ConsumerConfig, OffsetReset, ProducerConfig};
use crate::consumer::{Consumer, ConsumerRecord, TopicPartition};
use crate::error::{Error, Result};
use crate::producer::{Producer, ProducerRecord};

/// The redrive progress of dead-letter topic `T` is group `weir-dlq-redrive-T`.
pub const REDRIVE_GROUP_PREFIX: &str = "weir-dlq-redrive-";

/// Without a new record for this long while records are known to remain, reading fails.
const STALL: Duration = Duration::from_secs(30);

/// What a redrive did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redriven {
    /// Records re-produced (and acknowledged) and committed past.
    pub moved: usize,
    /// Parked records left after this redrive.
    pub remaining: usize,
}

fn group_of(dlq: &str) -> String {
    format!("{REDRIVE_GROUP_PREFIX}{dlq}")
}

/// Up to `max` parked records of `dlq` after its redrive progress, in offset order per
/// partition, and how many are parked in all.
async fn read_parked(
    client: &Arc<Client>,
    dlq: &str,
    max: usize,
) -> Result<(Vec<ConsumerRecord>, usize)> {
    let admin = Admin::with_client(client.clone());
    let ends = admin.list_offsets(dlq, &[], OffsetSpec::Latest).await?;
    let starts = admin.list_offsets(dlq, &[], OffsetSpec::Earliest).await?;
    let committed: BTreeMap<i32, i64> = admin
        .group_offsets(&group_of(dlq), dlq)
        .await?
        .into_iter()
        .collect();
    let from = |p: i32| {
        let start = starts.get(&p).copied().unwrap_or(0);
        committed.get(&p).copied().unwrap_or(start).max(start)
    };
    let total: usize = ends
        .iter()
        .map(|(p, end)| usize::try_from(end - from(*p)).unwrap_or(0))
        .sum();
    let mut consumer = Consumer::with_client(
        client.clone(),
        ConsumerConfig {
            auto_offset_reset: OffsetReset::Earliest,
            fetch_max_wait: Duration::from_millis(100),
            ..ConsumerConfig::default()
        },
    );
    let partitions: Vec<TopicPartition> = ends
        .iter()
        .filter(|(p, end)| from(**p) < **end)
        .map(|(p, _)| TopicPartition::new(dlq, *p))
        .collect();
    consumer.assign(&partitions).await?;
    for tp in &partitions {
        consumer.seek(tp, from(tp.partition))?;
    }
    let want = total.min(max);
    let mut out: Vec<ConsumerRecord> = Vec::with_capacity(want);
    let mut last_progress = Instant::now();
    while out.len() < want {
        let records = consumer.poll(Duration::from_millis(200)).await?;
        if !records.is_empty() {
            last_progress = Instant::now();
        }
        for r in records {
            let end = ends.get(&r.partition).copied().unwrap_or(0);
            if r.offset < end && out.len() < want {
                out.push(r);
            }
        }
        if last_progress.elapsed() > STALL {
            return Err(Error::Config(format!(
                "reading {dlq} stalled: {} of {want} parked records read in {} s",
                out.len(),
                STALL.as_secs()
            )));
        }
    }
    Ok((out, total))
}

/// Up to `max` records parked in dead-letter topic `dlq` and not redriven yet.
///
/// Cancellation safety: safe; it only reads.
pub async fn list(client: Arc<Client>, dlq: &str, max: usize) -> Result<Vec<ConsumerRecord>> {
    Ok(read_parked(&client, dlq, max).await?.0)
}

/// Re-produces up to `max` parked records of `dlq` to their original topics (from the
/// `dlq.original.topic` header; headers without `dlq.*`, key, value and timestamp as
/// they were) with an idempotent producer, and commits past each partition's last
/// acknowledged record.
///
/// Cancellation safety: safe to drop; records acknowledged but not yet committed past
/// are re-produced by the next redrive (at-least-once).
pub async fn redrive(client: Arc<Client>, dlq: &str, max: usize) -> Result<Redriven> {
    let (records, total) = read_parked(&client, dlq, max).await?;
    let producer = Producer::with_client(client.clone(), ProducerConfig::default()).await?;
    let mut sent = Vec::with_capacity(records.len());
    for r in &records {
        let topic = match Parked::from_record(r) {
            Some(p) => p.topic,
            None => {
                return Err(Error::Config(format!(
                    "{dlq}-{}@{} has no dlq.original.topic header: it was not parked by weir's dead-letter helper",
                    r.partition, r.offset
                )))
            }
        };
        let record = ProducerRecord {
            topic,
            partition: None,
            key: r.key.clone(),
            value: r.value.clone(),
            headers: Parked::original_headers(r),
            timestamp: Some(r.timestamp),
        };
        sent.push((r.partition, r.offset, producer.enqueue(record).await?));
    }
    producer.flush().await;
    // Commit, per partition, past the records acknowledged in a row from the start.
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    let mut failed: BTreeMap<i32, Error> = BTreeMap::new();
    let mut moved = 0;
    for (partition, offset, delivery) in sent {
        if failed.contains_key(&partition) {
            continue;
        }
        match delivery.await {
            Ok(_) => {
                next.insert(partition, offset + 1);
                moved += 1;
            }
            Err(e) => {
                failed.insert(partition, e);
            }
        }
    }
    producer.close().await;
    let offsets: Vec<(TopicPartition, i64)> = next
        .iter()
        .map(|(p, o)| (TopicPartition::new(dlq, *p), *o))
        .collect();
    if !offsets.is_empty() {
        Admin::with_client(client)
            .commit_group_offsets(&group_of(dlq), &offsets)
            .await?;
    }
    if let Some((_, e)) = failed.into_iter().next() {
        return Err(e);
    }
    Ok(Redriven {
        moved,
        remaining: total - moved,
    })
}
