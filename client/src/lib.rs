//! Weir client library: producer, consumer and admin over the native protocol, and the
//! `weir` CLI (in `cli/` and `bin/weir.rs`).
//!
//! Layout:
//! - [`config`]: [`ClientConfig`], [`ProducerConfig`], [`ConsumerConfig`];
//!   [`properties`]: the same from Kafka-named properties or `WEIR_CLIENT_*` variables.
//! - [`error`]: the one [`Error`] type; `is_retriable()` separates retriable from fatal.
//! - [`connection`]: one pipelined TCP connection (writer task, reader task, correlation
//!   ids); [`pool`]: one connection per broker; [`metadata`]: the topic/leader cache;
//!   [`client`]: [`Client`], the three together.
//! - [`producer`]: [`Producer`] with the per-partition accumulator and the sender task.
//! - [`consumer`]: standalone [`Consumer`] with per-broker prefetching; group mode in
//!   [`GroupConsumer`] (`consumer/group.rs`).
//! - [`dlq`]: retries with backoff and dead-letter topics, and redriving them.
//! - [`admin`]: [`Admin`], topic and config management; [`group_admin`]: group
//!   list/describe/delete/offset resets on `Admin`.
//! - [`fasthash`]: a fast hasher for topic-keyed maps on the per-record path.
//! - [`partitioner`]: Kafka-compatible murmur2 and sticky partitioning.
//! - [`cli`]: the `weir` command line (argument parsing, output shaping, commands).

//!
//! # Quickstart
//!
//! Produce, then consume in a group and commit what was processed (the README shows the
//! same; `client/examples/` has runnable versions):
//!
//! ```no_run
//! use std::time::Duration;
//! use futures::StreamExt;
//! use weir_client::{ClientConfig, ConsumerConfig, GroupConfig, GroupConsumer, OffsetReset,
//!                   Producer, ProducerConfig, ProducerRecord};
//!
//! # async fn run() -> weir_client::Result<()> {
//! let bootstrap = "127.0.0.1:9292";
//! let producer = Producer::new(ClientConfig::new(bootstrap), ProducerConfig::default()).await?;
//! let ack = producer.enqueue(ProducerRecord::new("orders", "hello").with_key("k1")).await?;
//! producer.flush_timeout(Duration::from_secs(10)).await?;
//! println!("stored at offset {}", ack.await?.offset);
//!
//! let mut group = GroupConfig::new("billing");
//! group.auto_commit_interval = None;                       // commit explicitly below
//! let consumer_config = ConsumerConfig { auto_offset_reset: OffsetReset::Earliest, ..Default::default() };
//! let mut consumer = GroupConsumer::new(ClientConfig::new(bootstrap), consumer_config, group).await?;
//! consumer.subscribe(&["orders"]);
//! let committer = consumer.committer();
//! let mut records = consumer.stream();                     // cancel-safe
//! while let Some(record) = records.next().await {
//!     let record = record?;
//!     println!("{} @ {}: {:?}", record.topic_partition(), record.offset, record.value); // process ...
//!     committer.commit_record(&record).await?;             // ... then commit (offset + 1)
//!     break;
//! }
//! drop(records);
//! // Shutdown order: stop reading, commit, leave the group (close), close the producer.
//! consumer.close_timeout(Duration::from_secs(10)).await?;
//! producer.close_timeout(Duration::from_secs(10)).await?;
//! # Ok(()) }
//! ```

// No unwrap/expect/indexing outside tests: a bad frame, a short buffer or an odd broker
// answer must come back as an `Error`, never as a panic in the caller's process.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

pub mod admin;
pub mod cli;
pub mod client;
pub mod cluster_admin;
pub mod config;
pub mod connection;
pub mod consumer;
pub mod controller_answer;
pub mod dlq;
pub mod error;
pub mod fasthash;
pub mod group_admin;
pub mod metadata;
pub mod partitioner;
pub mod pool;
pub mod producer;
pub mod properties;
pub mod reassign_admin;

pub use admin::Admin;
pub use client::Client;
pub use config::{Acks, BufferFull, ClientConfig, ConsumerConfig, OffsetReset, ProducerConfig};
pub use consumer::{
    Committer, Consumer, ConsumerRecord, GroupConfig, GroupConsumer, RebalanceListener, RecordView,
    TopicPartition,
};
pub use error::{Error, Result};
pub use producer::{DeliveryFuture, Producer, ProducerRecord, RecordMetadata};
pub use properties::Properties;
pub use weir_protocol::batch::{Compression, RecordHeader};
pub use weir_protocol::ErrorCode;
