//! One replica fetcher: this broker follows every partition a given leader leads and this
//! broker holds a replica of, over one connection (Kafka's `ReplicaFetcherThread`).
//!
//! Each round: partitions whose leader epoch is new to the fetcher first find where their
//! log diverges from the leader's (OffsetForLeaderEpoch for the epoch of their last
//! record, then truncate what the leader never had — KIP-101); then one Fetch for all of
//! them, at each one's log end, which also tells the leader what this follower holds.
//! Fetched batches are appended as they are, so offsets, batches and epochs stay
//! byte-identical to the leader's.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use tokio::sync::watch;
use weir_protocol::native::v1;
use weir_protocol::ErrorCode;

use super::conn::Conn;
use super::throttle::Bucket;

use crate::log_throttle::Throttle;
use crate::partition::{blocking, PartitionRef};

/// A partition to follow and the leader epoch the metadata gives it.
#[derive(Debug, Clone)]
pub struct Followed {
    /// The local replica.
    pub partition: PartitionRef,
    /// The leader's epoch.
    pub leader_epoch: i32,
    /// Bytes/s this replica may fetch (a reassignment's throttle), 0 for no limit.
    pub throttle: u64,
}

/// How fetchers fetch.
#[derive(Debug, Clone, Copy)]
pub struct FetcherSettings {
    /// This broker's id (the fetch's replica id).
    pub me: i32,
    /// Longest a fetch waits at the leader for new records (`replica.fetch.wait.max.ms`).
    pub max_wait_ms: i32,
    /// Most bytes per partition per fetch (`replica.fetch.max.bytes`).
    pub partition_max_bytes: i32,
    /// Most bytes per response (`replica.fetch.response.max.bytes`).
    pub max_bytes: i32,
    /// Pause after an error (`replica.fetch.backoff.ms`).
    pub backoff: Duration,
}

static FETCH_FAILED: Throttle = Throttle::new(Duration::from_secs(10));

/// Fetches from `leader` at `addr` what `parts` lists, until the sender is dropped.
pub async fn run(
    settings: FetcherSettings,
    leader: i32,
    addr: String,
    mut parts: watch::Receiver<Vec<Followed>>,
) {
    let mut conn: Option<Conn> = None;
    // Partition → the leader epoch whose divergence point this fetcher has settled.
    let mut settled: HashMap<(String, i32), i32> = HashMap::new();
    let mut buckets: HashMap<(String, i32), Bucket> = HashMap::new();
    loop {
        let list = parts.borrow_and_update().clone();
        if list.is_empty() {
            if parts.changed().await.is_err() {
                return;
            }
            continue;
        }
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match Conn::connect(&addr).await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    if FETCH_FAILED.allow(std::time::Instant::now()).is_some() {
                        tracing::warn!(leader, %addr, error = %e, "replica fetcher cannot connect");
                    }
                    if pause(&mut parts, settings.backoff).await {
                        return;
                    }
                    continue;
                }
            },
        };
        let round = fetch_round(c, &settings, &list, &mut settled, &mut buckets);
        let outcome = tokio::select! {
            r = round => r,
            r = parts.changed() => {
                if r.is_err() {
                    return;
                }
                // The partitions changed: a response still on its way belongs to the old
                // list, so start over on a fresh connection.
                conn = None;
                continue;
            }
        };
        if let Err(e) = outcome {
            if FETCH_FAILED.allow(std::time::Instant::now()).is_some() {
                tracing::warn!(leader, %addr, error = %e, "replica fetch failed");
            }
            conn = None;
            if pause(&mut parts, settings.backoff).await {
                return;
            }
        }
    }
}

/// Sleeps `d` or until the list changes; true when the fetcher should stop.
async fn pause(parts: &mut watch::Receiver<Vec<Followed>>, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        r = parts.changed() => r.is_err(),
    }
}

/// One round: settle divergence where needed, then one fetch for everything.
async fn fetch_round(
    c: &mut Conn,
    settings: &FetcherSettings,
    list: &[Followed],
    settled: &mut HashMap<(String, i32), i32>,
    buckets: &mut HashMap<(String, i32), Bucket>,
) -> Result<(), String> {
    let mut backoff = false;
    for f in list {
        let key = (f.partition.topic().to_string(), f.partition.index());
        if settled.get(&key) == Some(&f.leader_epoch) {
            continue;
        }
        match truncate_to_leader(c, settings.me, f).await? {
            true => {
                settled.insert(key, f.leader_epoch);
            }
            // The leader does not know its epoch yet (its metadata is behind): retry.
            false => backoff = true,
        }
    }
    let now = std::time::Instant::now();
    buckets.retain(|k, b| {
        list.iter().any(|f| {
            f.throttle == b.rate() && (f.partition.topic(), f.partition.index()) == (&k.0, k.1)
        })
    });
    // Partition → the most bytes it may fetch this round.
    let mut limits: Vec<(&Followed, i32)> = Vec::new();
    let mut throttled_wait: Option<Duration> = None;
    for f in list {
        let key = (f.partition.topic().to_string(), f.partition.index());
        if settled.get(&key) != Some(&f.leader_epoch) {
            continue;
        }
        let mut limit = settings.partition_max_bytes;
        if f.throttle > 0 {
            let b = buckets
                .entry(key)
                .or_insert_with(|| Bucket::new(f.throttle, now));
            limit = limit.min(b.allowance(now));
            if limit == 0 {
                let w = b.wait();
                throttled_wait = Some(throttled_wait.map_or(w, |t| t.min(w)));
                continue;
            }
        }
        limits.push((f, limit));
    }
    let ready: Vec<&Followed> = limits.iter().map(|(f, _)| *f).collect();
    if ready.is_empty() {
        let wait = throttled_wait.unwrap_or(settings.backoff);
        tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
        return Ok(());
    }
    let mut topics: BTreeMap<&str, Vec<v1::FetchPartition>> = BTreeMap::new();
    for (f, limit) in &limits {
        topics
            .entry(f.partition.topic())
            .or_default()
            .push(v1::FetchPartition {
                partition: f.partition.index(),
                fetch_offset: f.partition.log_end_offset(),
                partition_max_bytes: *limit,
                current_leader_epoch: Some(f.leader_epoch),
            });
    }
    let req = v1::FetchRequest {
        replica_id: Some(settings.me),
        max_wait_ms: if backoff { 0 } else { settings.max_wait_ms },
        min_bytes: 1,
        max_bytes: settings.max_bytes,
        isolation_level: 0,
        topics: topics
            .into_iter()
            .map(|(topic, partitions)| v1::FetchTopic {
                topic: topic.to_string(),
                partitions,
            })
            .collect(),
    };
    let resp = c.call(req).await?;
    let by_key: HashMap<(&str, i32), &Followed> = ready
        .iter()
        .map(|f| ((f.partition.topic(), f.partition.index()), *f))
        .collect();
    let mut errors = false;
    for t in resp.responses {
        for p in t.partitions {
            let Some(f) = by_key.get(&(t.topic.as_str(), p.partition_index)) else {
                continue;
            };
            match ErrorCode::from_i32(p.error_code) {
                ErrorCode::None => {
                    let part = f.partition.clone();
                    let hw = p.high_watermark;
                    let records = p.records;
                    crate::instruments::recorders::replica_fetched(records.len());
                    let key = (t.topic.clone(), p.partition_index);
                    if let Some(b) = buckets.get_mut(&key) {
                        b.spend(records.len(), std::time::Instant::now());
                    }
                    let now = crate::clock::now_ms();
                    if records.is_empty() {
                        part.follow_high_watermark(hw);
                        continue;
                    }
                    let epoch = f.leader_epoch;
                    let appended = blocking(
                        move || part.append_replica(&records, hw, now, epoch),
                        "replica append",
                    )
                    .await;
                    if let Err(e) = appended {
                        errors = true;
                        if FETCH_FAILED.allow(std::time::Instant::now()).is_some() {
                            tracing::warn!(partition = %f.partition.name(), error = %e, "replica append failed");
                        }
                    }
                }
                // Our log end is past the leader's: find the divergence point again.
                ErrorCode::OffsetOutOfRange => {
                    settled.remove(&(f.partition.topic().to_string(), f.partition.index()));
                }
                // A leadership change the metadata will bring: wait for it.
                _ => errors = true,
            }
        }
    }
    if errors {
        tokio::time::sleep(settings.backoff).await;
    }
    Ok(())
}

/// Truncates `f`'s log to where it diverges from the leader's; false when the leader
/// cannot answer yet.
async fn truncate_to_leader(c: &mut Conn, me: i32, f: &Followed) -> Result<bool, String> {
    let part = f.partition.clone();
    let latest = blocking(
        move || part.with_log(|log| Ok(log.latest_epoch())),
        "epochs",
    )
    .await
    .map_err(|e| e.to_string())?;
    let Some(latest) = latest else {
        // An empty log has nothing to cut.
        return Ok(true);
    };
    let req = v1::OffsetForLeaderEpochRequest {
        replica_id: me,
        topics: vec![v1::OffsetForLeaderTopic {
            name: f.partition.topic().to_string(),
            partitions: vec![v1::OffsetForLeaderPartition {
                partition_index: f.partition.index(),
                current_leader_epoch: Some(f.leader_epoch),
                leader_epoch: latest,
            }],
        }],
    };
    let resp = c.call(req).await?;
    let Some(answer) = resp.topics.first().and_then(|t| t.partitions.first()) else {
        return Err("OffsetForLeaderEpoch answered nothing".into());
    };
    if answer.error_code != 0 {
        return Ok(false);
    }
    let part = f.partition.clone();
    let fetched_epoch = f.leader_epoch;
    let (epoch, end) = (answer.leader_epoch, answer.end_offset);
    let cut = blocking(
        move || {
            let target = part.with_log(|log| {
                let leo = log.log_end_offset();
                Ok(if epoch < 0 {
                    // The leader knows none of our epochs: keep only what was committed.
                    part.high_watermark().min(leo)
                } else {
                    // Our own end of the epoch the leader answered for bounds it too.
                    let ours = log.end_offset_for_epoch(epoch).map_or(leo, |(_, e)| e);
                    end.min(ours).min(leo)
                })
            })?;
            if target < part.log_end_offset() {
                tracing::info!(partition = %part.name(), to = target, "truncating to the leader's log");
                part.truncate_replica(target, fetched_epoch)?;
            }
            Ok(())
        },
        "replica truncate",
    )
    .await;
    cut.map_err(|e| e.to_string())?;
    Ok(true)
}
