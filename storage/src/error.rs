//! The storage error type: every failure named by what it means to the caller.

use std::io;
use std::path::PathBuf;

use weir_protocol::batch::BatchError;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O call failed (other than running out of space).
    #[error("I/O error during {op} on {}: {source}", path.display())]
    Io {
        /// What we were doing.
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A file on disk does not have the expected shape and could not be repaired here.
    #[error("corrupt file {}: {detail}", path.display())]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// One batch is larger than `max_message_bytes`.
    #[error("batch of {size} bytes exceeds max.message.bytes {max}")]
    RecordTooLarge {
        /// Batch size in bytes.
        size: usize,
        /// Configured limit.
        max: u32,
    },
    /// The bytes are not a valid RecordBatch v2 (CRC, length, magic...).
    #[error("invalid batch: {0}")]
    InvalidBatch(#[from] BatchError),
    /// The batch is well formed but not acceptable from a producer.
    #[error("invalid record batch: {0}")]
    InvalidRecord(String),
    /// A read or truncation asked for an offset outside the log.
    #[error("offset {offset} out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        /// Requested offset.
        offset: i64,
        /// First readable offset.
        log_start: i64,
        /// Next offset to be written.
        log_end: i64,
    },
    /// Idempotent producer: the batch does not continue the producer's sequence.
    #[error("out of order sequence for producer {producer_id}: expected {expected}, got {got}")]
    OutOfOrderSequence {
        /// Producer id.
        producer_id: i64,
        /// The sequence the log expected (-1 if only 0 is acceptable after an epoch bump).
        expected: i32,
        /// The batch's base sequence.
        got: i32,
    },
    /// Idempotent producer: the batch carries an epoch older than the current one.
    #[error("producer {producer_id} epoch {got} is older than current epoch {current}")]
    InvalidProducerEpoch {
        /// Producer id.
        producer_id: i64,
        /// Epoch the log knows.
        current: i16,
        /// Epoch in the batch.
        got: i16,
    },
    /// The file system refused to grow a file (ENOSPC, EDQUOT or EFBIG). Nothing was appended.
    #[error("disk full while writing {}", path.display())]
    DiskFull {
        /// The file that could not grow.
        path: PathBuf,
    },
    /// An earlier fsync failed; the page cache may have dropped dirty data, so the log refuses
    /// writes until it is reopened (which re-validates the files).
    #[error("log {} is poisoned by an earlier fsync failure; reopen it to recover", path.display())]
    Poisoned {
        /// The partition directory.
        path: PathBuf,
    },
    /// A configuration value is out of range.
    #[error("invalid log config: {0}")]
    InvalidConfig(String),
}

impl Error {
    /// Wraps an I/O error, classifying "no space" separately so callers can react to it.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        let path = path.into();
        match source.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) | Some(libc::EFBIG) => Error::DiskFull { path },
            _ => Error::Io { op, path, source },
        }
    }

    /// Closure form of [`Error::io`] for `map_err`.
    pub(crate) fn io_at<'a>(
        op: &'static str,
        path: &'a std::path::Path,
    ) -> impl FnOnce(io::Error) -> Error + 'a {
        move |e| Error::io(op, path, e)
    }

    /// A corrupt-file error.
    pub(crate) fn corrupt(path: impl Into<PathBuf>, detail: impl Into<String>) -> Error {
        Error::Corrupt {
            path: path.into(),
            detail: detail.into(),
        }
    }
}
