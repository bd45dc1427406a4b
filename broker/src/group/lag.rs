//! Consumer lag: how far a group's committed offset trails the partition's end, in
//! records and in time.

use weir_protocol::batch::{decode_records, BatchIter, TimestampType};

/// Lag of one partition: `log_end - committed`, or `None` when it cannot be known.
///
/// - No commit: `None` (where the group would start depends on its reset policy).
/// - Committed beyond the end (the log was truncated or records deleted after the
///   commit): 0, the group has nothing left to read.
/// - Topic or partition gone (`log_end` is `None`): `None`.
pub fn lag(committed: Option<i64>, log_end: Option<i64>) -> Option<i64> {
    let (c, end) = (committed?, log_end?);
    if c < 0 {
        return None;
    }
    Some(end.saturating_sub(c).max(0))
}

/// Lag in time: how long ago the first record the group has not committed was written
/// (`now - its timestamp`), 0 when caught up, `None` when either is unknown (no commit,
/// partition gone, or the record could not be read, e.g. removed by retention meanwhile).
/// A timestamp in the future (producer clock ahead) reads as 0, never negative.
pub fn lag_ms(now_ms: i64, lag: Option<i64>, next_timestamp_ms: Option<i64>) -> Option<i64> {
    match lag? {
        l if l <= 0 => Some(0),
        _ => Some(now_ms.saturating_sub(next_timestamp_ms?).max(0)),
    }
}

/// The timestamp of the first record at or after `offset` in `batches` (whole batches as
/// the log returns them), `None` when there is none or a batch cannot be read. Only the
/// batch that holds `offset` is decoded, and only when `offset` is not its first record
/// (the header already carries that one's timestamp).
pub fn timestamp_at(batches: &[u8], offset: i64) -> Option<i64> {
    for item in BatchIter::new(batches, false) {
        let (h, bytes) = item.ok()?;
        if h.last_offset() < offset || h.is_control() {
            continue;
        }
        if h.timestamp_type() == TimestampType::LogAppendTime {
            return Some(h.max_timestamp);
        }
        if h.base_offset >= offset {
            return Some(h.base_timestamp);
        }
        let records = decode_records(bytes).ok()?;
        if let Some(r) = records.iter().find(|r| r.offset >= offset) {
            return Some(r.timestamp);
        }
    }
    None
}

/// One row of the lag report the metrics and the CLI use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LagRow {
    /// Group id.
    pub group: String,
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Committed offset.
    pub committed: i64,
    /// High watermark, or `None` if the partition no longer exists.
    pub log_end: Option<i64>,
    /// See [`lag`].
    pub lag: Option<i64>,
    /// See [`lag_ms`]; filled in by a reader of the log (the coordinator does not read logs
    /// under its lock), `None` until then.
    pub lag_ms: Option<i64>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::{lag, lag_ms, timestamp_at};
    use weir_protocol::batch::{BatchBuilder, BatchOptions, NewRecord};

    fn batch(base_offset: i64, timestamps: &[i64]) -> Vec<u8> {
        let mut b = BatchBuilder::new(BatchOptions {
            base_offset,
            ..BatchOptions::default()
        });
        for ts in timestamps {
            b.push(&NewRecord::new(*ts, None, Some(b"v"))).unwrap();
        }
        b.build().unwrap()
    }

    #[test]
    fn timestamp_of_the_first_uncommitted_record() {
        let mut log = batch(0, &[100, 110, 120]);
        log.extend(batch(3, &[200, 210]));
        assert_eq!(timestamp_at(&log, 0), Some(100));
        assert_eq!(timestamp_at(&log, 2), Some(120), "mid-batch record");
        assert_eq!(timestamp_at(&log, 3), Some(200));
        assert_eq!(timestamp_at(&log, 4), Some(210));
        assert_eq!(timestamp_at(&log, 5), None, "past the end");
        assert_eq!(timestamp_at(&log[..10], 0), None, "torn batch");
    }

    #[test]
    fn lag_in_time() {
        assert_eq!(lag_ms(1_000, Some(0), None), Some(0), "caught up");
        assert_eq!(lag_ms(1_000, Some(3), Some(400)), Some(600));
        assert_eq!(lag_ms(1_000, Some(3), Some(5_000)), Some(0), "clock skew");
        assert_eq!(lag_ms(1_000, Some(3), None), None, "record unreadable");
        assert_eq!(lag_ms(1_000, None, Some(1)), None, "no commit");
    }

    #[test]
    fn edge_cases() {
        assert_eq!(lag(Some(5), Some(12)), Some(7));
        assert_eq!(lag(Some(12), Some(12)), Some(0));
        assert_eq!(lag(None, Some(12)), None, "no commit");
        assert_eq!(
            lag(Some(20), Some(12)),
            Some(0),
            "committed above end after truncation"
        );
        assert_eq!(lag(Some(3), None), None, "deleted topic");
        assert_eq!(lag(Some(-1), Some(4)), None, "invalid commit");
        assert_eq!(lag(Some(0), Some(i64::MAX)), Some(i64::MAX));
    }
}
