//! Consumer lag: how far a group's committed offset trails the partition's end.

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
}

#[cfg(test)]
mod tests {
    use super::lag;

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
