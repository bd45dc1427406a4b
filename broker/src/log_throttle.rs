//! Rate limits for log lines a client can repeat at will (a producer retrying against a
//! full disk logged 189 identical warnings in two minutes): the first line of a burst is
//! logged, later ones within the interval are counted and reported with the next line.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One throttled log site.
#[derive(Debug)]
pub struct Throttle {
    interval: Duration,
    last: Mutex<Option<Instant>>,
    suppressed: AtomicU64,
}

impl Throttle {
    /// A site that logs at most once per `interval`.
    pub const fn new(interval: Duration) -> Self {
        Throttle {
            interval,
            last: Mutex::new(None),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(n)` when the caller should log now, `n` being how many lines were suppressed
    /// since the last one; `None` when it should stay quiet (counted).
    pub fn allow(&self, now: Instant) -> Option<u64> {
        let mut last = match self.last.lock() {
            Ok(g) => g,
            // A panic elsewhere while holding this lock must not silence the logs.
            Err(poisoned) => poisoned.into_inner(),
        };
        match *last {
            Some(t) if now.saturating_duration_since(t) < self.interval => {
                self.suppressed.fetch_add(1, Ordering::Relaxed);
                None
            }
            _ => {
                *last = Some(now);
                Some(self.suppressed.swap(0, Ordering::Relaxed))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn first_of_a_burst_logs_then_counts_until_the_interval_passes() {
        let t = Throttle::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(t.allow(t0), Some(0));
        assert_eq!(t.allow(t0 + Duration::from_secs(1)), None);
        assert_eq!(t.allow(t0 + Duration::from_secs(9)), None);
        assert_eq!(t.allow(t0 + Duration::from_secs(10)), Some(2));
        assert_eq!(t.allow(t0 + Duration::from_secs(11)), None);
        assert_eq!(t.allow(t0 + Duration::from_secs(30)), Some(1));
    }
}
