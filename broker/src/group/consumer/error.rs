//! Why the coordinator refuses a consumer-group heartbeat, commit or fetch; one mapping to
//! Kafka's codes.

use weir_protocol::ErrorCode;

/// Why a heartbeat (or a commit) is refused; [`HeartbeatError::code`] is the Kafka code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeartbeatError {
    /// The member id is not (or no longer) in the group.
    #[error("member {0} is not in the group")]
    UnknownMember(String),
    /// The epoch is neither the member's current one nor its previous one.
    #[error("member epoch {got} is not the member's epoch {current}")]
    FencedEpoch {
        /// Epoch in the request.
        got: i32,
        /// The member's epoch.
        current: i32,
    },
    /// An OffsetCommit or OffsetFetch carried another epoch than the member's.
    #[error("member epoch {got} is stale, the member is at {current}")]
    StaleEpoch {
        /// Epoch in the request.
        got: i32,
        /// The member's epoch.
        current: i32,
    },
    /// A server-side assignor the coordinator does not run.
    #[error("assignor {0} is not supported (range, uniform)")]
    UnsupportedAssignor(String),
    /// The group has its maximum number of members.
    #[error("the group is full")]
    GroupFull,
    /// A static member's instance id is held by another live member.
    #[error("instance id {0} is still held by another member")]
    UnreleasedInstance(String),
    /// A field the protocol requires is missing.
    #[error("invalid request: {0}")]
    Invalid(&'static str),
    /// The group id names a classic group with members (Kafka: GROUP_ID_NOT_FOUND, "is
    /// not a consumer group").
    #[error("the group is not a consumer group")]
    NotConsumerGroup,
    /// The group is being deleted or moved.
    #[error("the group is not available")]
    Unavailable,
    /// This broker does not coordinate the group.
    #[error("this broker is not the group's coordinator")]
    NotCoordinator,
    /// An empty group id.
    #[error("invalid group id")]
    InvalidGroupId,
}

impl HeartbeatError {
    /// Kafka's code for it.
    pub fn code(&self) -> ErrorCode {
        match self {
            HeartbeatError::UnknownMember(_) => ErrorCode::UnknownMemberId,
            HeartbeatError::FencedEpoch { .. } => ErrorCode::FencedMemberEpoch,
            HeartbeatError::StaleEpoch { .. } => ErrorCode::StaleMemberEpoch,
            HeartbeatError::UnsupportedAssignor(_) => ErrorCode::UnsupportedAssignor,
            HeartbeatError::GroupFull => ErrorCode::GroupMaxSizeReached,
            HeartbeatError::UnreleasedInstance(_) => ErrorCode::UnreleasedInstanceId,
            HeartbeatError::Invalid(_) => ErrorCode::InvalidRequest,
            HeartbeatError::NotConsumerGroup => ErrorCode::GroupIdNotFound,
            HeartbeatError::Unavailable => ErrorCode::CoordinatorNotAvailable,
            HeartbeatError::NotCoordinator => ErrorCode::NotCoordinator,
            HeartbeatError::InvalidGroupId => ErrorCode::InvalidGroupId,
        }
    }
}
