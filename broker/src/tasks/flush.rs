//! Flush scheduler: fsyncs partitions whose unflushed data is older than `flush.ms`.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::clock::now_ms;
use crate::partition::blocking;
use crate::topics::Topics;

/// Checks every `every` until shutdown.
pub async fn run(topics: Topics, every: Duration, shutdown: CancellationToken) {
    let mut interval = super::interval(every);
    while super::tick(&mut interval, &shutdown).await {
        let all = topics.all();
        let _ = blocking(
            move || {
                let now = now_ms();
                for t in all {
                    if t.config.log.flush_ms == i64::MAX {
                        continue;
                    }
                    for p in t.hosted() {
                        if let Err(e) = p.with_log_mut(|log| log.maybe_flush(now)) {
                            tracing::error!(partition = %p.name(), error = %e, "flush failed");
                        }
                    }
                }
                Ok(())
            },
            "flush",
        )
        .await;
    }
}
