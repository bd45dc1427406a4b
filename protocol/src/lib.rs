//! Weir's wire formats, as pure code over bytes (no sockets, no runtime).
//!
//! Layout:
//! - [`batch`]: Kafka RecordBatch v2 (magic 2): header parsing and in-place patching
//!   (`batch::header`), record encoding/decoding (`batch::records`), compression codecs
//!   (`batch::compression`), zig-zag varints (`batch::varint`).
//! - [`native`]: Weir's native protocol: `proto/*.proto` compiled by `build.rs`, API keys,
//!   supported versions, the length-prefixed frame codecs.
//! - [`kafka`]: Kafka's request header decoder (the message types are the `kafka-protocol`
//!   crate's).
//! - [`error_code`]: [`ErrorCode`], shared by every API, numbered like Kafka's.
//!
//! The crate denies `unwrap`, `expect` and unchecked indexing: every byte here may come
//! from a client or a disk.
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

pub mod batch;
pub mod error_code;
pub mod kafka;
pub mod native;

pub use error_code::ErrorCode;
