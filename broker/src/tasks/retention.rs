//! Retention: deletes whole old segments by `retention.ms` / `retention.bytes` for topics
//! whose cleanup policy includes `delete`.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::clock::now_ms;
use crate::partition::blocking;
use crate::topics::Topics;

/// Runs retention every `every` until shutdown.
pub async fn run(topics: Topics, every: Duration, shutdown: CancellationToken) {
    let mut interval = super::interval(every);
    while super::tick(&mut interval, &shutdown).await {
        let all = topics.all();
        let _ = blocking(
            move || {
                let now = now_ms();
                for t in all {
                    if !t.config.log.cleanup_policy.delete {
                        continue;
                    }
                    for p in t.hosted() {
                        match p.with_log_mut(|log| log.apply_retention(now)) {
                            Ok(_) => {}
                            Err(e) => tracing::warn!(partition = %p.name(), error = %e, "retention failed"),
                        }
                    }
                }
                Ok(())
            },
            "retention",
        )
        .await;
    }
}
