//! Send pacing and the payloads sent.
//!
//! With a rate, record `i` of a producer is *intended* at `start + i / rate`; latency is
//! measured from that intended time, not from when the send actually happened, so a
//! stall of the system under test counts against every record it delayed (coordinated
//! omission corrected). Without a rate, the intended time is simply "now".

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::stamp;

/// Unpaced producers read the clock once per this many records.
pub const CLOCK_EVERY: u64 = 32;

/// Intended send times of one producer.
#[derive(Debug, Clone)]
pub struct Pacer {
    start: Instant,
    interval: Option<Duration>,
    sent: u64,
}

impl Pacer {
    /// A pacer at `rate` records/s (`None` = as fast as possible), starting at `start`.
    pub fn new(start: Instant, rate: Option<f64>) -> Self {
        let interval = rate
            .filter(|r| r.is_finite() && *r > 0.0)
            .map(|r| Duration::from_secs_f64(1.0 / r));
        Pacer {
            start,
            interval,
            sent: 0,
        }
    }

    /// Whether a rate is set.
    pub fn is_paced(&self) -> bool {
        self.interval.is_some()
    }

    /// Intended time of the next record.
    pub fn due(&self) -> Option<Instant> {
        self.interval
            .map(|iv| self.start + iv.mul_f64(self.sent as f64))
    }

    /// Counts one record as sent and returns its intended time (`now` when unpaced).
    pub fn next(&mut self, now: Instant) -> Instant {
        let at = self.due().unwrap_or(now);
        self.sent += 1;
        at
    }

    /// How long until the next record is due (zero when due or unpaced).
    pub fn wait(&self, now: Instant) -> Duration {
        self.due()
            .map_or(Duration::ZERO, |d| d.saturating_duration_since(now))
    }
}

/// Record values: a pool of distinct, moderately compressible values (lowercase letters
/// from a fixed generator, about the entropy of text), so compressed runs do not compress
/// one repeated value to nothing.
#[derive(Debug, Clone)]
pub struct Payloads {
    pool: Vec<Bytes>,
    size: usize,
}

impl Payloads {
    /// 256 values of `size` bytes.
    pub fn new(size: usize) -> Self {
        let mut seed: u32 = 0x9e37_79b9;
        let pool = (0..256)
            .map(|_| {
                let v: Vec<u8> = (0..size)
                    .map(|_| {
                        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                        b'a' + ((seed >> 16) % 26) as u8
                    })
                    .collect();
                Bytes::from(v)
            })
            .collect();
        Payloads { pool, size }
    }

    /// Value size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Value `i`, shared (no copy).
    pub fn get(&self, i: u64) -> Bytes {
        self.pool
            .get(i as usize % self.pool.len().max(1))
            .cloned()
            .unwrap_or_default()
    }

    /// Value `i` with the send-time stamp of `at` in its first bytes.
    pub fn stamped(&self, i: u64, at: Instant) -> Bytes {
        let mut v = BytesMut::from(&self.get(i)[..]);
        if v.len() < stamp::STAMP_LEN {
            v.resize(stamp::STAMP_LEN, 0);
        }
        stamp::write(&mut v, at);
        v.freeze()
    }
}

/// Splits `total` into `parts` shares that differ by at most one.
pub fn split(total: u64, parts: usize) -> Vec<u64> {
    let parts = parts.max(1) as u64;
    (0..parts)
        .map(|i| total / parts + u64::from(i < total % parts))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paced_times_follow_the_rate() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, Some(1000.0));
        assert!(p.is_paced());
        assert_eq!(p.next(t0), t0);
        assert_eq!(p.next(t0), t0 + Duration::from_millis(1));
        assert_eq!(p.wait(t0), Duration::from_millis(2));
        assert_eq!(p.wait(t0 + Duration::from_secs(1)), Duration::ZERO);
        // Late sends keep their intended time: coordinated omission is corrected.
        assert_eq!(
            p.next(t0 + Duration::from_secs(1)),
            t0 + Duration::from_millis(2)
        );
    }

    #[test]
    fn unpaced_uses_now() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, None);
        let later = t0 + Duration::from_secs(3);
        assert_eq!(p.next(later), later);
        assert_eq!(p.wait(t0), Duration::ZERO);
        assert!(!Pacer::new(t0, Some(0.0)).is_paced());
    }

    #[test]
    fn payloads_and_split() {
        let p = Payloads::new(100);
        assert_eq!(p.get(3).len(), 100);
        assert_ne!(p.get(1), p.get(2));
        let t = Instant::now();
        let s = p.stamped(5, t);
        assert_eq!(s.len(), 100);
        assert_eq!(stamp::read(&s), Some(stamp::unix_nanos(t)));
        assert_eq!(Payloads::new(4).stamped(0, t).len(), 8);
        assert_eq!(split(10, 4), vec![3, 3, 2, 2]);
        assert_eq!(split(5, 0), vec![5]);
    }
}
