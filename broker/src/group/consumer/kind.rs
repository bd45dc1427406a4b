//! A [`Group`] is either classic or a consumer group, never both: the entry points that
//! decide which, and the consumer-group rules for offsets.

use weir_protocol::ErrorCode;

use super::{ConsumerGroup, Heartbeat, HeartbeatError, HeartbeatReply};
use crate::group::machine::Group;
use crate::group::state::GroupState;
use crate::group::types::{Millis, PartitionCounts};

impl Group {
    /// The consumer-group (KIP-848) side of this group, if it is one.
    pub fn consumer(&self) -> Option<&ConsumerGroup> {
        self.consumer.as_ref()
    }

    /// Whether a classic member may join: not while consumer-group members exist (Kafka:
    /// GROUP_ID_NOT_FOUND, "not a classic group"); an empty consumer group becomes classic.
    pub(in crate::group) fn classic_join_allowed(&mut self) -> Result<(), ErrorCode> {
        match &self.consumer {
            Some(c) if !c.is_empty() => Err(ErrorCode::GroupIdNotFound),
            _ => {
                self.consumer = None;
                Ok(())
            }
        }
    }

    /// ConsumerGroupHeartbeat. A classic group with members refuses it (Kafka:
    /// GROUP_ID_NOT_FOUND); an empty one (committed offsets only) becomes a consumer group.
    pub fn consumer_heartbeat(
        &mut self,
        now: Millis,
        req: Heartbeat,
        counts: &dyn PartitionCounts,
    ) -> Result<HeartbeatReply, HeartbeatError> {
        if self.state == GroupState::Dead {
            return Err(HeartbeatError::Unavailable);
        }
        if self.state != GroupState::Empty || !self.members.is_empty() {
            return Err(HeartbeatError::NotConsumerGroup);
        }
        let config = self.config.clone();
        let c = self
            .consumer
            .get_or_insert_with(|| ConsumerGroup::new(config));
        c.heartbeat(now, req, counts)
    }

    /// OffsetCommit/OffsetFetch rules of a consumer group; `None` for a classic group.
    pub(in crate::group) fn consumer_offsets_access(
        &mut self,
        now: Millis,
        member_id: &str,
        epoch: i32,
    ) -> Option<Result<(), ErrorCode>> {
        let c = self.consumer.as_mut()?;
        Some(
            c.validate_offsets_access(now, member_id, epoch)
                .map_err(|e| e.code()),
        )
    }

    /// [`Group::consumer_offsets_access`] for an OffsetFetch that named its member.
    pub fn validate_fetch(
        &mut self,
        now: Millis,
        member_id: &str,
        epoch: i32,
    ) -> Result<(), ErrorCode> {
        self.consumer_offsets_access(now, member_id, epoch)
            .unwrap_or(Ok(()))
    }
}
