//! A group member as the coordinator tracks it.

use std::collections::BTreeSet;

use bytes::Bytes;

use super::types::{Millis, TopicPartition};

/// An assignor name a member accepts, with Kafka-style opaque metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protocol {
    /// Assignor name ("sticky", "range", "roundrobin").
    pub name: String,
    /// Opaque bytes (Kafka's subscription); empty for native members.
    pub metadata: Bytes,
}

/// One member.
#[derive(Debug, Clone)]
pub struct Member {
    /// Broker-assigned id.
    pub id: String,
    /// Static membership id, if any.
    pub instance_id: Option<String>,
    /// The client's `client_id`.
    pub client_id: String,
    /// The client's address, for DescribeGroups.
    pub client_host: String,
    /// Session timeout the member asked for.
    pub session_timeout_ms: i32,
    /// Rebalance timeout the member asked for.
    pub rebalance_timeout_ms: i32,
    /// Accepted assignors in preference order.
    pub protocols: Vec<Protocol>,
    /// Subscribed topics.
    pub topics: BTreeSet<String>,
    /// What the member reported owning at its last join.
    pub reported_owned: BTreeSet<TopicPartition>,
    /// Its partitions for the current generation.
    pub assignment: BTreeSet<TopicPartition>,
    /// Partitions it owned when the current generation formed but must release.
    pub revoking: BTreeSet<TopicPartition>,
    /// The group leader's opaque assignment for it (Kafka's classic protocol, where the
    /// leader client computes the plan); `None` when the coordinator's assignment stands.
    pub assignment_blob: Option<Bytes>,
    /// Joined in the current rebalance round (its JoinGroup awaits the new generation).
    pub joined: bool,
    /// Fetched its assignment for the current generation.
    pub synced: bool,
    /// Last time the member showed life (heartbeat, join, sync, commit).
    pub last_seen: Millis,
}

impl Member {
    /// When the session expires unless the member shows life again.
    pub fn session_deadline(&self) -> Millis {
        self.last_seen + Millis::from(self.session_timeout_ms)
    }

    /// Whether the member accepts assignor `name`.
    pub fn supports(&self, name: &str) -> bool {
        self.protocols.iter().any(|p| p.name == name)
    }

    /// The partitions the member can still be holding: its assignment plus what it was
    /// asked to release. A claim outside this set is stale (a zombie's) and ignored.
    pub fn credible_owned(&self) -> BTreeSet<TopicPartition> {
        self.reported_owned
            .iter()
            .filter(|tp| self.assignment.contains(*tp) || self.revoking.contains(*tp))
            .cloned()
            .collect()
    }
}
