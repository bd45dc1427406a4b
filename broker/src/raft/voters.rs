//! The static voter set, Kafka's `controller.quorum.voters`: `1@host:port,2@host:port,...`.
//! Pure parsing and checks, so a bad list is refused at start naming what is wrong.

use std::collections::BTreeMap;

use super::NodeId;

/// Why a voter list is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VotersError {
    /// No voters at all.
    #[error("cluster.voters is empty")]
    Empty,
    /// An item is not `id@host:port`.
    #[error("cluster.voters: {0:?} is not id@host:port")]
    Malformed(String),
    /// An id appears twice.
    #[error("cluster.voters: node id {0} is listed twice")]
    Duplicate(NodeId),
    /// This node is not a voter.
    #[error("cluster.voters does not contain this node's id {0} (server.node_id)")]
    NotAVoter(NodeId),
}

/// Parses `1@127.0.0.1:9193,2@127.0.0.1:9293` and checks it names `me` exactly once.
pub fn parse_voters(list: &str, me: NodeId) -> Result<BTreeMap<NodeId, String>, VotersError> {
    let mut out = BTreeMap::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (id, addr) = item
            .split_once('@')
            .ok_or_else(|| VotersError::Malformed(item.to_string()))?;
        let id: NodeId = id
            .parse()
            .map_err(|_| VotersError::Malformed(item.to_string()))?;
        let port_ok = addr
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !port_ok {
            return Err(VotersError::Malformed(item.to_string()));
        }
        if out.insert(id, addr.to_string()).is_some() {
            return Err(VotersError::Duplicate(id));
        }
    }
    if out.is_empty() {
        return Err(VotersError::Empty);
    }
    if !out.contains_key(&me) {
        return Err(VotersError::NotAVoter(me));
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_three_voter_list() {
        let v = parse_voters("1@127.0.0.1:9193, 2@127.0.0.1:9293,3@localhost:9393", 2).unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[&3], "localhost:9393");
    }

    #[test]
    fn bad_lists_name_the_problem() {
        assert_eq!(parse_voters("", 1), Err(VotersError::Empty));
        assert_eq!(
            parse_voters("1@a:1,1@b:2", 1),
            Err(VotersError::Duplicate(1))
        );
        assert_eq!(
            parse_voters("1@a:1,2@b:2", 3),
            Err(VotersError::NotAVoter(3))
        );
        for bad in ["1-a:1", "x@a:1", "1@a", "1@:9", "1@a:99999"] {
            assert!(
                matches!(parse_voters(bad, 1), Err(VotersError::Malformed(_))),
                "{bad}"
            );
        }
    }
}
