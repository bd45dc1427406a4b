//! Committed offsets of a group and the OffsetCommit validation rules (Kafka's classic
//! group: `validateOffsetCommit`).

use std::collections::BTreeMap;

use weir_protocol::ErrorCode;

use super::machine::Group;
use super::state::GroupState;
use super::types::{Millis, TopicPartition};

/// One committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The next offset to consume.
    pub offset: i64,
    /// Leader epoch of the record before `offset`, if the client knew it.
    pub leader_epoch: Option<i32>,
    /// Free text from the committer.
    pub metadata: String,
    /// When it was committed.
    pub commit_timestamp_ms: Millis,
}

/// A group's committed offsets.
#[derive(Debug, Clone, Default)]
pub struct OffsetStore {
    offsets: BTreeMap<TopicPartition, CommittedOffset>,
}

impl OffsetStore {
    /// The committed offset of `tp`.
    pub fn get(&self, tp: &TopicPartition) -> Option<&CommittedOffset> {
        self.offsets.get(tp)
    }
    /// Records a commit (or a replayed one).
    pub fn put(&mut self, tp: TopicPartition, offset: CommittedOffset) {
        self.offsets.insert(tp, offset);
    }
    /// Forgets a commit (a replayed tombstone, a deleted topic).
    pub fn remove(&mut self, tp: &TopicPartition) -> Option<CommittedOffset> {
        self.offsets.remove(tp)
    }
    /// Every commit, in (topic, partition) order.
    pub fn iter(&self) -> impl Iterator<Item = (&TopicPartition, &CommittedOffset)> {
        self.offsets.iter()
    }
    /// Number of committed partitions.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }
    /// No commits.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }
    pub(super) fn clear(&mut self) {
        self.offsets.clear();
    }
}

/// Who commits.
#[derive(Debug, Clone, Copy)]
pub struct Committer<'a> {
    /// -1 for a standalone/admin commit.
    pub generation: i32,
    /// Empty for a standalone/admin commit.
    pub member_id: &'a str,
    /// Static membership id.
    pub instance_id: Option<&'a str>,
}

impl Group {
    /// Whether `who` may commit now. A commit without member and generation is accepted
    /// only while the group has no members (standalone consumers, offset resets). A member
    /// that already has its assignment for the current generation may commit during a
    /// rebalance: that is how it saves progress before releasing a partition.
    pub fn validate_commit(&mut self, now: Millis, who: Committer<'_>) -> Result<(), ErrorCode> {
        if self.state == GroupState::Dead {
            return Err(ErrorCode::CoordinatorNotAvailable);
        }
        // A consumer group's commit carries the member epoch where the generation goes.
        if let Some(r) = self.consumer_offsets_access(now, who.member_id, who.generation) {
            return r;
        }
        if who.generation < 0 && who.member_id.is_empty() {
            return if self.members.is_empty() {
                Ok(())
            } else {
                Err(ErrorCode::UnknownMemberId)
            };
        }
        self.check_member(who.member_id, who.instance_id)?;
        if let Some(m) = self.members.get_mut(who.member_id) {
            m.last_seen = m.last_seen.max(now);
        }
        if who.generation != self.generation {
            return Err(ErrorCode::IllegalGeneration);
        }
        let synced = self.members.get(who.member_id).is_some_and(|m| m.synced);
        if self.state == GroupState::CompletingRebalance && !synced {
            return Err(ErrorCode::RebalanceInProgress);
        }
        Ok(())
    }

    /// Per-partition check of a commit that passed [`Group::validate_commit`].
    pub fn validate_partition_commit(&self, metadata: Option<&str>) -> ErrorCode {
        if metadata.is_some_and(|m| m.len() > self.config.offset_metadata_max_bytes) {
            ErrorCode::OffsetMetadataTooLarge
        } else {
            ErrorCode::None
        }
    }
}
