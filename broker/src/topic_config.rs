//! Topic-level settings under Kafka's dotted names (`retention.ms`, `cleanup.policy`, ...):
//! parsing overrides over the broker defaults, and rendering them for DescribeConfigs.
//! Pure functions, no I/O.

use std::collections::BTreeMap;

use weir_protocol::batch::TimestampType;

use crate::storage::{CleanupPolicy, LogConfig};

/// Everything a topic can be configured with.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicConfig {
    /// Settings the partition logs use.
    pub log: LogConfig,
    /// `min.insync.replicas` (acks=all needs this many in-sync replicas).
    pub min_insync_replicas: i32,
    /// `unclean.leader.election.enable`: with no in-sync replica alive, elect any live
    /// replica (losing what only the ISR had) rather than stay offline. Off by default.
    pub unclean_leader_election: bool,
    /// `follower.replication.throttled.rate`: bytes/s each replica that a reassignment is
    /// adding may fetch of this topic's partitions while it catches up (0: unthrottled).
    /// Kafka sets this rate per broker; here it travels with the topic being moved, and
    /// the controller removes it when the topic's last move completes.
    pub replication_throttled_rate: u64,
}

/// The reassignment throttle's key (see `TopicConfig::replication_throttled_rate`).
pub const THROTTLE_KEY: &str = "follower.replication.throttled.rate";

/// Every topic-level key Weir accepts, sorted.
pub const TOPIC_KEYS: &[&str] = &[
    "cleanup.policy",
    "delete.retention.ms",
    "flush.messages",
    "flush.ms",
    "follower.replication.throttled.rate",
    "index.interval.bytes",
    "max.message.bytes",
    "message.timestamp.type",
    "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms",
    "min.insync.replicas",
    "preallocate",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
    "segment.index.bytes",
    "segment.ms",
    "unclean.leader.election.enable",
];

/// A bad topic-level key or value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config {key}: {reason}")]
pub struct TopicConfigError {
    /// The offending key.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

/// "CreateTime" / "LogAppendTime".
pub fn parse_timestamp_type(s: &str) -> Option<TimestampType> {
    match s {
        "CreateTime" => Some(TimestampType::CreateTime),
        "LogAppendTime" => Some(TimestampType::LogAppendTime),
        _ => None,
    }
}

fn num<T: std::str::FromStr>(v: &str) -> Result<T, String> {
    v.trim()
        .parse::<T>()
        .map_err(|_| format!("{v:?} is not a valid number"))
}

fn at_least<T: PartialOrd + std::fmt::Display>(v: T, min: T) -> Result<T, String> {
    if v < min {
        Err(format!("must be >= {min}"))
    } else {
        Ok(v)
    }
}

/// Sets one key on `cfg`.
pub fn set(cfg: &mut TopicConfig, key: &str, value: &str) -> Result<(), TopicConfigError> {
    let l = &mut cfg.log;
    let r: Result<(), String> = (|| {
        match key {
            "cleanup.policy" => {
                l.cleanup_policy = CleanupPolicy::parse(value).map_err(|e| e.to_string())?
            }
            "delete.retention.ms" => l.delete_retention_ms = at_least(num(value)?, 0)?,
            "flush.messages" => l.flush_messages = at_least(num(value)?, 1)?,
            "flush.ms" => {
                let v: i64 = at_least(num(value)?, -1)?;
                l.flush_ms = if v < 0 { i64::MAX } else { v };
            }
            THROTTLE_KEY => cfg.replication_throttled_rate = num(value)?,
            "index.interval.bytes" => l.index_interval_bytes = num(value)?,
            "max.message.bytes" => l.max_message_bytes = at_least(num(value)?, 0)?,
            "message.timestamp.type" => {
                l.message_timestamp_type = parse_timestamp_type(value)
                    .ok_or_else(|| "must be CreateTime or LogAppendTime".to_string())?
            }
            "min.cleanable.dirty.ratio" => {
                let v: f64 = num(value)?;
                if !(0.0..=1.0).contains(&v) {
                    return Err("must lie in [0, 1]".into());
                }
                l.min_cleanable_dirty_ratio = v;
            }
            "min.compaction.lag.ms" => l.min_compaction_lag_ms = at_least(num(value)?, 0)?,
            "min.insync.replicas" => cfg.min_insync_replicas = at_least(num(value)?, 1)?,
            "preallocate" => {
                l.preallocate = match value {
                    "true" => true,
                    "false" => false,
                    _ => return Err("must be true or false".into()),
                }
            }
            "unclean.leader.election.enable" => {
                cfg.unclean_leader_election = match value {
                    "true" => true,
                    "false" => false,
                    _ => return Err("must be true or false".into()),
                }
            }
            "retention.bytes" => l.retention_bytes = at_least(num(value)?, -1)?,
            "retention.ms" => l.retention_ms = at_least(num(value)?, -1)?,
            "segment.bytes" => {
                let v: u64 = at_least(num(value)?, 14)?;
                if v > i32::MAX as u64 {
                    return Err(format!("must be <= {}", i32::MAX));
                }
                l.segment_bytes = v;
            }
            "segment.index.bytes" => l.segment_index_bytes = at_least(num(value)?, 48)?,
            "segment.ms" => l.segment_ms = at_least(num(value)?, 1)?,
            _ => return Err("unknown topic config key".into()),
        }
        Ok(())
    })();
    r.map_err(|reason| TopicConfigError {
        key: key.to_string(),
        reason,
    })
}

/// `defaults` with `overrides` applied; the first bad key fails the whole set.
pub fn with_overrides(
    defaults: &TopicConfig,
    overrides: &BTreeMap<String, String>,
) -> Result<TopicConfig, TopicConfigError> {
    let mut cfg = defaults.clone();
    for (k, v) in overrides {
        set(&mut cfg, k, v)?;
    }
    cfg.log.validate().map_err(|e| TopicConfigError {
        key: "(combination)".into(),
        reason: e.to_string(),
    })?;
    Ok(cfg)
}

/// The value of `key` as Kafka renders it.
pub fn get(cfg: &TopicConfig, key: &str) -> Option<String> {
    let l = &cfg.log;
    let forever = |v: i64| if v == i64::MAX { -1 } else { v };
    Some(match key {
        "cleanup.policy" => l.cleanup_policy.to_string(),
        "delete.retention.ms" => l.delete_retention_ms.to_string(),
        "flush.messages" => l.flush_messages.to_string(),
        "flush.ms" => forever(l.flush_ms).to_string(),
        THROTTLE_KEY => cfg.replication_throttled_rate.to_string(),
        "index.interval.bytes" => l.index_interval_bytes.to_string(),
        "max.message.bytes" => l.max_message_bytes.to_string(),
        "message.timestamp.type" => match l.message_timestamp_type {
            TimestampType::CreateTime => "CreateTime".into(),
            TimestampType::LogAppendTime => "LogAppendTime".into(),
        },
        "min.cleanable.dirty.ratio" => l.min_cleanable_dirty_ratio.to_string(),
        "min.compaction.lag.ms" => l.min_compaction_lag_ms.to_string(),
        "min.insync.replicas" => cfg.min_insync_replicas.to_string(),
        "preallocate" => l.preallocate.to_string(),
        "retention.bytes" => l.retention_bytes.to_string(),
        "retention.ms" => l.retention_ms.to_string(),
        "segment.bytes" => l.segment_bytes.to_string(),
        "segment.index.bytes" => l.segment_index_bytes.to_string(),
        "segment.ms" => l.segment_ms.to_string(),
        "unclean.leader.election.enable" => cfg.unclean_leader_election.to_string(),
        _ => return None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn defaults() -> TopicConfig {
        TopicConfig {
            log: LogConfig::default(),
            min_insync_replicas: 1,
            unclean_leader_election: false,
            replication_throttled_rate: 0,
        }
    }

    #[test]
    fn every_key_round_trips_through_get_and_set() {
        let d = defaults();
        for key in TOPIC_KEYS {
            let v = get(&d, key).unwrap();
            let mut c = d.clone();
            set(&mut c, key, &v).unwrap();
            assert_eq!(c, d, "{key}");
        }
    }

    #[test]
    fn bad_keys_and_values_name_the_key() {
        let mut c = defaults();
        let e = set(&mut c, "retention.mss", "1").unwrap_err();
        assert_eq!(e.key, "retention.mss");
        let e = set(&mut c, "segment.bytes", "3").unwrap_err();
        assert_eq!(e.key, "segment.bytes");
        let e = set(&mut c, "segment.bytes", "4294967296").unwrap_err();
        assert_eq!(e.key, "segment.bytes");
        assert!(set(&mut c, "cleanup.policy", "shred").is_err());
        assert!(set(&mut c, "retention.ms", "abc").is_err());
        set(&mut c, "cleanup.policy", "compact,delete").unwrap();
        assert!(c.log.cleanup_policy.compact);
    }
}
