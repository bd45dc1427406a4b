//! The metadata quorum: openraft (0.9, `storage-v2`) replicating the metadata log, with
//! our own durable storage and transport.
//!
//! - [`codec`]: openraft types ⇄ our protobuf messages (`protocol/proto/raft.proto`).
//! - [`log_store`]: the Raft log and vote on disk: every append and vote is fsynced before
//!   openraft is told it is durable; a torn tail is cut off on open.
//! - [`state_machine`]: the [`MetadataImage`](crate::metadata::MetadataImage) as the state
//!   machine; snapshots are the image as metadata records, saved (fsynced) to disk, and the
//!   image is rebuilt from the last snapshot at start (openraft 0.9 does not do it).
//! - [`network`]: length-prefixed protobuf frames between brokers on the controller
//!   listener, client and server side.
//! - [`node`]: starting one quorum member from a directory, a voter list and a listener;
//!   [`voters`]: parsing and checking that list (`1@host:port,2@host:port,...`).

pub mod codec;
pub mod heartbeats;
pub mod log_store;
pub mod network;
pub mod node;
pub mod state_machine;
#[cfg(test)]
mod tests;
pub mod voters;

use std::io::Cursor;

pub use weir_protocol::native::raft::MetadataBatch;

/// Node ids are Kafka broker ids (non-negative), widened as openraft wants.
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// Weir's Raft types: metadata batches in, nothing out (the image is read directly).
    pub TypeConfig:
        D = MetadataBatch,
        R = (),
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A log entry.
pub type Entry = openraft::Entry<TypeConfig>;

/// The Raft handle.
pub type Raft = openraft::Raft<TypeConfig>;

/// openraft's storage error for our node ids.
pub type StorageError = openraft::StorageError<NodeId>;
