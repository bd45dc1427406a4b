//! Refreshes the metrics snapshot (group lag, offsets, members, state; per-partition
//! offsets and sizes) every `metrics.lag_refresh_interval_ms`, first right at start.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::coordinator::Coordinator;
use crate::metrics::{collect, snapshot, Exporter};
use crate::partition::blocking;
use crate::topics::Topics;

/// Runs until shutdown.
pub async fn run(
    exporter: Exporter,
    topics: Topics,
    groups: Coordinator,
    every: Duration,
    max_partition_series: usize,
    shutdown: CancellationToken,
) {
    let mut interval = super::interval(every);
    loop {
        let (t, g) = (topics.clone(), groups.clone());
        let text = blocking(
            move || {
                let s = collect::snapshot(&t, &g, max_partition_series);
                Ok(snapshot::render(&s))
            },
            "metrics refresh",
        )
        .await;
        if let Ok(text) = text {
            exporter.publish(text);
        }
        if !super::tick(&mut interval, &shutdown).await {
            return;
        }
    }
}
