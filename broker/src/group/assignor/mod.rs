//! Partition assignors. The coordinator runs them itself (ARCHITECTURE.md decision 5):
//! given each member's subscription and what it owns, an assignor returns the *target*
//! assignment; [`cooperative`] then withholds every partition that still belongs to
//! another member, so a partition only moves after its old owner released it.
//!
//! - `range.rs`: per topic, contiguous ranges (Kafka's `range`).
//! - `round_robin.rs`: all partitions dealt in turn (Kafka's `roundrobin`).
//! - `sticky.rs`: balanced, and moves as few partitions as possible.
//! - `cooperative.rs`: the revoke-first rule on top of any target.

mod cooperative;
mod range;
mod round_robin;
mod sticky;

use std::collections::{BTreeMap, BTreeSet};

pub use cooperative::{cooperative, Cooperative};

use super::types::{PartitionCounts, TopicPartition};

/// A member as an assignor sees it.
#[derive(Debug, Clone, Copy)]
pub struct MemberInput<'a> {
    /// Member id (assignors order members by it, so results are deterministic).
    pub id: &'a str,
    /// Subscribed topics.
    pub topics: &'a BTreeSet<String>,
    /// Partitions the member owns now (only the sticky assignor looks at them).
    pub owned: &'a BTreeSet<TopicPartition>,
}

/// Member id → its partitions. Every member of the input has an entry (maybe empty).
pub type Assignment = BTreeMap<String, BTreeSet<TopicPartition>>;

/// The assignors the coordinator runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssignorKind {
    /// Kafka's `range`.
    Range,
    /// Kafka's `roundrobin`.
    RoundRobin,
    /// Balanced and sticky; also accepted as `cooperative-sticky`.
    Sticky,
}

impl AssignorKind {
    /// The assignor for a protocol name a member offered, if the coordinator runs it.
    pub fn from_name(name: &str) -> Option<AssignorKind> {
        match name {
            "range" => Some(AssignorKind::Range),
            "roundrobin" => Some(AssignorKind::RoundRobin),
            "sticky" | "cooperative-sticky" => Some(AssignorKind::Sticky),
            _ => None,
        }
    }

    /// The canonical name.
    pub fn name(self) -> &'static str {
        match self {
            AssignorKind::Range => "range",
            AssignorKind::RoundRobin => "roundrobin",
            AssignorKind::Sticky => "sticky",
        }
    }

    /// The target assignment for `members` over the partitions that exist now.
    pub fn assign(self, members: &[MemberInput<'_>], counts: &dyn PartitionCounts) -> Assignment {
        let mut sorted: Vec<MemberInput<'_>> = members.to_vec();
        sorted.sort_by(|a, b| a.id.cmp(b.id));
        sorted.dedup_by(|a, b| a.id == b.id);
        match self {
            AssignorKind::Range => range::assign(&sorted, counts),
            AssignorKind::RoundRobin => round_robin::assign(&sorted, counts),
            AssignorKind::Sticky => sticky::assign(&sorted, counts),
        }
    }
}

/// Every partition of every topic some member subscribes to, in (topic, partition) order.
fn all_partitions(
    members: &[MemberInput<'_>],
    counts: &dyn PartitionCounts,
) -> Vec<TopicPartition> {
    let topics: BTreeSet<&String> = members.iter().flat_map(|m| m.topics.iter()).collect();
    let mut out = Vec::new();
    for t in topics {
        let n = counts.partition_count(t).unwrap_or(0);
        for p in 0..n {
            out.push(TopicPartition::new(t.as_str(), p as i32));
        }
    }
    out
}

/// An assignment with an empty entry for every member.
fn empty_assignment(members: &[MemberInput<'_>]) -> Assignment {
    members
        .iter()
        .map(|m| (m.id.to_string(), BTreeSet::new()))
        .collect()
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::*;

    /// Owned storage for `MemberInput`s in tests.
    pub struct Members(pub Vec<(String, BTreeSet<String>, BTreeSet<TopicPartition>)>);

    impl Members {
        pub fn new() -> Self {
            Members(Vec::new())
        }
        pub fn add(mut self, id: &str, topics: &[&str], owned: &[(&str, i32)]) -> Self {
            self.0.push((
                id.to_string(),
                topics.iter().map(|t| t.to_string()).collect(),
                owned
                    .iter()
                    .map(|(t, p)| TopicPartition::new(*t, *p))
                    .collect(),
            ));
            self
        }
        pub fn inputs(&self) -> Vec<MemberInput<'_>> {
            self.0
                .iter()
                .map(|(id, topics, owned)| MemberInput { id, topics, owned })
                .collect()
        }
    }

    pub fn counts(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
        pairs.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    pub fn sizes(a: &Assignment) -> Vec<usize> {
        a.values().map(BTreeSet::len).collect()
    }

    /// Every subscribed partition is assigned exactly once, and only to a subscriber.
    pub fn check_complete(a: &Assignment, m: &Members, counts: &BTreeMap<String, u32>) {
        let inputs = m.inputs();
        let all = all_partitions(&inputs, counts);
        let mut seen = BTreeSet::new();
        for (member, parts) in a {
            let subs = &m.0.iter().find(|x| &x.0 == member).unwrap().1;
            for p in parts {
                assert!(subs.contains(&p.topic), "{member} got unsubscribed {p}");
                assert!(seen.insert(p.clone()), "{p} assigned twice");
            }
        }
        assert_eq!(seen.len(), all.len(), "not every partition assigned");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in [
            AssignorKind::Range,
            AssignorKind::RoundRobin,
            AssignorKind::Sticky,
        ] {
            assert_eq!(AssignorKind::from_name(k.name()), Some(k));
        }
        assert_eq!(
            AssignorKind::from_name("cooperative-sticky"),
            Some(AssignorKind::Sticky)
        );
        assert_eq!(AssignorKind::from_name("uniform"), None);
    }
}
