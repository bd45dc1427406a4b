//! Weir client library: producer, consumer and admin over the native protocol.
//!
//! Layout:
//! - [`partitioner`]: Kafka-compatible murmur2 and sticky partitioning.

pub mod partitioner;
