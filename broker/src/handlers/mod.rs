//! One file per API; this file is the only dispatch `match`. A handler takes the context
//! and its request body and returns its response body; none touches the socket.

mod alter_configs;
mod alter_partition;
mod alter_partition_reassignments;
mod api_versions;
mod create_partitions;
mod create_topics;
mod delete_groups;
mod delete_records;
mod delete_topics;
mod describe_configs;
mod describe_groups;
mod describe_quorum;
mod fetch;
mod find_coordinator;
mod heartbeat;
mod init_producer_id;
mod join_group;
mod leave_group;
mod list_groups;
mod list_offsets;
mod list_partition_reassignments;
mod metadata;
mod offset_commit;
mod offset_fetch;
mod offset_for_leader_epoch;
mod produce;
mod sync_group;
#[cfg(test)]
mod tests;

use weir_protocol::native::v1::{request_envelope::Body as Req, response_envelope::Body as Resp};
use weir_protocol::native::v1::{RequestEnvelope, ResponseEnvelope};
use weir_protocol::native::{request_api_key, versions, ApiKey};
use weir_protocol::ErrorCode;
use weir_storage::FileSlice;

use crate::ctx::BrokerCtx;
use crate::instruments::RequestTimer;
use crate::server::AppendTurn;

pub use produce::validate_produce_records;

/// Runs one request. `None` means "send nothing back" (Produce with acks=0).
pub async fn dispatch(ctx: &BrokerCtx, req: RequestEnvelope) -> Option<ResponseEnvelope> {
    dispatch_in_turn(ctx, req, None).await
}

/// A response, and the fetched records to send from segment files (one entry per
/// partition of a Fetch response, in response order; empty for any other response).
pub struct Reply {
    /// The response; a partition with an entry in `in_file` has empty `records`.
    pub envelope: ResponseEnvelope,
    /// Records left in files (`weir_protocol::native::spliced` frames them).
    pub in_file: Vec<Option<FileSlice>>,
}

/// [`dispatch_in_turn`] for a caller that sends records from files (the native
/// connection): a Fetch may answer with slices when `ctx.fetch_zero_copy` is on.
pub async fn dispatch_zero_copy(
    ctx: &BrokerCtx,
    req: RequestEnvelope,
    turn: Option<AppendTurn>,
) -> Option<Reply> {
    dispatch_with(ctx, req, turn, ctx.fetch_zero_copy).await
}

/// [`dispatch`] for a request of a connection: a Produce appends only once `turn` comes
/// (every earlier produce of the connection appended) and gives it up right after.
/// Other requests just drop it.
pub async fn dispatch_in_turn(
    ctx: &BrokerCtx,
    req: RequestEnvelope,
    turn: Option<AppendTurn>,
) -> Option<ResponseEnvelope> {
    // Without zero copy every record is in the envelope.
    dispatch_with(ctx, req, turn, false)
        .await
        .map(|r| r.envelope)
}

/// [`dispatch_in_turn`] with the choice of zero copy for a Fetch spelled out.
pub async fn dispatch_with(
    ctx: &BrokerCtx,
    req: RequestEnvelope,
    turn: Option<AppendTurn>,
    zero_copy: bool,
) -> Option<Reply> {
    let timer = req
        .body
        .as_ref()
        .map(|b| RequestTimer::start(request_api_key(b)));
    let mut in_file = Vec::new();
    let response = route(ctx, req, turn, zero_copy, &mut in_file).await;
    if let Some(t) = timer {
        t.finish(response.as_ref());
    }
    response.map(|envelope| Reply { envelope, in_file })
}

async fn route(
    ctx: &BrokerCtx,
    req: RequestEnvelope,
    turn: Option<AppendTurn>,
    zero_copy: bool,
    in_file: &mut Vec<Option<FileSlice>>,
) -> Option<ResponseEnvelope> {
    let correlation_id = req.correlation_id;
    let client_id = req.client_id;
    let reply = |body: Resp| ResponseEnvelope {
        correlation_id,
        error_code: 0,
        error_message: String::new(),
        body: Some(body),
    };
    let Some(body) = req.body else {
        return Some(envelope_error(
            correlation_id,
            ErrorCode::UnsupportedVersion,
            "unknown API (empty or unrecognised request body)".into(),
        ));
    };
    let key = request_api_key(&body);
    let supported = versions::supported(key);
    if !supported.is_some_and(|r| r.contains(req.api_version)) {
        if key == ApiKey::ApiVersions {
            // Answer with the list anyway, so the client can pick a version it shares.
            let mut resp = api_versions::handle();
            resp.error_code = ErrorCode::UnsupportedVersion.as_i32();
            return Some(reply(Resp::ApiVersions(resp)));
        }
        return Some(envelope_error(
            correlation_id,
            ErrorCode::UnsupportedVersion,
            format!("{key} version {} is not supported", req.api_version),
        ));
    }
    let resp = match body {
        Req::ApiVersions(_) => Resp::ApiVersions(api_versions::handle()),
        Req::Metadata(r) => Resp::Metadata(metadata::handle(ctx, r).await),
        Req::CreateTopics(r) => Resp::CreateTopics(create_topics::handle(ctx, r).await),
        Req::DeleteTopics(r) => Resp::DeleteTopics(delete_topics::handle(ctx, r).await),
        Req::CreatePartitions(r) => Resp::CreatePartitions(create_partitions::handle(ctx, r).await),
        Req::DescribeConfigs(r) => Resp::DescribeConfigs(describe_configs::handle(ctx, r)),
        Req::AlterConfigs(r) => Resp::AlterConfigs(alter_configs::handle(ctx, r).await),
        Req::Produce(r) => Resp::Produce(produce::handle(ctx, r, turn).await?),
        Req::Fetch(r) => {
            let fetched = fetch::handle(ctx, r, zero_copy).await;
            *in_file = fetched.in_file;
            Resp::Fetch(fetched.response)
        }
        Req::ListOffsets(r) => Resp::ListOffsets(list_offsets::handle(ctx, r).await),
        Req::DeleteRecords(r) => Resp::DeleteRecords(delete_records::handle(ctx, r).await),
        Req::InitProducerId(r) => Resp::InitProducerId(init_producer_id::handle(ctx, r).await),
        Req::FindCoordinator(r) => Resp::FindCoordinator(find_coordinator::handle(ctx, r)),
        Req::JoinGroup(r) => Resp::JoinGroup(join_group::handle(ctx, &client_id, r).await),
        Req::SyncGroup(r) => Resp::SyncGroup(sync_group::handle(ctx, r).await),
        Req::Heartbeat(r) => Resp::Heartbeat(heartbeat::handle(ctx, r)),
        Req::LeaveGroup(r) => Resp::LeaveGroup(leave_group::handle(ctx, r)),
        Req::OffsetCommit(r) => Resp::OffsetCommit(offset_commit::handle(ctx, r).await),
        Req::OffsetFetch(r) => Resp::OffsetFetch(offset_fetch::handle(ctx, r)),
        Req::ListGroups(r) => Resp::ListGroups(list_groups::handle(ctx, r)),
        Req::DescribeGroups(r) => Resp::DescribeGroups(describe_groups::handle(ctx, r).await),
        Req::DeleteGroups(r) => Resp::DeleteGroups(delete_groups::handle(ctx, r).await),
        Req::DescribeQuorum(r) => Resp::DescribeQuorum(describe_quorum::handle(ctx, r)),
        Req::AlterPartition(r) => Resp::AlterPartition(alter_partition::handle(ctx, r).await),
        Req::AlterPartitionReassignments(r) => {
            Resp::AlterPartitionReassignments(alter_partition_reassignments::handle(ctx, r).await)
        }
        Req::ListPartitionReassignments(r) => {
            Resp::ListPartitionReassignments(list_partition_reassignments::handle(ctx, r))
        }
        Req::OffsetForLeaderEpoch(r) => {
            Resp::OffsetForLeaderEpoch(offset_for_leader_epoch::handle(ctx, r).await)
        }
    };
    Some(reply(resp))
}

/// A response that carries only an envelope-level error.
pub fn envelope_error(correlation_id: i32, code: ErrorCode, message: String) -> ResponseEnvelope {
    ResponseEnvelope {
        correlation_id,
        error_code: code.as_i32(),
        error_message: message,
        body: None,
    }
}
