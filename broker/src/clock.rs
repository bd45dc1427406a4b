//! The wall clock, in one place so the coordinator, partitions and handlers share it
//! without depending on the request context.

/// Wall-clock milliseconds since the epoch (timestamps in batches, retention, sessions).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
