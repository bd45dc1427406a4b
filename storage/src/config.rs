//! Per-partition log configuration (Kafka's topic-level log settings).

use weir_protocol::batch::TimestampType;

use crate::error::{Error, Result};

/// `cleanup.policy`: delete old segments, compact by key, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupPolicy {
    /// Retention by time and size deletes whole segments.
    pub delete: bool,
    /// The cleaner keeps the latest record per key.
    pub compact: bool,
}

impl Default for CleanupPolicy {
    fn default() -> Self {
        CleanupPolicy {
            delete: true,
            compact: false,
        }
    }
}

impl CleanupPolicy {
    /// Parses Kafka's comma-separated list, e.g. `"compact,delete"`.
    pub fn parse(s: &str) -> Result<CleanupPolicy> {
        let mut p = CleanupPolicy {
            delete: false,
            compact: false,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "delete" => p.delete = true,
                "compact" => p.compact = true,
                other => {
                    return Err(Error::InvalidConfig(format!(
                        "unknown cleanup.policy {other:?}"
                    )))
                }
            }
        }
        if !p.delete && !p.compact {
            return Err(Error::InvalidConfig("empty cleanup.policy".into()));
        }
        Ok(p)
    }
}

impl std::fmt::Display for CleanupPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.compact, self.delete) {
            (true, true) => f.write_str("compact,delete"),
            (true, false) => f.write_str("compact"),
            _ => f.write_str("delete"),
        }
    }
}

/// Settings of one partition log. Defaults are Kafka's.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`: roll when the active segment would exceed this.
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the active segment spans more time than this.
    pub segment_ms: i64,
    /// `segment.index.bytes`: size each index file is preallocated to.
    pub segment_index_bytes: u32,
    /// `index.interval.bytes`: bytes between sparse index entries.
    pub index_interval_bytes: u32,
    /// `retention.ms`; -1 keeps forever.
    pub retention_ms: i64,
    /// `retention.bytes`; -1 means no size limit.
    pub retention_bytes: i64,
    /// `cleanup.policy`.
    pub cleanup_policy: CleanupPolicy,
    /// `flush.messages`: fsync after this many unflushed records.
    pub flush_messages: u64,
    /// `flush.ms`: fsync when the oldest unflushed data is this old (see `Log::maybe_flush`).
    pub flush_ms: i64,
    /// `max.message.bytes`: largest batch accepted.
    pub max_message_bytes: u32,
    /// `message.timestamp.type`: LogAppendTime makes the log stamp batches at append.
    pub message_timestamp_type: TimestampType,
    /// `delete.retention.ms`: how long tombstones survive compaction.
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`: records younger than this are not compacted.
    pub min_compaction_lag_ms: i64,
    /// `min.cleanable.dirty.ratio`.
    pub min_cleanable_dirty_ratio: f64,
    /// `preallocate`: extend new `.log` files to `segment_bytes` up front.
    pub preallocate: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            segment_index_bytes: 10 * 1024 * 1024,
            index_interval_bytes: 4096,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: -1,
            cleanup_policy: CleanupPolicy::default(),
            flush_messages: u64::MAX,
            flush_ms: i64::MAX,
            max_message_bytes: 1024 * 1024 + 12,
            message_timestamp_type: TimestampType::CreateTime,
            delete_retention_ms: 24 * 3600 * 1000,
            min_compaction_lag_ms: 0,
            min_cleanable_dirty_ratio: 0.5,
            preallocate: false,
        }
    }
}

impl LogConfig {
    /// Rejects values the log cannot work with.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::InvalidConfig(m.to_string()));
        if self.segment_bytes < 14 {
            return bad("segment.bytes must be at least 14");
        }
        if self.segment_ms < 1 {
            return bad("segment.ms must be positive");
        }
        if self.segment_index_bytes < 4 * 12 {
            return bad("segment.index.bytes must hold at least 4 entries");
        }
        if self.flush_messages == 0 {
            return bad("flush.messages must be at least 1");
        }
        if !(0.0..=1.0).contains(&self.min_cleanable_dirty_ratio) {
            return bad("min.cleanable.dirty.ratio must lie in [0, 1]");
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn parses_cleanup_policies() {
        let p = CleanupPolicy::parse("compact,delete").ok();
        assert_eq!(
            p,
            Some(CleanupPolicy {
                delete: true,
                compact: true
            })
        );
        assert_eq!(
            CleanupPolicy::parse("compact").map(|p| p.to_string()).ok(),
            Some("compact".to_string())
        );
        assert!(CleanupPolicy::parse("shred").is_err());
        assert!(CleanupPolicy::parse("").is_err());
    }

    #[test]
    fn defaults_are_valid() {
        assert!(LogConfig::default().validate().is_ok());
        let c = LogConfig {
            segment_index_bytes: 8,
            ..LogConfig::default()
        };
        assert!(c.validate().is_err());
    }
}
