//! Log cleaner scheduler: every `cleaner_backoff_ms`, compacts the partitions of topics
//! whose `cleanup.policy` includes `compact` and whose dirty ratio makes it worthwhile
//! (`weir_storage::cleaner`). The cleaner's offset map is allocated once, on first need.
//!
//! Each partition gets one pass per round, in three steps so produce is not blocked: a
//! snapshot under the read lock, the long map-and-rewrite with no lock, then a short swap
//! under the write lock that discards the pass if retention or truncation got there first.
//! Logs needing several passes (offset map too small) continue on later rounds.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::clock::now_ms;
use crate::partition::{blocking, Partition, PartitionError};
use crate::storage::Cleaner;
use crate::topics::Topics;

/// Runs one cleaning pass on a partition if it needs it, holding the log's lock only for
/// the snapshot and the swap. Blocking. Returns whether segments were replaced.
pub fn clean_partition(
    cleaner: &mut Cleaner,
    partition: &Partition,
    now_ms: i64,
) -> Result<bool, PartitionError> {
    let Some(snapshot) = partition.with_log(|log| Ok(log.clean_snapshot(now_ms)))? else {
        return Ok(false);
    };
    let prepared = cleaner
        .prepare(&snapshot)
        .map_err(PartitionError::Storage)?;
    let stats = partition.with_log_mut(|log| log.commit_clean(prepared))?;
    if stats.aborted {
        tracing::info!(partition = %partition.name(), "log changed while cleaning; pass discarded");
    } else {
        crate::instruments::recorders::cleaner_ran(stats.bytes_read, crate::clock::now_ms());
    }
    Ok(stats.segments_cleaned > 0)
}

/// Runs a cleaner pass every `backoff` until shutdown.
pub async fn run(
    topics: Topics,
    backoff: Duration,
    dedupe_buffer_bytes: u64,
    shutdown: CancellationToken,
) {
    let mut interval = super::interval(backoff);
    let mut cleaner: Option<Cleaner> = None;
    while super::tick(&mut interval, &shutdown).await {
        let compacted: Vec<_> = topics
            .all()
            .into_iter()
            .filter(|t| t.config.log.cleanup_policy.compact)
            .collect();
        if compacted.is_empty() {
            continue;
        }
        let mut c = cleaner.take().unwrap_or_else(|| {
            Cleaner::new(usize::try_from(dedupe_buffer_bytes).unwrap_or(usize::MAX))
        });
        let pass = blocking(
            move || {
                let now = now_ms();
                for t in compacted {
                    for p in t.hosted() {
                        match clean_partition(&mut c, p, now) {
                            Ok(true) => tracing::info!(partition = %p.name(), "compacted"),
                            Ok(false) => {}
                            Err(e) => {
                                tracing::warn!(partition = %p.name(), error = %e, "cleaner failed")
                            }
                        }
                    }
                }
                Ok(c)
            },
            "cleaner",
        )
        .await;
        cleaner = pass.ok();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::storage::{CleanupPolicy, LogConfig};
    use weir_storage::testkit;

    #[test]
    fn a_pass_compacts_through_the_partition_locks() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 2048,
            cleanup_policy: CleanupPolicy::parse("compact").unwrap(),
            min_cleanable_dirty_ratio: 0.0,
            ..LogConfig::default()
        };
        let p = Partition::open(
            "t",
            0,
            dir.path(),
            config,
            0,
            crate::storage::Shutdown::Unmarked,
        )
        .unwrap();
        for i in 0..200u32 {
            let key = format!("k{}", i % 5);
            let value = i.to_be_bytes();
            let mut b = testkit::keyed_batch(&[(key.as_bytes(), Some(&value[..]))], 0);
            p.with_log_mut(|l| l.append_as_leader(&mut b, 0, 0))
                .unwrap();
        }
        let before = p.with_log(|l| Ok(l.size_bytes())).unwrap();
        let mut cleaner = Cleaner::new(1 << 20);
        assert!(clean_partition(&mut cleaner, &p, 0).unwrap());
        assert!(p.with_log(|l| Ok(l.size_bytes())).unwrap() < before);
        assert!(
            !clean_partition(&mut cleaner, &p, 0).unwrap(),
            "nothing left"
        );
    }
}
