//! How current this broker's metadata is known to be: the broker's lease on what its
//! image says it leads, for answers that must not come from a broker the cluster has
//! already moved on from (the group coordinator's).
//!
//! The controller fences a broker whose heartbeats stopped for a session timeout, and only
//! then moves its leaderships. A heartbeat the quorum's leader answered at time T (sent at
//! T or later, by the same clock on this machine or a close one) therefore keeps this
//! broker's leaderships valid until `sent + session timeout`, provided the image has
//! applied at least what the quorum leader had applied when it answered. A broker cut off
//! from the quorum (isolated, paused) loses the lease and stops answering as coordinator,
//! instead of serving offsets from a cache that the new coordinator has moved past.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// When the last answered heartbeat was sent, and what the quorum leader had applied.
type Grant = Option<(Instant, u64)>;

/// Shared by the membership loop (which renews it) and the readers.
#[derive(Debug, Clone)]
pub struct Lease {
    inner: Option<Arc<Mutex<Grant>>>,
    length: Duration,
}

impl Lease {
    /// A lease that never expires: a single node has nobody to lose leadership to.
    pub fn forever() -> Lease {
        Lease {
            inner: None,
            length: Duration::MAX,
        }
    }

    /// A lease of `length` (the broker session timeout), not yet granted.
    pub fn new(length: Duration) -> Lease {
        Lease {
            inner: Some(Arc::new(Mutex::new(None))),
            length,
        }
    }

    /// A heartbeat sent at `sent` was answered by the quorum leader, which had applied
    /// metadata up to `leader_applied`.
    pub fn renew(&self, sent: Instant, leader_applied: u64) {
        if let Some(m) = &self.inner {
            let mut g = m.lock().unwrap_or_else(|p| p.into_inner());
            if g.is_none_or(|(at, _)| sent >= at) {
                *g = Some((sent, leader_applied));
            }
        }
    }

    /// Whether the lease holds now for an image that applied up to `applied`.
    pub fn holds(&self, applied: u64) -> bool {
        self.holds_at(Instant::now(), applied)
    }

    fn holds_at(&self, now: Instant, applied: u64) -> bool {
        let Some(m) = &self.inner else {
            return true;
        };
        let g = m.lock().unwrap_or_else(|p| p.into_inner());
        g.is_some_and(|(sent, index)| now.duration_since(sent) < self.length && applied >= index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lease_holds_for_a_session_after_a_heartbeat_and_once_caught_up() {
        let lease = Lease::new(Duration::from_millis(1500));
        let t0 = Instant::now();
        assert!(!lease.holds_at(t0, 100), "no heartbeat answered yet");
        lease.renew(t0, 100);
        assert!(
            !lease.holds_at(t0, 99),
            "behind what the leader had applied"
        );
        assert!(lease.holds_at(t0 + Duration::from_millis(1499), 100));
        assert!(
            !lease.holds_at(t0 + Duration::from_millis(1500), 100),
            "expired"
        );
        // An older heartbeat answered late does not move the lease back.
        lease.renew(t0 - Duration::from_secs(1), 50);
        assert!(lease.holds_at(t0 + Duration::from_millis(1000), 100));
        assert!(Lease::forever().holds(0));
    }
}
