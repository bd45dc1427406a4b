//! Send times carried in record values, for end-to-end latency: the first 8 bytes of a
//! value are the intended send time in nanoseconds since the Unix epoch (little endian).
//! Producer and consumer may be different processes on one machine, so the wall clock is
//! the shared reference; within a process it is derived from one monotonic base so a
//! clock step cannot produce negative latencies mid-run.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Bytes of a value taken by the stamp.
pub const STAMP_LEN: usize = 8;

fn base() -> &'static (Instant, u64) {
    static BASE: OnceLock<(Instant, u64)> = OnceLock::new();
    BASE.get_or_init(|| {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        (Instant::now(), unix)
    })
}

/// `at` as nanoseconds since the Unix epoch.
pub fn unix_nanos(at: Instant) -> u64 {
    let (i0, u0) = *base();
    match at.checked_duration_since(i0) {
        Some(d) => u0 + d.as_nanos() as u64,
        None => u0.saturating_sub(i0.duration_since(at).as_nanos() as u64),
    }
}

/// Writes the stamp of `at` into the start of `value` (if it is long enough).
pub fn write(value: &mut [u8], at: Instant) {
    if let Some(head) = value.get_mut(..STAMP_LEN) {
        head.copy_from_slice(&unix_nanos(at).to_le_bytes());
    }
}

/// The stamp at the start of `value`.
pub fn read(value: &[u8]) -> Option<u64> {
    let head: [u8; STAMP_LEN] = value.get(..STAMP_LEN)?.try_into().ok()?;
    Some(u64::from_le_bytes(head))
}

/// Microseconds from the stamp to `now` (0 if the stamp is in the future).
pub fn age_micros(stamp: u64, now: Instant) -> u64 {
    unix_nanos(now).saturating_sub(stamp) / 1_000
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn stamp_round_trip_and_age() {
        let t = Instant::now();
        let mut v = vec![0u8; 20];
        write(&mut v, t);
        let s = read(&v).unwrap_or_default();
        assert_eq!(s, unix_nanos(t));
        assert_eq!(age_micros(s, t + Duration::from_micros(1500)), 1500);
        assert_eq!(read(&[1, 2, 3]), None);
        let mut short = vec![0u8; 3];
        write(&mut short, t);
        assert_eq!(short, vec![0, 0, 0]);
    }
}
