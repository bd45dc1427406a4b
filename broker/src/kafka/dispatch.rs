//! The one dispatch `match` of the Kafka listener: decode the body at the header's
//! version, run the API's translation, encode the answer at the same version.

use bytes::Bytes;
use kafka_protocol::messages as m;
use kafka_protocol::messages::ApiKey;

use super::api;
use super::codec::{decode, encode};
use super::error::KafkaError;
use super::header::Header;
use super::spliced::fetch_frame;
use super::versions::advertised;
use super::KafkaCtx;
use crate::server::AppendTurn;
use weir_protocol::native::spliced::Piece;
use weir_storage::FileSlice;

/// An answer ready to write.
pub enum Outgoing {
    /// Response header and body; the writer adds the length.
    Body(Bytes),
    /// A whole frame (length included) in pieces, some of them sent from segment files
    /// (a zero-copy Fetch, `spliced`).
    Pieces(Vec<Piece<FileSlice>>),
}

/// Handles one request. `Ok(None)`: nothing is sent back (Produce with acks=0). `turn` is
/// the connection's append turn for a Produce; other requests just drop it.
pub async fn handle(
    k: &KafkaCtx,
    h: &Header,
    body: Bytes,
    turn: Option<AppendTurn>,
) -> Result<Option<Outgoing>, KafkaError> {
    if h.key == ApiKey::ApiVersions {
        // Any version is answered (kafka-wire-compat.md §2.2).
        return api::api_versions::handle(h, body).map(|b| Some(Outgoing::Body(b)));
    }
    if !advertised(h.key).is_some_and(|r| r.contains(h.version)) {
        return Err(KafkaError::Unsupported {
            key: h.key,
            version: h.version,
        });
    }
    macro_rules! run {
        ($module:ident, $req:ty) => {{
            let req: $req = decode(h, body)?;
            let resp = api::$module::handle(k, h, req).await?;
            encode(h, &resp).map(|b| Some(Outgoing::Body(b)))
        }};
    }
    match h.key {
        ApiKey::Produce => {
            let req: m::ProduceRequest = decode(h, body)?;
            match api::produce::handle(k, h, req, turn).await? {
                Some(resp) => encode(h, &resp).map(|b| Some(Outgoing::Body(b))),
                None => Ok(None),
            }
        }
        ApiKey::Fetch => {
            let req: m::FetchRequest = decode(h, body)?;
            let (resp, in_file) = api::fetch::handle(k, h, req).await?;
            if in_file.iter().all(Option::is_none) {
                return encode(h, &resp).map(|b| Some(Outgoing::Body(b)));
            }
            fetch_frame(h.correlation_id, h.version, &resp, in_file, FileSlice::len)
                .map(|p| Some(Outgoing::Pieces(p)))
                .map_err(|e| KafkaError::Encode {
                    key: h.key,
                    version: h.version,
                    reason: e.to_string(),
                })
        }
        ApiKey::ListOffsets => run!(list_offsets, m::ListOffsetsRequest),
        ApiKey::Metadata => run!(metadata, m::MetadataRequest),
        ApiKey::OffsetCommit => run!(offset_commit, m::OffsetCommitRequest),
        ApiKey::OffsetFetch => run!(offset_fetch, m::OffsetFetchRequest),
        ApiKey::FindCoordinator => run!(find_coordinator, m::FindCoordinatorRequest),
        ApiKey::JoinGroup => run!(join_group, m::JoinGroupRequest),
        ApiKey::Heartbeat => run!(heartbeat, m::HeartbeatRequest),
        ApiKey::LeaveGroup => run!(leave_group, m::LeaveGroupRequest),
        ApiKey::SyncGroup => run!(sync_group, m::SyncGroupRequest),
        ApiKey::DescribeGroups => run!(describe_groups, m::DescribeGroupsRequest),
        ApiKey::ListGroups => run!(list_groups, m::ListGroupsRequest),
        ApiKey::CreateTopics => run!(create_topics, m::CreateTopicsRequest),
        ApiKey::DeleteTopics => run!(delete_topics, m::DeleteTopicsRequest),
        ApiKey::DeleteRecords => run!(delete_records, m::DeleteRecordsRequest),
        ApiKey::InitProducerId => run!(init_producer_id, m::InitProducerIdRequest),
        ApiKey::OffsetForLeaderEpoch => {
            run!(offset_for_leader_epoch, m::OffsetForLeaderEpochRequest)
        }
        ApiKey::DescribeConfigs => run!(describe_configs, m::DescribeConfigsRequest),
        ApiKey::AlterConfigs => run!(alter_configs, m::AlterConfigsRequest),
        ApiKey::IncrementalAlterConfigs => {
            run!(incremental_alter_configs, m::IncrementalAlterConfigsRequest)
        }
        ApiKey::CreatePartitions => run!(create_partitions, m::CreatePartitionsRequest),
        ApiKey::DeleteGroups => run!(delete_groups, m::DeleteGroupsRequest),
        ApiKey::DescribeCluster => run!(describe_cluster, m::DescribeClusterRequest),
        ApiKey::ConsumerGroupHeartbeat => {
            run!(consumer_group_heartbeat, m::ConsumerGroupHeartbeatRequest)
        }
        ApiKey::ConsumerGroupDescribe => {
            run!(consumer_group_describe, m::ConsumerGroupDescribeRequest)
        }
        key => Err(KafkaError::Unsupported {
            key,
            version: h.version,
        }),
    }
}
