//! Log cleaner scheduler: every `cleaner_backoff_ms`, compacts the partitions of topics
//! whose `cleanup.policy` includes `compact` and whose dirty ratio makes it worthwhile
//! (`weir_storage::cleaner`). The cleaner's offset map is allocated once, on first need.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::ctx::now_ms;
use crate::partition::blocking;
use crate::storage::{Cleaner, Error, Log};
use crate::topics::Topics;

/// Compacts one log if it needs it. Returns whether anything was cleaned.
pub fn clean_partition(cleaner: &mut Cleaner, log: &mut Log, now_ms: i64) -> Result<bool, Error> {
    if !log.needs_cleaning(now_ms) {
        return Ok(false);
    }
    let stats = cleaner.clean(log, now_ms)?;
    crate::metrics::recorders::cleaner_ran(stats.bytes_read, crate::ctx::now_ms());
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
                    for p in &t.partitions {
                        match p.with_log_mut(|log| clean_partition(&mut c, log, now)) {
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
