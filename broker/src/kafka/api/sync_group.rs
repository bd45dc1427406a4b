//! SyncGroup (14), v0-5. The leader's client-computed assignments go to the coordinator,
//! which hands each member the bytes the leader wrote for it (followers wait for them).
//! A leader that sends none leaves the coordinator's assignment in place, written as a
//! Kafka Assignment blob.

use kafka_protocol::messages::sync_group_request::SyncGroupRequest;
use kafka_protocol::messages::sync_group_response::SyncGroupResponse;
use weir_protocol::native::v1 as n;

use super::join_group::internal_type;
use super::{code, group, kstr, text};
use crate::kafka::consumer_protocol::encode_assignment;
use crate::kafka::error::KafkaError;
use crate::kafka::header::Header;
use crate::kafka::native::native;
use crate::kafka::KafkaCtx;

/// The member's assignment for its generation.
pub async fn handle(
    k: &KafkaCtx,
    h: &Header,
    req: SyncGroupRequest,
) -> Result<SyncGroupResponse, KafkaError> {
    let kafka_type = req.protocol_type.as_ref().map(text);
    // The name the client chose from its own offer (its assignor's): the coordinator's
    // canonical name ("range" for a custom assignor it maps) would fail the client's check.
    let asked_name = req.protocol_name.as_ref().map(text);
    let native_req = n::SyncGroupRequest {
        group_id: group(&req.group_id),
        generation_id: req.generation_id,
        member_id: text(&req.member_id),
        group_instance_id: req.group_instance_id.as_ref().map(text),
        protocol_type: internal_type(kafka_type.as_deref().unwrap_or("consumer")),
        protocol_name: req.protocol_name.as_ref().map(text).unwrap_or_default(),
        assignments: req
            .assignments
            .into_iter()
            .map(|a| n::SyncGroupAssignment {
                member_id: text(&a.member_id),
                assignment: a.assignment,
            })
            .collect(),
    };
    let mut r = native!(&k.broker, &h.client_id, SyncGroup, native_req);
    if let Some(name) = asked_name.filter(|n| !n.is_empty()) {
        r.protocol_name = name;
    }
    Ok(response(h.version, kafka_type, r))
}

/// The Kafka answer for a native one.
pub fn response(
    version: i16,
    kafka_type: Option<String>,
    r: n::SyncGroupResponse,
) -> SyncGroupResponse {
    let mut out = SyncGroupResponse::default();
    out.error_code = code(r.error_code);
    if version >= 5 {
        out.protocol_type = kafka_type.map(kstr);
        out.protocol_name = Some(kstr(r.protocol_name));
    }
    // Always present, empty on error (P9).
    out.assignment = if r.error_code != 0 {
        bytes::Bytes::new()
    } else if !r.assignment.is_empty() {
        // The leader's bytes for this member, as it wrote them.
        r.assignment
    } else if r.error_code == 0 {
        let parts: Vec<(String, Vec<i32>)> = r
            .assigned_partitions
            .into_iter()
            .map(|t| (t.topic, t.partitions))
            .collect();
        encode_assignment(&parts)
    } else {
        bytes::Bytes::new()
    };
    out
}
