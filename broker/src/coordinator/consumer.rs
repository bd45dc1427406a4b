//! The coordinator's side of KIP-848 consumer groups: heartbeats and describe. The state
//! machine is `crate::group::consumer`; nothing is parked here (every heartbeat is
//! answered at once), and membership is not persisted: after a coordinator move or a
//! restart, members are told UNKNOWN_MEMBER_ID and rejoin with epoch 0 (committed offsets
//! are in `__consumer_offsets` as for every group).

use weir_protocol::ErrorCode;

use super::{Coordinator, ImageCounts};
use crate::clock::now_ms;
use crate::group::consumer::{ConsumerGroup, Heartbeat, HeartbeatError, HeartbeatReply};
use crate::group::Group;

impl Coordinator {
    /// ConsumerGroupHeartbeat.
    pub fn consumer_heartbeat(
        &self,
        group_id: &str,
        req: Heartbeat,
    ) -> Result<HeartbeatReply, HeartbeatError> {
        if group_id.is_empty() {
            return Err(HeartbeatError::InvalidGroupId);
        }
        if !self.owns(group_id) {
            return Err(HeartbeatError::NotCoordinator);
        }
        let now = now_ms();
        let counts = ImageCounts(self.inner.view.image());
        let reply = {
            let mut table = self.table();
            let config = self.inner.config.group.clone();
            let g = table
                .groups
                .entry(group_id.to_string())
                .or_insert_with(|| Group::new(group_id, config, now));
            g.consumer_heartbeat(now, req, &counts)
        };
        // Deadlines moved (a new member, a revocation under way).
        self.inner.wake.notify_one();
        reply
    }

    /// The consumer-group side of `group_id` (ConsumerGroupDescribe); GROUP_ID_NOT_FOUND
    /// for an unknown or classic group (clients then fall back to DescribeGroups).
    pub fn describe_consumer(&self, group_id: &str) -> Result<ConsumerGroup, ErrorCode> {
        if !self.owns(group_id) {
            return Err(ErrorCode::NotCoordinator);
        }
        let table = self.table();
        table
            .groups
            .get(group_id)
            .and_then(|g| g.consumer().cloned())
            .ok_or(ErrorCode::GroupIdNotFound)
    }

    /// OffsetFetch v9 from a consumer-group member: its epoch must be current.
    pub fn validate_offset_fetch(
        &self,
        group_id: &str,
        member_id: &str,
        epoch: i32,
    ) -> Result<(), ErrorCode> {
        let now = now_ms();
        let mut table = self.table();
        match table.groups.get_mut(group_id) {
            Some(g) => g.validate_fetch(now, member_id, epoch),
            None => Ok(()),
        }
    }
}
