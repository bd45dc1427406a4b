//! Pure parts of dead-lettering: the retry backoff, and the headers that say why and
//! from where a record was parked (written when parking, read back when redriving).

use std::time::Duration;

use bytes::Bytes;
use weir_protocol::batch::RecordHeader;

use crate::consumer::ConsumerRecord;

/// Header names on a parked record. The original key, value and headers are kept as they
/// were; these are added.
pub mod header {
    /// The handler's last error, as text.
    pub const ERROR: &str = "dlq.error";
    /// How many times the handler was tried.
    pub const ATTEMPTS: &str = "dlq.attempts";
    /// Where the record came from.
    pub const TOPIC: &str = "dlq.original.topic";
    /// Its partition there.
    pub const PARTITION: &str = "dlq.original.partition";
    /// Its offset there.
    pub const OFFSET: &str = "dlq.original.offset";
    /// Its timestamp (ms).
    pub const TIMESTAMP: &str = "dlq.original.timestamp";
    /// Prefix of every header above.
    pub const PREFIX: &str = "dlq.";
}

/// How a failing handler is retried before its record is parked.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Tries in all (the first included); at least 1.
    pub max_attempts: u32,
    /// Wait before the second try.
    pub initial_backoff: Duration,
    /// Each wait is this many times the previous one...
    pub multiplier: f64,
    /// ... up to this.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
            multiplier: 2.0,
            max_backoff: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed try number `attempt` (1-based): exponential, capped.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let secs = self.initial_backoff.as_secs_f64() * self.multiplier.max(1.0).powi(exp);
        if !secs.is_finite() || secs >= self.max_backoff.as_secs_f64() {
            self.max_backoff
        } else {
            Duration::from_secs_f64(secs.max(0.0))
        }
    }
}

/// The default dead-letter topic of `topic`.
pub fn dlq_topic(topic: &str) -> String {
    format!("{topic}.dlq")
}

fn text(key: &str, value: impl ToString) -> RecordHeader {
    RecordHeader {
        key: key.to_owned(),
        value: Some(Bytes::from(value.to_string())),
    }
}

/// The record's own headers plus the `dlq.*` ones.
pub fn parked_headers(record: &ConsumerRecord, error: &str, attempts: u32) -> Vec<RecordHeader> {
    let mut headers = record.headers.clone();
    headers.extend([
        text(header::ERROR, error),
        text(header::ATTEMPTS, attempts),
        text(header::TOPIC, &record.topic),
        text(header::PARTITION, record.partition),
        text(header::OFFSET, record.offset),
        text(header::TIMESTAMP, record.timestamp),
    ]);
    headers
}

/// What a parked record says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parked {
    /// The handler's last error.
    pub error: String,
    /// Tries made.
    pub attempts: u32,
    /// Original topic.
    pub topic: String,
    /// Original partition.
    pub partition: i32,
    /// Original offset.
    pub offset: i64,
    /// Original timestamp (ms).
    pub timestamp: i64,
}

impl Parked {
    /// The original topic and partition.
    pub fn topic_partition(&self) -> crate::consumer::TopicPartition {
        crate::consumer::TopicPartition::new(self.topic.as_str(), self.partition)
    }

    /// Reads the `dlq.*` headers; `None` when the record was not parked by this helper.
    pub fn from_record(record: &ConsumerRecord) -> Option<Parked> {
        let get = |k: &str| {
            record
                .headers
                .iter()
                .rev()
                .find(|h| h.key == k)
                .and_then(|h| h.value.as_deref())
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        Some(Parked {
            error: get(header::ERROR)?,
            attempts: get(header::ATTEMPTS)?.parse().ok()?,
            topic: get(header::TOPIC)?,
            partition: get(header::PARTITION)?.parse().ok()?,
            offset: get(header::OFFSET)?.parse().ok()?,
            timestamp: get(header::TIMESTAMP)?.parse().ok()?,
        })
    }

    /// The record's headers without the `dlq.*` ones, for redriving it as it was.
    pub fn original_headers(record: &ConsumerRecord) -> Vec<RecordHeader> {
        record
            .headers
            .iter()
            .filter(|h| !h.key.starts_with(header::PREFIX))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            multiplier: 2.0,
            max_backoff: Duration::from_millis(500),
        };
        let waits: Vec<u128> = (1..=5).map(|a| p.backoff(a).as_millis()).collect();
        assert_eq!(waits, vec![100, 200, 400, 500, 500]);
        assert_eq!(p.backoff(u32::MAX), Duration::from_millis(500));
    }

    #[test]
    fn parked_headers_round_trip_and_keep_the_originals() {
        let r = ConsumerRecord {
            topic: Arc::from("orders"),
            partition: 2,
            offset: 41,
            timestamp: 1_700_000_000_000,
            key: None,
            value: None,
            headers: vec![text("trace", "abc")],
        };
        let parked = ConsumerRecord {
            headers: parked_headers(&r, "bad input", 3),
            ..r.clone()
        };
        assert_eq!(
            Parked::from_record(&parked),
            Some(Parked {
                error: "bad input".into(),
                attempts: 3,
                topic: "orders".into(),
                partition: 2,
                offset: 41,
                timestamp: 1_700_000_000_000,
            })
        );
        assert_eq!(Parked::original_headers(&parked), r.headers);
        assert_eq!(Parked::from_record(&r), None);
        assert_eq!(dlq_topic("orders"), "orders.dlq");
    }
}
