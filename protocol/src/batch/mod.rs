//! Kafka RecordBatch v2: the one batch format Weir uses from producer to disk to consumer.
//!
//! - [`header`]: the 61-byte header, [`validate_batch`] and in-place patching (hot path).
//! - [`varint`]: zig-zag varints. [`record`]: one record's types and byte codec.
//! - [`BatchBuilder`] (`builder.rs`): encode a batch. [`RecordIter`], [`decode_records`],
//!   [`validate_records`] (`decode.rs`): read one. [`control`]: transaction markers.
//! - [`compression`]: gzip, snappy, lz4, zstd with a decompression cap.

mod builder;
pub mod compression;
pub mod control;
mod decode;
mod error;
pub mod header;
pub mod record;
pub mod varint;

pub use builder::{
    BatchBuilder, BatchOptions, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE, NO_TIMESTAMP,
};
pub use control::{ControlRecordType, EndTxnMarker};
pub use decode::{
    decode_records, decode_records_with_limit, validate_records, RecordIter, RecordsSummary,
    DEFAULT_MAX_DECOMPRESSED,
};
pub use error::BatchError;
pub use header::{
    compute_crc, set_base_offset, set_log_append_time, set_partition_leader_epoch, validate_batch,
    BatchHeader, BatchIter, Compression, TimestampType, HEADER_LEN, LOG_OVERHEAD, MAGIC_V2,
};
pub use record::{NewRecord, Record, RecordHeader, RecordView};
