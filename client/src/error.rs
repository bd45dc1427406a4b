//! The one error type of the client. Every message says what to do about it; retriable
//! errors are those a later attempt of the same operation can cure.

use weir_protocol::ErrorCode;

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the client.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// No bootstrap server given.
    #[error("no bootstrap servers configured; pass HOST:PORT (e.g. --bootstrap 127.0.0.1:9292)")]
    NoBootstrap,
    /// A TCP connect failed.
    #[error("cannot connect to {addr}: {reason}; check that the broker is running and the address is right")]
    Connect {
        /// Target address.
        addr: String,
        /// OS error text.
        reason: String,
    },
    /// An established connection broke; requests on it may or may not have been applied.
    #[error("connection to {addr} lost: {reason}; the request is retried where that is safe")]
    ConnectionLost {
        /// Broker address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// No response within the request timeout.
    #[error("no response from {addr} within {ms} ms; the broker may be overloaded or stuck, raise request_timeout or check it")]
    Timeout {
        /// Broker address.
        addr: String,
        /// The timeout.
        ms: u64,
    },
    /// The broker answered with an error code.
    #[error("{context}: broker returned {code}{}; {}", detail(.message), hint(*.code))]
    Broker {
        /// The code.
        code: ErrorCode,
        /// What was being done (topic/partition or operation).
        context: String,
        /// The broker's message, if any.
        message: String,
    },
    /// The broker said something this client does not understand.
    #[error(
        "protocol error talking to {addr}: {reason}; client and broker versions may not match"
    )]
    Protocol {
        /// Broker address.
        addr: String,
        /// What was wrong.
        reason: String,
    },
    /// The topic does not exist.
    #[error("topic '{0}' does not exist; create it with `weir topic create {0} --partitions N`")]
    UnknownTopic(String),
    /// The partition does not exist.
    #[error("partition {partition} of topic '{topic}' does not exist (it has {count}); pick 0..{count} or add partitions")]
    UnknownPartition {
        /// Topic.
        topic: String,
        /// Requested partition.
        partition: i32,
        /// Partition count.
        count: i32,
    },
    /// No broker leads the partition right now.
    #[error("no leader for {topic}-{partition}; the broker may be starting, retry shortly")]
    NoLeader {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
    },
    /// Invalid settings or arguments.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A record batch could not be built or decoded.
    #[error("record batch error: {0}; the data is corrupt or uses an unsupported feature")]
    Batch(String),
    /// A record exceeds what the producer can ever buffer.
    #[error("record of {size} bytes exceeds {limit} bytes; raise batch_size/buffer_memory or send smaller records")]
    RecordTooLarge {
        /// Record size estimate.
        size: usize,
        /// Limit.
        limit: usize,
    },
    /// A record was not acknowledged within the delivery timeout.
    #[error("record not acknowledged within {ms} ms (last error: {last}); check the broker, or raise delivery_timeout")]
    DeliveryTimeout {
        /// The delivery timeout.
        ms: u64,
        /// The last attempt's failure.
        last: Box<Error>,
    },
    /// A flush (or close) did not finish within its timeout.
    #[error("{pending_batches} batches still unacknowledged after {ms} ms; the broker is slow or unreachable: wait longer, or check the delivery futures")]
    FlushTimeout {
        /// The timeout.
        ms: u64,
        /// Batches still buffered or in flight.
        pending_batches: usize,
    },
    /// An operation with a caller-given timeout did not finish in time.
    #[error("{operation} did not finish within {ms} ms; the broker is slow or unreachable")]
    TimedOut {
        /// What timed out ("close", ...).
        operation: &'static str,
        /// The timeout.
        ms: u64,
    },
    /// The producer's buffer memory is used up and the config says not to wait (longer).
    #[error("producer buffer memory ({limit} bytes) is full{}; the broker is slower than the producer: wait for deliveries, raise buffer_memory or max_block", waited_for(*.waited_ms))]
    BufferFull {
        /// buffer_memory.
        limit: usize,
        /// How long the send waited (0 with [`crate::BufferFull::Fail`]).
        waited_ms: u64,
    },
    /// The consumer's position is outside the log and the reset policy is `Error`.
    #[error("offset {offset} is out of range for {topic}-{partition}; seek to a valid offset or use reset policy earliest/latest")]
    OffsetOutOfRange {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Requested offset.
        offset: i64,
    },
    /// The producer or consumer was closed before the operation finished.
    #[error("client closed before the operation finished; keep it alive until futures complete (call flush())")]
    Closed,
}

fn waited_for(ms: u64) -> String {
    if ms == 0 {
        String::new()
    } else {
        format!(" after waiting {ms} ms")
    }
}

fn detail(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(" ({message})")
    }
}

fn hint(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::TopicAlreadyExists => "choose another name or delete the topic first",
        ErrorCode::UnknownTopicOrPartition => "create the topic first or check its name",
        ErrorCode::InvalidTopicException => "use 1-249 characters of [a-zA-Z0-9._-]",
        ErrorCode::InvalidPartitions => "use a partition count above the current one",
        ErrorCode::InvalidConfig => "check the config key and value",
        ErrorCode::MessageTooLarge | ErrorCode::RecordListTooLarge => {
            "send smaller records or raise max.message.bytes"
        }
        ErrorCode::OutOfOrderSequenceNumber => {
            "the broker lost track of this producer's sequence; restart the producer"
        }
        ErrorCode::InvalidProducerEpoch | ErrorCode::ProducerFenced => {
            "another producer instance took over; restart this one"
        }
        ErrorCode::UnsupportedVersion => "upgrade the broker or the client",
        ErrorCode::OffsetOutOfRange => "seek to an offset inside the log",
        ErrorCode::UnknownMemberId | ErrorCode::IllegalGeneration => {
            "the group rebalanced without this member; poll again to rejoin, then commit again"
        }
        ErrorCode::RebalanceInProgress => "the group is rebalancing; poll again to rejoin, then retry",
        ErrorCode::NonEmptyGroup => {
            "stop the group's consumers first (`weir group describe GROUP` lists them)"
        }
        ErrorCode::GroupIdNotFound => "check the group id (`weir group list` shows the groups)",
        ErrorCode::InvalidGroupId => "use a non-empty group id",
        ErrorCode::InvalidSessionTimeout => {
            "choose a session timeout within the broker's groups.min_session_timeout_ms..max_session_timeout_ms"
        }
        ErrorCode::InconsistentGroupProtocol => {
            "every member of a group must use protocol type \"consumer\" and a common assignor"
        }
        ErrorCode::FencedInstanceId => {
            "another consumer uses the same group instance id; give each instance its own"
        }
        ErrorCode::GroupMaxSizeReached => {
            "the group is full; raise groups.max_size on the broker or use another group"
        }
        ErrorCode::OffsetMetadataTooLarge => "use a shorter commit metadata string",
        c if c.is_retriable() => "retrying may help",
        _ => "see the broker log for details",
    }
}

impl Error {
    /// Whether retrying the same operation later may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Connect { .. }
            | Error::ConnectionLost { .. }
            | Error::Timeout { .. }
            | Error::NoLeader { .. } => true,
            Error::Broker { code, .. } => code.is_retriable(),
            _ => false,
        }
    }

    /// The broker error code, if this error carries one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Broker { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether the cached metadata is probably stale after this error.
    pub fn invalidates_metadata(&self) -> bool {
        match self {
            // A timeout too: the leader may be paused or cut off while the cluster has
            // already moved its partitions (Kafka's clients refresh metadata on a request
            // timeout as well); without it, retries go to the stale leader until it answers.
            Error::Connect { .. }
            | Error::ConnectionLost { .. }
            | Error::NoLeader { .. }
            | Error::Timeout { .. } => true,
            Error::Broker { code, .. } => matches!(
                code,
                ErrorCode::NotLeaderOrFollower
                    | ErrorCode::UnknownTopicOrPartition
                    | ErrorCode::LeaderNotAvailable
                    | ErrorCode::FencedLeaderEpoch
                    | ErrorCode::UnknownLeaderEpoch
            ),
            _ => false,
        }
    }

    /// An error for a non-zero code; `Ok` for NONE.
    pub fn check(code: i32, context: impl FnOnce() -> String, message: &str) -> Result<()> {
        let code = ErrorCode::from_i32(code);
        if code.is_ok() {
            return Ok(());
        }
        Err(Error::Broker {
            code,
            context: context(),
            message: message.to_owned(),
        })
    }
}

impl From<weir_protocol::batch::BatchError> for Error {
    fn from(e: weir_protocol::batch::BatchError) -> Self {
        Error::Batch(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retriable_classification() {
        let b = |code| Error::Broker {
            code,
            context: "t-0".into(),
            message: String::new(),
        };
        assert!(b(ErrorCode::NotLeaderOrFollower).is_retriable());
        assert!(!b(ErrorCode::OutOfOrderSequenceNumber).is_retriable());
        assert!(Error::Timeout {
            addr: "a".into(),
            ms: 1
        }
        .is_retriable());
        assert!(!Error::UnknownTopic("x".into()).is_retriable());
        assert!(b(ErrorCode::NotLeaderOrFollower).invalidates_metadata());
    }

    #[test]
    fn messages_say_what_to_do() {
        let e = Error::Broker {
            code: ErrorCode::TopicAlreadyExists,
            context: "create topic 'a'".into(),
            message: String::new(),
        };
        let s = e.to_string();
        assert!(
            s.contains("TOPIC_ALREADY_EXISTS") || s.contains("TopicAlreadyExists"),
            "{s}"
        );
        assert!(s.contains("choose another name"), "{s}");
    }

    #[test]
    fn group_errors_say_what_to_do() {
        for code in [
            ErrorCode::UnknownMemberId,
            ErrorCode::IllegalGeneration,
            ErrorCode::RebalanceInProgress,
            ErrorCode::NonEmptyGroup,
            ErrorCode::GroupIdNotFound,
            ErrorCode::InvalidGroupId,
            ErrorCode::InvalidSessionTimeout,
            ErrorCode::InconsistentGroupProtocol,
            ErrorCode::FencedInstanceId,
            ErrorCode::GroupMaxSizeReached,
            ErrorCode::OffsetMetadataTooLarge,
        ] {
            assert_ne!(hint(code), hint(ErrorCode::Unknown), "{code:?}");
        }
    }
}
