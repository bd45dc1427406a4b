//! Which Kafka API versions the Kafka listener advertises. Only what is implemented is
//! listed (advertising more makes clients use it, kafka-wire-compat.md P21). Low bounds
//! include every version librdkafka 2.0.2's feature map probes (FindCoordinator 0,
//! JoinGroup 0, OffsetFetch 1, ListOffsets 1, InitProducerId 0, ...), otherwise kcat turns
//! off its group consumer or idempotence (P1). High bounds stop below topic-id versions
//! (Produce 13, Fetch 13) and include Fetch 12 for librdkafka 2.6.0 (P16).

use kafka_protocol::messages::ApiKey;

/// An inclusive version range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// Lowest version served.
    pub min: i16,
    /// Highest version served.
    pub max: i16,
}

impl Range {
    /// Whether `v` lies in the range.
    pub fn contains(self, v: i16) -> bool {
        self.min <= v && v <= self.max
    }
}

const fn r(min: i16, max: i16) -> Range {
    Range { min, max }
}

/// Every API the listener serves, with its range.
pub const ADVERTISED: &[(ApiKey, Range)] = &[
    (ApiKey::Produce, r(3, 9)),
    (ApiKey::Fetch, r(4, 12)),
    (ApiKey::ListOffsets, r(1, 7)),
    (ApiKey::Metadata, r(0, 12)),
    (ApiKey::OffsetCommit, r(2, 9)),
    (ApiKey::OffsetFetch, r(1, 9)),
    (ApiKey::FindCoordinator, r(0, 3)),
    (ApiKey::JoinGroup, r(0, 7)),
    (ApiKey::Heartbeat, r(0, 4)),
    (ApiKey::LeaveGroup, r(0, 4)),
    (ApiKey::SyncGroup, r(0, 5)),
    (ApiKey::DescribeGroups, r(0, 5)),
    (ApiKey::ListGroups, r(0, 5)),
    (ApiKey::ApiVersions, r(0, 4)),
    (ApiKey::CreateTopics, r(2, 7)),
    (ApiKey::DeleteTopics, r(1, 5)),
    (ApiKey::DeleteRecords, r(0, 2)),
    (ApiKey::InitProducerId, r(0, 4)),
    (ApiKey::OffsetForLeaderEpoch, r(2, 4)),
    (ApiKey::DescribeConfigs, r(1, 4)),
    (ApiKey::AlterConfigs, r(0, 2)),
    (ApiKey::CreatePartitions, r(0, 3)),
    (ApiKey::DeleteGroups, r(0, 2)),
    (ApiKey::IncrementalAlterConfigs, r(0, 1)),
    (ApiKey::DescribeCluster, r(0, 1)),
    // KIP-848 consumer groups; librdkafka sends heartbeat v1 only (client-made member ids).
    (ApiKey::ConsumerGroupHeartbeat, r(0, 1)),
    (ApiKey::ConsumerGroupDescribe, r(0, 1)),
];

/// The advertised range of `key`, if the listener serves it.
pub fn advertised(key: ApiKey) -> Option<Range> {
    ADVERTISED.iter().find(|(k, _)| *k == key).map(|(_, r)| *r)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every advertised version exists in the message crate, so decoding and encoding at
    /// it cannot fail for lack of a schema.
    #[test]
    fn advertised_within_crate_ranges() {
        for (key, range) in ADVERTISED {
            let valid = key.valid_versions();
            assert!(
                valid.min <= range.min && range.max <= valid.max,
                "{key:?} {range:?} outside {valid}"
            );
        }
    }
}
