//! The consumer-group coordinator's pure logic: no I/O, no clock, no locks. The service in
//! `crate::coordinator` owns the groups, feeds them requests with the current time, and
//! carries out the [`Effect`]s (answer parked joins, write `__consumer_offsets` records).
//!
//! Layout:
//! - `machine.rs`: [`Group`] — state, members, sync/heartbeat/leave/tick/delete;
//!   `join.rs`: JoinGroup, static membership and forming a generation.
//! - `state.rs`: [`GroupState`]; `member.rs`: [`Member`]; `types.rs`: [`TopicPartition`],
//!   [`Millis`], [`PartitionCounts`].
//! - `assignor/`: range, round-robin, sticky, and the cooperative revoke-first rule.
//! - `consumer/`: KIP-848 consumer groups (server-side assignment, member epochs,
//!   revoke-first reconciliation), kept inside a [`Group`] so offsets work as for others.
//! - `offsets.rs`: committed offsets and OffsetCommit validation; `lag.rs`: lag.
//! - `records.rs`: the `__consumer_offsets` record format and replay.

pub mod assignor;
pub mod consumer;
mod join;
pub mod lag;
mod machine;
mod member;
mod offsets;
pub mod records;
mod state;
mod types;

#[cfg(test)]
mod tests;

pub use machine::{
    Effect, Group, GroupConfig, JoinOutcome, JoinRequest, JoinResponse, PlannedAssignment,
    SyncOutcome, SyncResponse, CLIENT_ASSIGNED_PREFIX,
};
pub use member::{Member, Protocol};
pub use offsets::{CommittedOffset, Committer, OffsetStore};
pub use state::GroupState;
pub use types::{Millis, PartitionCounts, TopicPartition};
