//! The group states (Kafka's classic group state machine).

/// Where a group is in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupState {
    /// No members; committed offsets may remain.
    Empty,
    /// Waiting for every member to (re)join; members keep fetching what they own.
    PreparingRebalance,
    /// A new generation was formed; members fetch their assignment with SyncGroup.
    CompletingRebalance,
    /// Every member has its assignment.
    Stable,
    /// Deleted; the coordinator drops it.
    Dead,
}

impl GroupState {
    /// Kafka's name, as ListGroups and DescribeGroups report it.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }

    /// The state for a Kafka name (case-insensitive), for ListGroups filters.
    pub fn from_name(name: &str) -> Option<GroupState> {
        [
            GroupState::Empty,
            GroupState::PreparingRebalance,
            GroupState::CompletingRebalance,
            GroupState::Stable,
            GroupState::Dead,
        ]
        .into_iter()
        .find(|s| s.name().eq_ignore_ascii_case(name))
    }
}

impl std::fmt::Display for GroupState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
