//! ListGroups (16), v0-5; v5 filters by and reports the group type ("classic", or
//! "consumer" for a KIP-848 consumer group).

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
    let types: Vec<String> = req.types_filter.iter().map(text).collect();
    out.groups = r
        .groups
        .into_iter()
        .filter(|g| types.is_empty() || types.iter().any(|t| t.eq_ignore_ascii_case(&g.group_type)))
        .map(|g| {
            let mut o = ListedGroup::default();
            o.group_id = GroupId(kstr(g.group_id));
            o.protocol_type = kstr(external_type(&g.protocol_type));
            if h.version >= 4 {
                o.group_state = kstr(g.group_state);
            }
            if h.version >= 5 {
                o.group_type = kstr(g.group_type);
            }
            o
        })
        .collect();
    Ok(out)
}
