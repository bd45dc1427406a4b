//! Background jobs, one per file, each a loop on an interval from the config that stops
//! when the shutdown token fires. Storage work runs in blocking sections.

pub mod cleaner;
pub mod flush;
pub mod metrics_refresh;
pub mod retention;

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Ticks every `every` until shutdown; `false` means stop.
pub(crate) async fn tick(
    interval: &mut tokio::time::Interval,
    shutdown: &CancellationToken,
) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = interval.tick() => true,
    }
}

/// An interval that skips missed ticks instead of bursting.
pub(crate) fn interval(every: Duration) -> tokio::time::Interval {
    let mut i = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    i
}
