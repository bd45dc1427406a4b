//! DeleteGroups (42), v0-2.

use kafka_protocol::messages::delete_groups_request::DeleteGroupsRequest;
use kafka_protocol::messages::delete_groups_response::{
    DeletableGroupResult, DeleteGroupsResponse,
};
use kafka_protocol::messages::GroupId;
use weir_protocol::native::v1 as n;

use super::{code, group, kstr};
use crate::kafka::error::KafkaError;
use crate::kafka::header::Header;
use crate::kafka::native::native;
use crate::kafka::KafkaCtx;

/// Deletes empty groups and their offsets.
pub async fn handle(
    k: &KafkaCtx,
    h: &Header,
    req: DeleteGroupsRequest,
) -> Result<DeleteGroupsResponse, KafkaError> {
    let native_req = n::DeleteGroupsRequest {
        groups_names: req.groups_names.iter().map(group).collect(),
    };
    let r = native!(&k.broker, &h.client_id, DeleteGroups, native_req);
    let mut out = DeleteGroupsResponse::default();
    out.results = r
        .results
        .into_iter()
        .map(|g| {
            let mut o = DeletableGroupResult::default();
            o.group_id = GroupId(kstr(g.group_id));
            o.error_code = code(g.error_code);
            o
        })
        .collect();
    Ok(out)
}
