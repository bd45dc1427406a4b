//! LeaveGroup (13), v0-4: v0-2 name one member, v3+ a list with per-member answers.

use kafka_protocol::messages::leave_group_request::LeaveGroupRequest;
use kafka_protocol::messages::leave_group_response::{LeaveGroupResponse, MemberResponse};
use weir_protocol::native::v1 as n;

use super::{code, group, kstr, text};
use crate::kafka::error::KafkaError;
use crate::kafka::header::Header;
use crate::kafka::native::native;
use crate::kafka::KafkaCtx;

/// Removes the members.
pub async fn handle(
    k: &KafkaCtx,
    h: &Header,
    req: LeaveGroupRequest,
) -> Result<LeaveGroupResponse, KafkaError> {
    let members = if h.version < 3 {
        vec![n::MemberIdentity {
            member_id: text(&req.member_id),
            group_instance_id: None,
            reason: String::new(),
        }]
    } else {
        req.members
            .iter()
            .map(|m| n::MemberIdentity {
                member_id: text(&m.member_id),
                group_instance_id: m.group_instance_id.as_ref().map(text),
                reason: m.reason.as_ref().map(text).unwrap_or_default(),
            })
            .collect()
    };
    let native_req = n::LeaveGroupRequest {
        group_id: group(&req.group_id),
        members,
    };
    let r = native!(&k.broker, &h.client_id, LeaveGroup, native_req);
    Ok(response(h.version, r))
}

/// The Kafka answer for a native one.
pub fn response(version: i16, r: n::LeaveGroupResponse) -> LeaveGroupResponse {
    let mut out = LeaveGroupResponse::default();
    out.error_code = code(r.error_code);
    if version >= 3 {
        out.members = r
            .members
            .into_iter()
            .map(|m| {
                let mut o = MemberResponse::default();
                o.member_id = kstr(m.member_id);
                o.group_instance_id = m.group_instance_id.map(kstr);
                o.error_code = code(m.error_code);
                o
            })
            .collect();
    } else if out.error_code == 0 {
        // v0-2 have one member and only a top-level code.
        out.error_code = r.members.first().map_or(0, |m| code(m.error_code));
    }
    out
}
