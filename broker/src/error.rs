//! The one place broker failures become protocol error codes. Every match is exhaustive
//! (no wildcard arms), so a new error variant does not compile until it has a code.

use weir_protocol::batch::BatchError;
use weir_protocol::ErrorCode;

use crate::partition::PartitionError;
use crate::storage::Error as StorageError;

/// The code a client sees for a storage failure.
pub fn storage_error_code(e: &StorageError) -> ErrorCode {
    match e {
        StorageError::RecordTooLarge { .. } => ErrorCode::MessageTooLarge,
        StorageError::InvalidBatch(b) => batch_error_code(b),
        StorageError::InvalidRecord(_) => ErrorCode::InvalidRecord,
        StorageError::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
        StorageError::OutOfOrderSequence { .. } => ErrorCode::OutOfOrderSequenceNumber,
        StorageError::InvalidProducerEpoch { .. } => ErrorCode::InvalidProducerEpoch,
        StorageError::InvalidConfig(_) => ErrorCode::InvalidConfig,
        StorageError::Io { .. }
        | StorageError::DiskFull { .. }
        | StorageError::Poisoned { .. }
        | StorageError::Corrupt { .. } => ErrorCode::KafkaStorageError,
    }
}

/// The code for a batch that failed validation.
pub fn batch_error_code(e: &BatchError) -> ErrorCode {
    match e {
        BatchError::UnknownCompression(_) => ErrorCode::UnsupportedCompressionType,
        BatchError::CountMismatch { .. }
        | BatchError::InvalidRecord(_)
        | BatchError::RecordCountMismatch { .. }
        | BatchError::OffsetDeltaOutOfOrder { .. }
        | BatchError::MissingKey { .. }
        | BatchError::InvalidControlRecord(_)
        | BatchError::DecompressedTooLarge { .. } => ErrorCode::InvalidRecord,
        BatchError::Truncated { .. }
        | BatchError::InvalidLength(_)
        | BatchError::UnsupportedMagic(_)
        | BatchError::CrcMismatch { .. }
        | BatchError::Compression { .. }
        | BatchError::MalformedRecord { .. } => ErrorCode::CorruptMessage,
        // Only the broker's own encoding can fail this way, never a client's bytes.
        BatchError::Unencodable(_) => ErrorCode::Unknown,
    }
}

/// The code for a partition failure.
pub fn partition_error_code(e: &PartitionError) -> ErrorCode {
    match e {
        PartitionError::Storage(s) => storage_error_code(s),
        // The topic was deleted under the request.
        PartitionError::Closed(_) => ErrorCode::UnknownTopicOrPartition,
        PartitionError::TimedOut(..) => ErrorCode::RequestTimedOut,
        PartitionError::Broken(_) => ErrorCode::KafkaStorageError,
        PartitionError::StaleLeaderEpoch { .. } => ErrorCode::FencedLeaderEpoch,
        // Retriable: the producer finds the new leader (and its idempotent retry is
        // deduplicated there if the records did make it).
        PartitionError::NotLeader(_) => ErrorCode::NotLeaderOrFollower,
    }
}
