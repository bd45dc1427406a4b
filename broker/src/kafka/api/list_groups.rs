//! ListGroups (16), v0-4.

use kafka_protocol::messages::list_groups_request::ListGroupsRequest;
use kafka_protocol::messages::list_groups_response::{ListGroupsResponse, ListedGroup};
use kafka_protocol::messages::GroupId;
use weir_protocol::native::v1 as n;

use super::join_group::external_type;
use super::{code, kstr, text};
use crate::kafka::error::KafkaError;
use crate::kafka::header::Header;
use crate::kafka::native::native;
use crate::kafka::KafkaCtx;

/// Lists groups (native ones too: they share the coordinator).
pub async fn handle(
    k: &KafkaCtx,
    h: &Header,
    req: ListGroupsRequest,
) -> Result<ListGroupsResponse, KafkaError> {
    let native_req = n::ListGroupsRequest {
        states_filter: req.states_filter.iter().map(text).collect(),
    };
    let r = native!(&k.broker, &h.client_id, ListGroups, native_req);
    let mut out = ListGroupsResponse::default();
    out.error_code = code(r.error_code);
    out.groups = r
        .groups
        .into_iter()
        .map(|g| {
            let mut o = ListedGroup::default();
            o.group_id = GroupId(kstr(g.group_id));
            o.protocol_type = kstr(external_type(&g.protocol_type));
            if h.version >= 4 {
                o.group_state = kstr(g.group_state);
            }
            o
        })
        .collect();
    Ok(out)
}
