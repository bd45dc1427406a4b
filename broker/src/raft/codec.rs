//! Conversions between openraft's types and our protobuf messages (`weir.raft.v1`). Pure:
//! what goes to disk or the wire is ours, so a Raft library upgrade cannot silently change
//! a file format.

use std::collections::{BTreeMap, BTreeSet};

use openraft::{
    BasicNode, CommittedLeaderId, EntryPayload, LogId, Membership, StoredMembership, Vote,
};
use weir_protocol::native::raft as pb;

use super::{Entry, NodeId, TypeConfig};

/// A message that does not describe a valid openraft value.
#[derive(Debug, thiserror::Error)]
#[error("invalid raft message: {0}")]
pub struct CodecError(pub &'static str);

/// LogId → proto.
pub fn log_id_to_pb(id: &LogId<NodeId>) -> pb::LogId {
    pb::LogId {
        term: id.leader_id.term,
        node_id: id.leader_id.node_id,
        index: id.index,
    }
}

/// proto → LogId.
pub fn log_id_from_pb(id: &pb::LogId) -> LogId<NodeId> {
    LogId::new(CommittedLeaderId::new(id.term, id.node_id), id.index)
}

/// Optional LogId → proto.
pub fn opt_log_id_to_pb(id: &Option<LogId<NodeId>>) -> Option<pb::LogId> {
    id.as_ref().map(log_id_to_pb)
}

/// Optional proto → LogId.
pub fn opt_log_id_from_pb(id: &Option<pb::LogId>) -> Option<LogId<NodeId>> {
    id.as_ref().map(log_id_from_pb)
}

/// Vote → proto.
pub fn vote_to_pb(v: &Vote<NodeId>) -> pb::Vote {
    pb::Vote {
        term: v.leader_id.term,
        node_id: v.leader_id.node_id,
        committed: v.committed,
    }
}

/// proto → Vote.
pub fn vote_from_pb(v: &pb::Vote) -> Vote<NodeId> {
    if v.committed {
        Vote::new_committed(v.term, v.node_id)
    } else {
        Vote::new(v.term, v.node_id)
    }
}

/// A required vote field.
pub fn req_vote(v: &Option<pb::Vote>) -> Result<Vote<NodeId>, CodecError> {
    v.as_ref()
        .map(vote_from_pb)
        .ok_or(CodecError("missing vote"))
}

/// Membership → proto.
pub fn membership_to_pb(m: &Membership<NodeId, BasicNode>) -> pb::Membership {
    pb::Membership {
        configs: m
            .get_joint_config()
            .iter()
            .map(|c| pb::NodeSet {
                ids: c.iter().copied().collect(),
            })
            .collect(),
        nodes: m.nodes().map(|(id, n)| (*id, n.addr.clone())).collect(),
    }
}

/// proto → Membership.
pub fn membership_from_pb(m: &pb::Membership) -> Membership<NodeId, BasicNode> {
    let configs: Vec<BTreeSet<NodeId>> = m
        .configs
        .iter()
        .map(|c| c.ids.iter().copied().collect())
        .collect();
    let nodes: BTreeMap<NodeId, BasicNode> = m
        .nodes
        .iter()
        .map(|(id, addr)| (*id, BasicNode::new(addr.clone())))
        .collect();
    Membership::new(configs, nodes)
}

/// Entry → proto.
pub fn entry_to_pb(e: &Entry) -> pb::Entry {
    let payload = match &e.payload {
        EntryPayload::Blank => pb::entry::Payload::Blank(true),
        EntryPayload::Normal(batch) => pb::entry::Payload::Normal(batch.clone()),
        EntryPayload::Membership(m) => pb::entry::Payload::Membership(membership_to_pb(m)),
    };
    pb::Entry {
        log_id: Some(log_id_to_pb(&e.log_id)),
        payload: Some(payload),
    }
}

/// proto → Entry.
pub fn entry_from_pb(e: &pb::Entry) -> Result<Entry, CodecError> {
    let log_id = e
        .log_id
        .as_ref()
        .map(log_id_from_pb)
        .ok_or(CodecError("entry without log id"))?;
    let payload = match &e.payload {
        Some(pb::entry::Payload::Blank(_)) => EntryPayload::Blank,
        Some(pb::entry::Payload::Normal(b)) => EntryPayload::Normal(b.clone()),
        Some(pb::entry::Payload::Membership(m)) => EntryPayload::Membership(membership_from_pb(m)),
        None => return Err(CodecError("entry without payload")),
    };
    Ok(openraft::Entry::<TypeConfig> { log_id, payload })
}

/// StoredMembership → (log id, membership) protos.
pub fn stored_membership_to_pb(
    m: &StoredMembership<NodeId, BasicNode>,
) -> (Option<pb::LogId>, pb::Membership) {
    (
        opt_log_id_to_pb(m.log_id()),
        membership_to_pb(m.membership()),
    )
}

/// (log id, membership) protos → StoredMembership.
pub fn stored_membership_from_pb(
    log_id: &Option<pb::LogId>,
    m: &Option<pb::Membership>,
) -> StoredMembership<NodeId, BasicNode> {
    let membership = m
        .as_ref()
        .map(membership_from_pb)
        .unwrap_or_else(|| Membership::new(Vec::new(), BTreeMap::new()));
    StoredMembership::new(opt_log_id_from_pb(log_id), membership)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use weir_protocol::native::metadata::{
        metadata_record::Record, MetadataRecord, ProducerIdsRecord,
    };

    #[test]
    fn entries_round_trip() {
        let nodes: BTreeMap<NodeId, BasicNode> = [
            (1, BasicNode::new("127.0.0.1:1")),
            (2, BasicNode::new("127.0.0.1:2")),
        ]
        .into_iter()
        .collect();
        let joint = Membership::new(vec![[1].into(), [1, 2].into()], nodes);
        let batch = pb::MetadataBatch {
            records: vec![MetadataRecord {
                record: Some(Record::ProducerIds(ProducerIdsRecord {
                    broker_id: 1,
                    next_producer_id: 1000,
                })),
            }],
        };
        let id = LogId::new(CommittedLeaderId::new(3, 2), 17);
        for payload in [
            EntryPayload::Blank,
            EntryPayload::Normal(batch),
            EntryPayload::Membership(joint),
        ] {
            let e: Entry = openraft::Entry {
                log_id: id,
                payload,
            };
            assert_eq!(entry_from_pb(&entry_to_pb(&e)).unwrap(), e);
        }
        assert!(entry_from_pb(&pb::Entry::default()).is_err());
    }

    #[test]
    fn votes_round_trip() {
        for v in [Vote::new(4, 1), Vote::new_committed(5, 3)] {
            assert_eq!(vote_from_pb(&vote_to_pb(&v)), v);
        }
    }
}
