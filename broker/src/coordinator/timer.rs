//! Session expiry and rebalance deadlines: one task sleeps until the earliest deadline of
//! any group (at most a second, so new groups are noticed), ticks the groups that are due,
//! and is woken early whenever a call may have moved a deadline.

use std::sync::Weak;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Coordinator, Inner};

/// Longest sleep between looks at the groups.
const MAX_SLEEP: Duration = Duration::from_secs(1);

pub(super) async fn run(inner: Weak<Inner>, shutdown: CancellationToken) {
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let coordinator = Coordinator { inner: strong };
        let now = crate::clock::now_ms();
        let next = coordinator.tick_due(now);
        let sleep = next
            .map(|d| {
                Duration::from_millis(u64::try_from(d.saturating_sub(now)).unwrap_or(0).max(1))
            })
            .unwrap_or(MAX_SLEEP)
            .min(MAX_SLEEP);
        let inner_ref = coordinator.inner.clone();
        drop(coordinator);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(sleep) => {}
            _ = inner_ref.wake.notified() => {}
        }
    }
}
