//! Ties each request type to its response type and API key, so both the client's
//! `send::<R>()` and the broker's dispatch are checked by the compiler.

use super::v1::{self, request_envelope, response_envelope};
use super::ApiKey;

/// A native request body.
pub trait Request: Sized {
    /// The matching response body.
    type Response;
    /// The API this request belongs to.
    const KEY: ApiKey;
    /// Wraps the request into the envelope's oneof.
    fn into_body(self) -> request_envelope::Body;
    /// Unwraps the matching response from the envelope's oneof; `None` if the body is
    /// for another API.
    fn response_from(body: response_envelope::Body) -> Option<Self::Response>;
}

macro_rules! requests {
    ($( $key:ident, $variant:ident, $req:ident, $resp:ident; )*) => {
        $(
            impl Request for v1::$req {
                type Response = v1::$resp;
                const KEY: ApiKey = ApiKey::$key;
                fn into_body(self) -> request_envelope::Body {
                    request_envelope::Body::$variant(self)
                }
                fn response_from(body: response_envelope::Body) -> Option<v1::$resp> {
                    match body {
                        response_envelope::Body::$variant(r) => Some(r),
                        _ => None,
                    }
                }
            }
        )*

        /// The API of a request body.
        pub fn request_api_key(body: &request_envelope::Body) -> ApiKey {
            match body { $( request_envelope::Body::$variant(_) => ApiKey::$key, )* }
        }

        /// The API of a response body.
        pub fn response_api_key(body: &response_envelope::Body) -> ApiKey {
            match body { $( response_envelope::Body::$variant(_) => ApiKey::$key, )* }
        }
    };
}

requests! {
    Produce, Produce, ProduceRequest, ProduceResponse;
    Fetch, Fetch, FetchRequest, FetchResponse;
    ListOffsets, ListOffsets, ListOffsetsRequest, ListOffsetsResponse;
    Metadata, Metadata, MetadataRequest, MetadataResponse;
    ApiVersions, ApiVersions, ApiVersionsRequest, ApiVersionsResponse;
    CreateTopics, CreateTopics, CreateTopicsRequest, CreateTopicsResponse;
    DeleteTopics, DeleteTopics, DeleteTopicsRequest, DeleteTopicsResponse;
    DeleteRecords, DeleteRecords, DeleteRecordsRequest, DeleteRecordsResponse;
    InitProducerId, InitProducerId, InitProducerIdRequest, InitProducerIdResponse;
    DescribeConfigs, DescribeConfigs, DescribeConfigsRequest, DescribeConfigsResponse;
    AlterConfigs, AlterConfigs, AlterConfigsRequest, AlterConfigsResponse;
    CreatePartitions, CreatePartitions, CreatePartitionsRequest, CreatePartitionsResponse;
    OffsetCommit, OffsetCommit, OffsetCommitRequest, OffsetCommitResponse;
    OffsetFetch, OffsetFetch, OffsetFetchRequest, OffsetFetchResponse;
    FindCoordinator, FindCoordinator, FindCoordinatorRequest, FindCoordinatorResponse;
    JoinGroup, JoinGroup, JoinGroupRequest, JoinGroupResponse;
    Heartbeat, Heartbeat, HeartbeatRequest, HeartbeatResponse;
    LeaveGroup, LeaveGroup, LeaveGroupRequest, LeaveGroupResponse;
    SyncGroup, SyncGroup, SyncGroupRequest, SyncGroupResponse;
    DescribeGroups, DescribeGroups, DescribeGroupsRequest, DescribeGroupsResponse;
    ListGroups, ListGroups, ListGroupsRequest, ListGroupsResponse;
    DeleteGroups, DeleteGroups, DeleteGroupsRequest, DeleteGroupsResponse;
    DescribeQuorum, DescribeQuorum, DescribeQuorumRequest, DescribeQuorumResponse;
    OffsetForLeaderEpoch, OffsetForLeaderEpoch, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse;
    AlterPartition, AlterPartition, AlterPartitionRequest, AlterPartitionResponse;
    AlterPartitionReassignments, AlterPartitionReassignments, AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse;
    ListPartitionReassignments, ListPartitionReassignments, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse;
}

impl v1::RequestEnvelope {
    /// An envelope around `request`, at the highest version this build supports.
    pub fn new<R: Request>(correlation_id: i32, client_id: &str, request: R) -> Self {
        let api_version = super::versions::supported(R::KEY).map_or(0, |r| i32::from(r.max));
        v1::RequestEnvelope {
            correlation_id,
            client_id: client_id.to_owned(),
            api_version,
            body: Some(request.into_body()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn oneof_tag_is_100_plus_key() {
        // Encode each request alone and read its first tag: field number << 3 | wire type.
        let env = v1::RequestEnvelope {
            correlation_id: 0,
            client_id: String::new(),
            api_version: 0,
            body: Some(v1::CreatePartitionsRequest::default().into_body()),
        };
        let bytes = env.encode_to_vec();
        let mut buf = bytes.as_slice();
        let key = prost::encoding::decode_varint(&mut buf).unwrap_or(0);
        assert_eq!(key >> 3, u64::from(ApiKey::CreatePartitions.field_number()));
    }

    #[test]
    fn group_api_tags_are_100_plus_key() {
        let bodies = [
            v1::OffsetCommitRequest::default().into_body(),
            v1::OffsetFetchRequest::default().into_body(),
            v1::FindCoordinatorRequest::default().into_body(),
            v1::JoinGroupRequest::default().into_body(),
            v1::HeartbeatRequest::default().into_body(),
            v1::LeaveGroupRequest::default().into_body(),
            v1::SyncGroupRequest::default().into_body(),
            v1::DescribeGroupsRequest::default().into_body(),
            v1::ListGroupsRequest::default().into_body(),
            v1::DeleteGroupsRequest::default().into_body(),
        ];
        for body in bodies {
            let api = request_api_key(&body);
            let env = v1::RequestEnvelope {
                body: Some(body),
                ..Default::default()
            };
            let bytes = env.encode_to_vec();
            let mut buf = bytes.as_slice();
            let key = prost::encoding::decode_varint(&mut buf).unwrap_or(0);
            assert_eq!(key >> 3, u64::from(api.field_number()), "{api}");
        }
    }
}
