//! Which versions of each API this build speaks. Version 0 is the first native version of
//! every API; a message change that old peers cannot ignore bumps the maximum.

use super::ApiKey;

/// An inclusive version range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionRange {
    /// Lowest supported version.
    pub min: i16,
    /// Highest supported version.
    pub max: i16,
}

impl VersionRange {
    /// Whether `v` lies in the range.
    pub fn contains(self, v: i32) -> bool {
        i32::from(self.min) <= v && v <= i32::from(self.max)
    }
}

/// APIs the native protocol implements today, with their ranges.
pub const SUPPORTED: &[(ApiKey, VersionRange)] = &[
    (ApiKey::Produce, VersionRange { min: 0, max: 0 }),
    (ApiKey::Fetch, VersionRange { min: 0, max: 0 }),
    (ApiKey::ListOffsets, VersionRange { min: 0, max: 0 }),
    (ApiKey::Metadata, VersionRange { min: 0, max: 0 }),
    (ApiKey::ApiVersions, VersionRange { min: 0, max: 0 }),
    (ApiKey::CreateTopics, VersionRange { min: 0, max: 0 }),
    (ApiKey::DeleteTopics, VersionRange { min: 0, max: 0 }),
    (ApiKey::DeleteRecords, VersionRange { min: 0, max: 0 }),
    (ApiKey::InitProducerId, VersionRange { min: 0, max: 0 }),
    (
        ApiKey::OffsetForLeaderEpoch,
        VersionRange { min: 0, max: 0 },
    ),
    (ApiKey::DescribeConfigs, VersionRange { min: 0, max: 0 }),
    (ApiKey::AlterConfigs, VersionRange { min: 0, max: 0 }),
    (ApiKey::CreatePartitions, VersionRange { min: 0, max: 0 }),
    (ApiKey::OffsetCommit, VersionRange { min: 0, max: 0 }),
    (ApiKey::OffsetFetch, VersionRange { min: 0, max: 0 }),
    (ApiKey::FindCoordinator, VersionRange { min: 0, max: 0 }),
    (ApiKey::JoinGroup, VersionRange { min: 0, max: 0 }),
    (ApiKey::Heartbeat, VersionRange { min: 0, max: 0 }),
    (ApiKey::LeaveGroup, VersionRange { min: 0, max: 0 }),
    (ApiKey::SyncGroup, VersionRange { min: 0, max: 0 }),
    (ApiKey::DescribeGroups, VersionRange { min: 0, max: 0 }),
    (ApiKey::ListGroups, VersionRange { min: 0, max: 0 }),
    (ApiKey::DeleteGroups, VersionRange { min: 0, max: 0 }),
    (ApiKey::DescribeQuorum, VersionRange { min: 0, max: 0 }),
    (ApiKey::AlterPartition, VersionRange { min: 0, max: 0 }),
    (
        ApiKey::AlterPartitionReassignments,
        VersionRange { min: 0, max: 0 },
    ),
    (
        ApiKey::ListPartitionReassignments,
        VersionRange { min: 0, max: 0 },
    ),
];

/// The supported range of `key`, or `None` if this build does not implement it.
pub fn supported(key: ApiKey) -> Option<VersionRange> {
    SUPPORTED.iter().find(|(k, _)| *k == key).map(|(_, r)| *r)
}
