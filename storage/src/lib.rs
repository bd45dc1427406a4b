//! Weir storage: synchronous, runtime-free partition logs.
//!
//! Layout:
//! - [`log`]: [`Log`], one partition: append, read, truncate, retention, flush, recovery,
//!   and the per-partition checkpoint file.
//! - [`segment`]: one `.log` file plus its memory-mapped `.index` and `.timeindex`.
//! - [`producer_state`]: idempotent-producer sequence rules and snapshot files.
//! - [`cleaner`]: compaction (pure planning, offset map, rewrite, crash-safe swap).
//! - [`config`]: [`LogConfig`] and [`CleanupPolicy`] with Kafka's defaults.
//! - [`error`]: the [`Error`] type.
//! - [`file_slice`]: [`FileSlice`], fetched records left in a segment file for `sendfile`.
//! - [`testkit`]: builders of valid batches for tests and benchmarks.
//!
//! Nothing here is async: the broker calls it from blocking threads. Every durable file is
//! checksummed or rebuilt from checksummed data on open; no byte read from disk can panic.
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

pub mod cleaner;
pub mod config;
pub mod error;
pub mod file_slice;
pub mod log;
pub mod producer_state;
pub mod segment;
pub mod testkit;

pub use config::{CleanupPolicy, LogConfig};
pub use error::{Error, Result};
pub use file_slice::FileSlice;
pub use log::{
    AppendInfo, FlushHandle, FlushMode, Log, ReadInfo, Records, RecordsRead, RecoveryInfo,
    RetentionOutcome, Shutdown,
};
pub use producer_state::{BatchMetadata, ProducerEntry};
pub use weir_protocol::batch::TimestampType;
