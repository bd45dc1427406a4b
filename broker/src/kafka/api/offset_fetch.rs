//! OffsetFetch (9), v1-9: one group per request up to v7, a list of groups from v8; v9
//! names the member, whose epoch a KIP-848 consumer group checks (STALE_MEMBER_EPOCH).
//! Nothing committed reads as offset -1 with metadata "" and no error; the committed
//! metadata string round-trips (P22).

use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequest;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponse, OffsetFetchResponseGroup, OffsetFetchResponsePartition,
    OffsetFetchResponsePartitions, OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::GroupId;
use weir_protocol::native::v1 as n;

use super::{code, group, kstr, text, topic};
use crate::kafka::error::KafkaError;
use crate::kafka::header::Header;
use crate::kafka::native::native;
use crate::kafka::KafkaCtx;

/// Reads committed offsets.
pub async fn handle(
    k: &KafkaCtx,
    h: &Header,
    req: OffsetFetchRequest,
) -> Result<OffsetFetchResponse, KafkaError> {
    if h.version >= 8 {
        return handle_groups(k, h, req).await;
    }
    let all_topics = req.topics.is_none();
    let native_req = n::OffsetFetchRequest {
        group_id: group(&req.group_id),
        topics: req
            .topics
            .unwrap_or_default()
            .into_iter()
            .map(|t| n::OffsetFetchTopic {
                name: text(&t.name.0),
                partition_indexes: t.partition_indexes,
            })
            .collect(),
        all_topics,
        require_stable: req.require_stable,
    };
    let r = native!(&k.broker, &h.client_id, OffsetFetch, native_req);
    Ok(response(h.version, r))
}

/// v8+: every group of the request, one native call each.
async fn handle_groups(
    k: &KafkaCtx,
    h: &Header,
    req: OffsetFetchRequest,
) -> Result<OffsetFetchResponse, KafkaError> {
    let mut out = OffsetFetchResponse::default();
    for g in req.groups {
        let group_id = group(&g.group_id);
        let member = g.member_id.as_ref().map(text).unwrap_or_default();
        if !member.is_empty() {
            let checked = k
                .broker
                .groups
                .validate_offset_fetch(&group_id, &member, g.member_epoch);
            if let Err(c) = checked {
                let mut o = OffsetFetchResponseGroup::default();
                o.group_id = GroupId(kstr(group_id));
                o.error_code = c.code();
                out.groups.push(o);
                continue;
            }
        }
        let native_req = n::OffsetFetchRequest {
            group_id: group_id.clone(),
            all_topics: g.topics.is_none(),
            topics: g
                .topics
                .unwrap_or_default()
                .into_iter()
                .map(|t| n::OffsetFetchTopic {
                    name: text(&t.name.0),
                    partition_indexes: t.partition_indexes,
                })
                .collect(),
            require_stable: req.require_stable,
        };
        let r = native!(&k.broker, &h.client_id, OffsetFetch, native_req);
        out.groups.push(group_response(group_id, r));
    }
    Ok(out)
}

/// One group of a v8+ answer.
pub fn group_response(group_id: String, r: n::OffsetFetchResponse) -> OffsetFetchResponseGroup {
    let mut out = OffsetFetchResponseGroup::default();
    out.group_id = GroupId(kstr(group_id));
    out.error_code = code(r.error_code);
    out.topics = r
        .topics
        .into_iter()
        .map(|t| {
            let mut o = OffsetFetchResponseTopics::default();
            o.name = topic(t.name);
            o.partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let mut o = OffsetFetchResponsePartitions::default();
                    o.partition_index = p.partition_index;
                    o.committed_offset = p.committed_offset;
                    o.committed_leader_epoch = p.committed_leader_epoch;
                    o.metadata = Some(kstr(p.metadata));
                    o.error_code = code(p.error_code);
                    o
                })
                .collect();
            o
        })
        .collect();
    out
}

/// The Kafka answer for a native one (v1-7).
pub fn response(version: i16, r: n::OffsetFetchResponse) -> OffsetFetchResponse {
    let mut out = OffsetFetchResponse::default();
    let top = code(r.error_code);
    if version >= 2 {
        out.error_code = top;
    }
    out.topics = r
        .topics
        .into_iter()
        .map(|t| {
            let mut o = OffsetFetchResponseTopic::default();
            o.name = topic(t.name);
            o.partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let mut o = OffsetFetchResponsePartition::default();
                    o.partition_index = p.partition_index;
                    o.committed_offset = p.committed_offset;
                    if version >= 5 {
                        o.committed_leader_epoch = p.committed_leader_epoch;
                    }
                    o.metadata = Some(kstr(p.metadata));
                    // v1 has no top-level code: a group error shows on each partition.
                    o.error_code = if p.error_code == 0 && version < 2 {
                        top
                    } else {
                        code(p.error_code)
                    };
                    o
                })
                .collect();
            o
        })
        .collect();
    out
}
