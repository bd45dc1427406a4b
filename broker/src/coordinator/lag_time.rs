//! Lag in time needs the timestamp of each group's first uncommitted record, which means
//! reading the log; the coordinator computes lag under its table lock, so this fills the
//! time in afterwards, outside the lock.

use crate::group::lag::{lag_ms, LagRow};
use crate::topics::Topics;

/// Sets `lag_ms` on every row: 0 when caught up, else now minus the timestamp of the
/// record at the committed offset. Reads one batch per lagging partition. Blocking.
pub fn fill_lag_ms(topics: &Topics, rows: &mut [LagRow], now_ms: i64) {
    for row in rows {
        let next_ts = match row.lag {
            Some(l) if l > 0 => topics
                .partition(&row.topic, row.partition)
                .ok()
                .and_then(|p| p.timestamp_at(row.committed).ok().flatten()),
            _ => None,
        };
        row.lag_ms = lag_ms(now_ms, row.lag, next_ts);
    }
}
