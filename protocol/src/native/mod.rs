//! Weir's native wire protocol: protobuf messages (`proto/weir.proto`) in length-prefixed
//! frames.
//!
//! Layout:
//! - [`v1`]: the generated prost types (`RequestEnvelope`, `ResponseEnvelope`, one
//!   request/response pair per API).
//! - [`groups`]: the generated records of `__consumer_offsets` (`proto/groups.proto`).
//! - [`metadata`]: the generated records of the broker's metadata log (`proto/metadata.proto`).
//! - [`ApiKey`] (`api_key.rs`): Kafka's API key numbers; the envelopes' oneof tag is 100 + key.
//! - [`versions`]: the versions this build supports per API.
//! - [`Request`] (`api.rs`): ties a request type to its response type and key, so callers
//!   get compiler-checked `send::<R>()`.
//! - [`frame`]: the `u32` length + protobuf frame codecs for client and server side.
//! - [`spliced`]: Fetch response frames whose record bytes the broker sends from files.

mod api;
mod api_key;
pub mod frame;
#[doc(hidden)]
pub mod fuzzing;
pub mod spliced;
pub mod versions;

pub use api::{request_api_key, response_api_key, Request};
pub use api_key::ApiKey;
pub use frame::{ClientCodec, FrameError, ServerCodec, DEFAULT_MAX_FRAME_BYTES};

/// Generated types of package `weir.native.v1`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/weir.native.v1.rs"));
}

/// Generated types of package `weir.groups.v1` (records of `__consumer_offsets`).
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod groups {
    include!(concat!(env!("OUT_DIR"), "/weir.groups.v1.rs"));
}

/// Generated types of package `weir.metadata.v1` (metadata-log records).
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod metadata {
    include!(concat!(env!("OUT_DIR"), "/weir.metadata.v1.rs"));
}

/// Generated types of package `weir.raft.v1` (the metadata quorum's log entries, vote,
/// snapshots and RPC frames).
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod raft {
    include!(concat!(env!("OUT_DIR"), "/weir.raft.v1.rs"));
}
