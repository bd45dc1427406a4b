//! DescribeQuorum (55): the metadata quorum (leader, term, log and applied index, voters
//! with their replication lag when this broker leads) and the registered brokers with how
//! many partitions each leads, plus this broker's image digest.

use weir_protocol::native::v1::{
    DescribeQuorumRequest, DescribeQuorumResponse, QuorumBroker, QuorumVoter,
};

use crate::ctx::BrokerCtx;

/// Describes the quorum as this broker sees it.
pub fn handle(ctx: &BrokerCtx, _req: DescribeQuorumRequest) -> DescribeQuorumResponse {
    let status = ctx.controller.quorum_status();
    let image = ctx.controller.image();
    let brokers = image
        .brokers
        .iter()
        .map(|(id, b)| QuorumBroker {
            id: *id,
            host: b.host.clone(),
            port: b.port,
            fenced: b.fenced,
            partitions_led: image
                .topics
                .values()
                .flat_map(|t| &t.partitions)
                .filter(|p| p.leader == *id)
                .count()
                .try_into()
                .unwrap_or(i32::MAX),
        })
        .collect();
    DescribeQuorumResponse {
        error_code: 0,
        cluster_id: ctx.cluster_id.clone(),
        leader_id: status.leader,
        term: status.term,
        last_log_index: status.last_log_index,
        applied_index: status.applied_index,
        voters: status
            .voters
            .into_iter()
            .map(|v| QuorumVoter {
                id: v.id,
                address: v.address,
                match_index: v.match_index,
                lag: v.lag,
            })
            .collect(),
        brokers,
        image_digest: image.digest(),
        node_id: ctx.node_id,
    }
}
