//! Kafka RecordBatch v2: the one batch format Weir uses from producer to disk to consumer.

mod error;
pub mod header;

pub use error::BatchError;
pub use header::{
    compute_crc, set_base_offset, set_partition_leader_epoch, validate_batch, BatchHeader,
    BatchIter, Compression, TimestampType, HEADER_LEN, LOG_OVERHEAD, MAGIC_V2,
};
