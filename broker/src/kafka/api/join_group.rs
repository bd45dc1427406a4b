//! JoinGroup (11), v0-7; the coordinator's MEMBER_ID_REQUIRED (two-step join) reaches
//! only v4+ clients. Kafka members join the same coordinator as native ones, under the
//! protocol type `kafka/<type>` so that native and Kafka members never share a group (the
//! coordinator answers INCONSISTENT_GROUP_PROTOCOL to a member of the other kind). Each
//! member's topics and owned partitions come from its Subscription blob; the blobs are
//! kept as they are and handed to the leader, as Kafka does.

use kafka_protocol::messages::join_group_request::JoinGroupRequest;
use kafka_protocol::messages::join_group_response::{JoinGroupResponse, JoinGroupResponseMember};
use weir_protocol::native::v1 as n;
use weir_protocol::ErrorCode;

use super::{code, group, kstr, text};
use crate::group::assignor::AssignorKind;
use crate::kafka::consumer_protocol::decode_subscription;
use crate::kafka::error::KafkaError;
use crate::kafka::header::Header;
use crate::kafka::native::native;
use crate::kafka::KafkaCtx;

/// Prefix of the coordinator-side protocol type of Kafka groups.
pub const KAFKA_TYPE_PREFIX: &str = "kafka/";

/// The coordinator-side protocol type of a Kafka member.
pub fn internal_type(kafka_type: &str) -> String {
    format!("{KAFKA_TYPE_PREFIX}{kafka_type}")
}

/// The protocol type a Kafka client sees (native groups keep theirs).
pub fn external_type(internal: &str) -> String {
    internal
        .strip_prefix(KAFKA_TYPE_PREFIX)
        .unwrap_or(internal)
        .to_string()
}

/// Joins (parks until the generation forms).
pub async fn handle(
    k: &KafkaCtx,
    h: &Header,
    req: JoinGroupRequest,
) -> Result<JoinGroupResponse, KafkaError> {
    let protocol_type = text(&req.protocol_type);
    let offered: Vec<String> = req.protocols.iter().map(|p| text(&p.name)).collect();
    // Every protocol carries the same subscription; the first readable one is used.
    let sub = if protocol_type == "consumer" {
        req.protocols
            .iter()
            .find_map(|p| decode_subscription(&p.metadata))
            .unwrap_or_default()
    } else {
        Default::default()
    };
    let native_req = n::JoinGroupRequest {
        group_id: group(&req.group_id),
        session_timeout_ms: req.session_timeout_ms,
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        member_id: text(&req.member_id),
        group_instance_id: req.group_instance_id.as_ref().map(text),
        protocol_type: internal_type(&protocol_type),
        protocols: req
            .protocols
            .into_iter()
            .map(|p| n::JoinGroupProtocol {
                name: native_name(&text(&p.name)),
                metadata: p.metadata,
            })
            .collect(),
        topics: sub.topics,
        owned_partitions: sub
            .owned
            .into_iter()
            .map(|(topic, partitions)| n::TopicPartitions { topic, partitions })
            .collect(),
        reason: req.reason.as_ref().map(text).unwrap_or_default(),
    };
    let mut r = native!(&k.broker, &h.client_id, JoinGroup, native_req.clone());
    if r.error_code == ErrorCode::MemberIdRequired.as_i32() && h.version < 4 {
        // Two-step join (KIP-394) is for v4+ clients; an older one cannot handle
        // MEMBER_ID_REQUIRED, so it joins again at once with the id it was given.
        let again = n::JoinGroupRequest {
            member_id: r.member_id.clone(),
            ..native_req
        };
        r = native!(&k.broker, &h.client_id, JoinGroup, again);
    }
    r.protocol_name = offered_name(&offered, r.protocol_name);
    Ok(response(h.version, r))
}

/// The coordinator's name for an assignor a Kafka client offers. The coordinator computes
/// assignments itself, so a client-side assignor it does not know (KafkaJS's
/// "RoundRobinAssigner", a custom one) maps to the closest one it has; range otherwise.
pub fn native_name(kafka: &str) -> String {
    if AssignorKind::from_name(kafka).is_some() {
        return kafka.to_string();
    }
    let lower = kafka.to_ascii_lowercase();
    let kind = if lower.contains("sticky") {
        AssignorKind::Sticky
    } else if lower.contains("roundrobin") {
        AssignorKind::RoundRobin
    } else {
        AssignorKind::Range
    };
    kind.name().to_string()
}

/// The coordinator names the assignor it chose canonically ("sticky" for
/// "cooperative-sticky") or by its mapped name; a Kafka client only understands a name it
/// offered, so the answer uses the first offered name that maps to the same assignor.
fn offered_name(offered: &[String], chosen: String) -> String {
    if offered.contains(&chosen) {
        return chosen;
    }
    let kind = AssignorKind::from_name(&chosen);
    offered
        .iter()
        .find(|o| kind.is_some() && AssignorKind::from_name(&native_name(o)) == kind)
        .cloned()
        .unwrap_or(chosen)
}

/// The Kafka answer for a native one.
pub fn response(version: i16, r: n::JoinGroupResponse) -> JoinGroupResponse {
    let mut out = JoinGroupResponse::default();
    out.error_code = code(r.error_code);
    out.generation_id = r.generation_id;
    if version >= 7 {
        out.protocol_type = Some(kstr(external_type(&r.protocol_type)));
    }
    out.protocol_name = Some(kstr(r.protocol_name));
    out.leader = kstr(r.leader);
    out.member_id = kstr(r.member_id);
    out.members = r
        .members
        .into_iter()
        .map(|m| {
            let mut o = JoinGroupResponseMember::default();
            o.member_id = kstr(m.member_id);
            if version >= 5 {
                o.group_instance_id = m.group_instance_id.map(kstr);
            }
            o.metadata = m.metadata;
            o
        })
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignor_names_map_both_ways() {
        assert_eq!(native_name("range"), "range");
        assert_eq!(native_name("cooperative-sticky"), "cooperative-sticky");
        assert_eq!(native_name("RoundRobinAssigner"), "roundrobin");
        assert_eq!(native_name("my-custom"), "range");
        let offered = vec!["RoundRobinAssigner".to_string()];
        assert_eq!(
            offered_name(&offered, "roundrobin".into()),
            "RoundRobinAssigner"
        );
        let offered = vec!["cooperative-sticky".to_string()];
        assert_eq!(
            offered_name(&offered, "sticky".into()),
            "cooperative-sticky"
        );
    }
}
