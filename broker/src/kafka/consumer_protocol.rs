//! The blobs of Kafka's classic consumer protocol (kafka-wire-compat.md §5): a member's
//! Subscription inside JoinGroup's protocol metadata, and the Assignment inside
//! SyncGroup's answer. Both start with an int16 version; fields are only ever appended, so
//! a newer version is read with the newest layout this crate knows.
//!
//! The listener reads each member's topics and owned partitions out of its Subscription.
//! The group leader's client computes the assignment and sends one Assignment per member
//! in SyncGroup; the coordinator delivers those bytes unchanged and reads the partitions
//! out of them (for lag and describe). When a leader sends none, the coordinator's own
//! assignment is written as an Assignment.

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::{
    ConsumerProtocolAssignment, TopicPartition as AssignedTopic,
};
use kafka_protocol::messages::ConsumerProtocolSubscription;
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::kafka::api::{text, topic};

/// Newest Subscription/Assignment layout the message crate knows.
const NEWEST: i16 = 3;

/// What the coordinator needs from a member's Subscription.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscription {
    /// Subscribed topics.
    pub topics: Vec<String>,
    /// Partitions the member still owns (cooperative protocols), by topic.
    pub owned: Vec<(String, Vec<i32>)>,
}

/// Reads a Subscription; `None` when the bytes are not one (the member then subscribes to
/// nothing, rather than failing the join).
pub fn decode_subscription(metadata: &Bytes) -> Option<Subscription> {
    let mut buf = metadata.clone();
    if buf.remaining() < 2 {
        return None;
    }
    let version = buf.get_i16();
    if version < 0 {
        return None;
    }
    let s = ConsumerProtocolSubscription::decode(&mut buf, version.min(NEWEST)).ok()?;
    Some(Subscription {
        topics: s.topics.iter().map(text).collect(),
        owned: s
            .owned_partitions
            .into_iter()
            .map(|tp| (text(&tp.topic.0), tp.partitions))
            .collect(),
    })
}

/// The partitions an Assignment names, by topic; `None` when the bytes are not one (an
/// empty blob is an empty assignment).
pub fn decode_assignment(blob: &Bytes) -> Option<Vec<(String, Vec<i32>)>> {
    if blob.is_empty() {
        return Some(Vec::new());
    }
    let mut buf = blob.clone();
    if buf.remaining() < 2 {
        return None;
    }
    let version = buf.get_i16();
    if version < 0 {
        return None;
    }
    let a = ConsumerProtocolAssignment::decode(&mut buf, version.min(NEWEST)).ok()?;
    Some(
        a.assigned_partitions
            .into_iter()
            .map(|tp| (text(&tp.topic.0), tp.partitions))
            .collect(),
    )
}

/// Writes an Assignment (version 0, readable by every client).
pub fn encode_assignment(partitions: &[(String, Vec<i32>)]) -> Bytes {
    let mut a = ConsumerProtocolAssignment::default();
    a.assigned_partitions = partitions
        .iter()
        .map(|(t, p)| {
            let mut tp = AssignedTopic::default();
            tp.topic = topic(t.clone());
            tp.partitions = p.clone();
            tp
        })
        .collect();
    let mut out = BytesMut::new();
    out.extend_from_slice(&0i16.to_be_bytes());
    // Encoding a v0 Assignment of plain values cannot fail; an empty assignment is the
    // safe answer if it ever did.
    if a.encode(&mut out, 0).is_err() {
        return Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    }
    out.freeze()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition;

    fn subscription(version: i16) -> Bytes {
        let mut s = ConsumerProtocolSubscription::default();
        s.topics = vec![crate::kafka::api::kstr("a"), crate::kafka::api::kstr("b")];
        s.user_data = Some(Bytes::new());
        if version >= 1 {
            let mut tp = TopicPartition::default();
            tp.topic = topic("a");
            tp.partitions = vec![0, 2];
            s.owned_partitions = vec![tp];
        }
        let mut out = BytesMut::new();
        out.extend_from_slice(&version.to_be_bytes());
        s.encode(&mut out, version).unwrap();
        out.freeze()
    }

    #[test]
    fn reads_every_subscription_version() {
        for v in 0..=3 {
            let s = decode_subscription(&subscription(v)).unwrap();
            assert_eq!(s.topics, vec!["a", "b"]);
            if v >= 1 {
                assert_eq!(s.owned, vec![("a".to_string(), vec![0, 2])]);
            }
        }
    }

    #[test]
    fn assignments_round_trip_and_junk_is_none() {
        let parts = vec![("a".to_string(), vec![0, 3]), ("b".to_string(), vec![1])];
        assert_eq!(decode_assignment(&encode_assignment(&parts)), Some(parts));
        assert_eq!(decode_assignment(&Bytes::new()), Some(Vec::new()));
        assert_eq!(decode_assignment(&Bytes::from_static(&[0])), None);
        let full = encode_assignment(&[("topic".to_string(), vec![1, 2, 3])]);
        for cut in 0..full.len() {
            let _ = decode_assignment(&full.slice(..cut));
        }
    }

    #[test]
    fn junk_is_no_subscription() {
        assert_eq!(decode_subscription(&Bytes::from_static(&[0])), None);
        assert_eq!(
            decode_subscription(&Bytes::from_static(&[0, 0, 0x7f, 0xff, 0xff, 0xff])),
            None
        );
        let full = subscription(1);
        for cut in 0..full.len() {
            let _ = decode_subscription(&full.slice(..cut));
        }
    }

    #[test]
    fn assignment_round_trips() {
        let bytes = encode_assignment(&[("t".into(), vec![1, 3])]);
        let mut buf = bytes.clone();
        assert_eq!(buf.get_i16(), 0);
        let a = ConsumerProtocolAssignment::decode(&mut buf, 0).unwrap();
        assert_eq!(a.assigned_partitions.len(), 1);
        assert_eq!(a.assigned_partitions[0].partitions, vec![1, 3]);
    }
}
