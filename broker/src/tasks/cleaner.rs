//! Log cleaner scheduler for topics with `cleanup.policy` containing `compact`.
//!
//! HOOK FOR THE LEAD: the interim storage has no cleaner. When `weir_storage::cleaner`
//! lands, implement [`clean_partition`] as
//! `Cleaner::new(dedupe_buffer_bytes).clean(log, now_ms)` (optionally gated on
//! `log.needs_cleaning()` / `cleanable_ratio() >= min.cleanable.dirty.ratio`). The
//! scheduling around it is already wired.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::ctx::now_ms;
use crate::partition::blocking;
use crate::storage::{Error, Log};
use crate::topics::Topics;

/// Compacts one log. Returns whether anything was cleaned.
pub fn clean_partition(
    _log: &mut Log,
    _dedupe_buffer_bytes: u64,
    _now_ms: i64,
) -> Result<bool, Error> {
    Ok(false)
}

/// Runs a cleaner pass every `backoff` until shutdown.
pub async fn run(
    topics: Topics,
    backoff: Duration,
    dedupe_buffer_bytes: u64,
    shutdown: CancellationToken,
) {
    let mut interval = super::interval(backoff);
    while super::tick(&mut interval, &shutdown).await {
        let all = topics.all();
        let _ = blocking(
            move || {
                let now = now_ms();
                for t in all {
                    if !t.config.log.cleanup_policy.compact {
                        continue;
                    }
                    for p in &t.partitions {
                        match p.with_log_mut(|log| clean_partition(log, dedupe_buffer_bytes, now)) {
                            Ok(true) => tracing::debug!(partition = %p.name(), "cleaned"),
                            Ok(false) => {}
                            Err(e) => {
                                tracing::warn!(partition = %p.name(), error = %e, "cleaner failed")
                            }
                        }
                    }
                }
                Ok(())
            },
            "cleaner",
        )
        .await;
    }
}
