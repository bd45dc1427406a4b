//! The reassignment throttle: a token bucket per throttled partition on the follower that
//! fetches it (bytes per second, at most one second of burst). Pure: time is passed in.

use std::time::Instant;

/// One partition's allowance.
#[derive(Debug, Clone)]
pub struct Bucket {
    rate: u64,
    /// May go below zero: a fetch returns at least one whole batch, which can be larger
    /// than the allowance; the debt is paid back before the next fetch.
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket for `rate` bytes/s.
    pub fn new(rate: u64, now: Instant) -> Self {
        Bucket {
            rate,
            tokens: rate as f64,
            at: now,
        }
    }

    /// The configured rate.
    pub fn rate(&self) -> u64 {
        self.rate
    }

    fn refill(&mut self, now: Instant) {
        let secs = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + secs * self.rate as f64).min(self.rate as f64);
    }

    /// Bytes the partition may fetch now (0: skip it this round).
    pub fn allowance(&mut self, now: Instant) -> i32 {
        self.refill(now);
        if self.tokens < 1.0 {
            0
        } else {
            i32::try_from(self.tokens as u64).unwrap_or(i32::MAX)
        }
    }

    /// `bytes` were fetched.
    pub fn spend(&mut self, bytes: usize, now: Instant) {
        self.refill(now);
        self.tokens -= bytes as f64;
    }

    /// How long until the allowance is positive again.
    pub fn wait(&self) -> std::time::Duration {
        if self.tokens >= 1.0 || self.rate == 0 {
            return std::time::Duration::ZERO;
        }
        std::time::Duration::from_secs_f64((1.0 - self.tokens) / self.rate as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_allows_its_rate_per_second_and_pays_back_overdrafts() {
        let t0 = Instant::now();
        let mut b = Bucket::new(1000, t0);
        assert_eq!(b.allowance(t0), 1000);
        b.spend(3000, t0);
        assert_eq!(b.allowance(t0), 0);
        assert_eq!(b.wait(), Duration::from_secs_f64(2.001));
        // Two seconds later the debt of 2000 is paid: nothing yet.
        assert_eq!(b.allowance(t0 + Duration::from_secs(2)), 0);
        assert_eq!(b.allowance(t0 + Duration::from_millis(2500)), 500);
        // Never more than one second of burst.
        assert_eq!(b.allowance(t0 + Duration::from_secs(60)), 1000);
    }
}
