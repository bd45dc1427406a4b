//! The one error-code enum every API shares. Numbers equal Kafka's (apache/kafka
//! `Errors.java`), so the future Kafka listener forwards them unchanged.
//!
//! Rule: a number, once given a meaning, keeps it forever. Codes Weir does not use yet are
//! simply absent; an unknown number read from the wire maps to [`ErrorCode::Unknown`].

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $name:ident = $num:literal, $retriable:literal, $msg:literal; )*) => {
        /// A protocol error code (Kafka's numbering).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(i16)]
        pub enum ErrorCode {
            $( $(#[$doc])* $name = $num, )*
        }

        impl ErrorCode {
            /// Every code this enum knows, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[ $( ErrorCode::$name, )* ];

            /// The code for a wire number; numbers Weir does not know become `Unknown`.
            pub fn from_i16(n: i16) -> ErrorCode {
                match n {
                    $( $num => ErrorCode::$name, )*
                    _ => ErrorCode::Unknown,
                }
            }

            /// Whether a client may retry the same request and expect it to succeed later
            /// (Kafka's `RetriableException` classification).
            pub fn is_retriable(self) -> bool {
                match self { $( ErrorCode::$name => $retriable, )* }
            }

            /// A short human-readable description.
            pub fn message(self) -> &'static str {
                match self { $( ErrorCode::$name => $msg, )* }
            }

            /// Kafka's SCREAMING_SNAKE name of the code.
            pub fn name(self) -> &'static str {
                match self { $( ErrorCode::$name => stringify!($name), )* }
            }
        }
    };
}

error_codes! {
    /// Unexpected server failure (last resort).
    Unknown = -1, false, "unexpected server error";
    /// Success.
    None = 0, false, "no error";
    /// Fetch offset below the log start or above the log end.
    OffsetOutOfRange = 1, false, "offset out of range";
    /// Batch CRC mismatch or malformed batch.
    CorruptMessage = 2, true, "corrupt message (CRC or structure)";
    /// Topic or partition does not exist.
    UnknownTopicOrPartition = 3, true, "unknown topic or partition";
    /// Requested fetch size is invalid.
    InvalidFetchSize = 4, false, "invalid fetch size";
    /// No leader right now (e.g. topic being created).
    LeaderNotAvailable = 5, true, "leader not available";
    /// This broker does not lead the partition.
    NotLeaderOrFollower = 6, true, "not the leader for that partition";
    /// The request did not complete within its timeout.
    RequestTimedOut = 7, true, "request timed out";
    /// Broker not available.
    BrokerNotAvailable = 8, false, "broker not available";
    /// A replica is offline.
    ReplicaNotAvailable = 9, true, "replica not available";
    /// A batch exceeds max.message.bytes.
    MessageTooLarge = 10, false, "message larger than max.message.bytes";
    /// Committed offset metadata too large.
    OffsetMetadataTooLarge = 12, false, "offset metadata too large";
    /// Network problem (client side).
    NetworkException = 13, true, "network exception";
    /// Group state still loading.
    CoordinatorLoadInProgress = 14, true, "coordinator load in progress";
    /// Coordinator not available.
    CoordinatorNotAvailable = 15, true, "coordinator not available";
    /// Not the coordinator for this group.
    NotCoordinator = 16, true, "not the coordinator";
    /// Illegal topic name.
    InvalidTopicException = 17, false, "invalid topic name";
    /// Produce request too large.
    RecordListTooLarge = 18, false, "record list too large";
    /// Too few in-sync replicas; rejected before append.
    NotEnoughReplicas = 19, true, "not enough in-sync replicas";
    /// Appended, but the in-sync set shrank before the acknowledgement.
    NotEnoughReplicasAfterAppend = 20, true, "not enough in-sync replicas after append";
    /// acks outside {-1, 0, 1}.
    InvalidRequiredAcks = 21, false, "invalid required acks";
    /// Generation mismatch.
    IllegalGeneration = 22, false, "illegal generation";
    /// No common group protocol.
    InconsistentGroupProtocol = 23, false, "inconsistent group protocol";
    /// Empty or invalid group id.
    InvalidGroupId = 24, false, "invalid group id";
    /// Member not in group.
    UnknownMemberId = 25, false, "unknown member id";
    /// Session timeout out of bounds.
    InvalidSessionTimeout = 26, false, "invalid session timeout";
    /// Group is rebalancing.
    RebalanceInProgress = 27, false, "rebalance in progress";
    /// Commit request too large.
    InvalidCommitOffsetSize = 28, false, "invalid commit offset size";
    /// Topic ACL denial.
    TopicAuthorizationFailed = 29, false, "topic authorization failed";
    /// Group ACL denial.
    GroupAuthorizationFailed = 30, false, "group authorization failed";
    /// Cluster ACL denial.
    ClusterAuthorizationFailed = 31, false, "cluster authorization failed";
    /// Record timestamp outside the allowed window.
    InvalidTimestamp = 32, false, "invalid timestamp";
    /// API or version not supported.
    UnsupportedVersion = 35, false, "unsupported API or version";
    /// Topic already exists.
    TopicAlreadyExists = 36, false, "topic already exists";
    /// Invalid partition count.
    InvalidPartitions = 37, false, "invalid partition count";
    /// Invalid replication factor.
    InvalidReplicationFactor = 38, false, "invalid replication factor";
    /// Invalid replica assignment.
    InvalidReplicaAssignment = 39, false, "invalid replica assignment";
    /// Invalid config key or value.
    InvalidConfig = 40, false, "invalid config";
    /// Not the controller.
    NotController = 41, true, "not the controller";
    /// Semantically invalid request.
    InvalidRequest = 42, false, "invalid request";
    /// Feature needs a newer message format.
    UnsupportedForMessageFormat = 43, false, "unsupported for message format";
    /// A policy rejected the request.
    PolicyViolation = 44, false, "policy violation";
    /// Idempotent sequence gap, or a new epoch not starting at 0.
    OutOfOrderSequenceNumber = 45, false, "out of order sequence number";
    /// Legacy duplicate-sequence error.
    DuplicateSequenceNumber = 46, false, "duplicate sequence number";
    /// Producer epoch older than the current one (fenced).
    InvalidProducerEpoch = 47, false, "invalid producer epoch";
    /// Transaction state invalid.
    InvalidTxnState = 48, false, "invalid transaction state";
    /// Producer id not mapped to the transactional id.
    InvalidProducerIdMapping = 49, false, "invalid producer id mapping";
    /// Transaction timeout invalid.
    InvalidTransactionTimeout = 50, false, "invalid transaction timeout";
    /// Transaction coordinator busy.
    ConcurrentTransactions = 51, true, "concurrent transactions";
    /// Disk or log failure for the partition.
    KafkaStorageError = 56, true, "storage error";
    /// Log directory not found.
    LogDirNotFound = 57, false, "log directory not found";
    /// Broker has no state for this producer id.
    UnknownProducerId = 59, false, "unknown producer id";
    /// Group is not empty.
    NonEmptyGroup = 68, false, "group is not empty";
    /// Group does not exist.
    GroupIdNotFound = 69, false, "group id not found";
    /// Fetch session not found.
    FetchSessionIdNotFound = 70, true, "fetch session id not found";
    /// Fetch session epoch invalid.
    InvalidFetchSessionEpoch = 71, true, "invalid fetch session epoch";
    /// Client leader epoch older than the broker's.
    FencedLeaderEpoch = 74, true, "fenced leader epoch";
    /// Client leader epoch newer than the broker's.
    UnknownLeaderEpoch = 75, true, "unknown leader epoch";
    /// Compression type not supported.
    UnsupportedCompressionType = 76, false, "unsupported compression type";
    /// Offset not available (leader change).
    OffsetNotAvailable = 78, true, "offset not available";
    /// Rejoin with the member id given in the response.
    MemberIdRequired = 79, false, "member id required";
    /// Group is full.
    GroupMaxSizeReached = 81, false, "group max size reached";
    /// Static member replaced by another instance.
    FencedInstanceId = 82, false, "fenced instance id";
    /// Cancelling a reassignment that is not running.
    NoReassignmentInProgress = 85, false, "no reassignment in progress";
    /// Batch structure violation.
    InvalidRecord = 87, false, "invalid record";
    /// Offsets pending in a transaction.
    UnstableOffsetCommit = 88, true, "unstable offset commit";
    /// Quota exceeded.
    ThrottlingQuotaExceeded = 89, true, "throttling quota exceeded";
    /// Producer fenced by a newer instance.
    ProducerFenced = 90, false, "producer fenced";
    /// Unknown topic id.
    UnknownTopicId = 100, true, "unknown topic id";
    /// A partition change was based on an older partition epoch.
    InvalidUpdateVersion = 95, false, "invalid update version";
    /// A proposed ISR member is fenced or not a replica.
    IneligibleReplica = 107, false, "ineligible replica";
    /// A consumer-group (KIP-848) member's epoch is not the coordinator's: it must rejoin
    /// with epoch 0.
    FencedMemberEpoch = 110, false, "fenced member epoch";
    /// A static member's instance id is still held by another member.
    UnreleasedInstanceId = 111, false, "unreleased instance id";
    /// The server-side assignor a consumer-group member asked for does not exist.
    UnsupportedAssignor = 112, false, "unsupported assignor";
    /// An OffsetCommit carried an older member epoch than the member's current one.
    StaleMemberEpoch = 113, false, "stale member epoch";
}

impl ErrorCode {
    /// The wire number.
    pub fn code(self) -> i16 {
        self as i16
    }

    /// The wire number as the `int32` the native protocol carries.
    pub fn as_i32(self) -> i32 {
        i32::from(self as i16)
    }

    /// The code for an `int32` wire field; out-of-range numbers become `Unknown`.
    pub fn from_i32(n: i32) -> ErrorCode {
        i16::try_from(n).map_or(ErrorCode::Unknown, ErrorCode::from_i16)
    }

    /// `true` for [`ErrorCode::None`].
    pub fn is_ok(self) -> bool {
        self == ErrorCode::None
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.name(), self.code(), self.message())
    }
}

impl From<ErrorCode> for i32 {
    fn from(c: ErrorCode) -> i32 {
        c.as_i32()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_number() {
        for &c in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_i16(c.code()), c, "{c}");
            assert_eq!(ErrorCode::from_i32(c.as_i32()), c);
        }
    }

    #[test]
    fn numbers_are_unique_and_match_kafka() {
        let mut seen = std::collections::HashSet::new();
        for &c in ErrorCode::ALL {
            assert!(seen.insert(c.code()), "duplicate number {}", c.code());
        }
        assert_eq!(ErrorCode::None.code(), 0);
        assert_eq!(ErrorCode::OffsetOutOfRange.code(), 1);
        assert_eq!(ErrorCode::CorruptMessage.code(), 2);
        assert_eq!(ErrorCode::UnknownTopicOrPartition.code(), 3);
        assert_eq!(ErrorCode::MessageTooLarge.code(), 10);
        assert_eq!(ErrorCode::InvalidTopicException.code(), 17);
        assert_eq!(ErrorCode::UnsupportedVersion.code(), 35);
        assert_eq!(ErrorCode::InvalidPartitions.code(), 37);
        assert_eq!(ErrorCode::OutOfOrderSequenceNumber.code(), 45);
        assert_eq!(ErrorCode::InvalidProducerEpoch.code(), 47);
        assert_eq!(ErrorCode::MemberIdRequired.code(), 79);
        assert_eq!(ErrorCode::ProducerFenced.code(), 90);
    }

    #[test]
    fn unknown_numbers_map_to_unknown() {
        assert_eq!(ErrorCode::from_i16(11), ErrorCode::Unknown);
        assert_eq!(ErrorCode::from_i32(70_000), ErrorCode::Unknown);
    }

    #[test]
    fn retriable_flags_follow_kafka() {
        assert!(ErrorCode::UnknownTopicOrPartition.is_retriable());
        assert!(ErrorCode::NotLeaderOrFollower.is_retriable());
        assert!(!ErrorCode::OffsetOutOfRange.is_retriable());
        assert!(!ErrorCode::MessageTooLarge.is_retriable());
    }
}
