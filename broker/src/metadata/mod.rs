//! Metadata as a log: topic, config, partition and producer-id changes are protobuf
//! records (`protocol/proto/metadata.proto`), replicated in batches by the metadata quorum
//! (`crate::raft`; a quorum of one on a single node) and applied to an in-memory
//! [`MetadataImage`]. The pre-quorum format kept them in a local file (`file.rs`), which is
//! read once to migrate an old data directory.
//!
//! - `file.rs`: the on-disk record log (length + CRC framing, fsync, torn-tail repair).
//! - `image.rs`: the pure image and how each record changes it.

mod file;
mod image;

pub use file::{decode_frames, encode_frames, MetadataFile, MetadataFileError};
pub use image::{BrokerImage, MetadataImage, PartitionImage, TopicImage, MAX_PARTITIONS};
pub use weir_protocol::native::metadata::{
    metadata_record::Record, BrokerFenceRecord, BrokerRecord, ClusterIdRecord, ConfigRecord,
    MetadataRecord, PartitionRecord, ProducerIdsRecord, RemoveTopicRecord, TopicRecord,
};

/// Kafka's resource type number for topics (ConfigRecord.resource_type).
pub const RESOURCE_TOPIC: i32 = 2;
