//! DescribeCluster (60), v0-1: every live broker at its Kafka address and the active
//! controller, from the metadata image. No native handler is involved.

use kafka_protocol::messages::describe_cluster_request::DescribeClusterRequest;
use kafka_protocol::messages::describe_cluster_response::{
    DescribeClusterBroker, DescribeClusterResponse,
};
use kafka_protocol::messages::BrokerId;

use super::kstr;
use crate::kafka::error::KafkaError;
use crate::kafka::header::Header;
use crate::kafka::KafkaCtx;

/// Kafka's endpoint type "brokers" (v1+).
const ENDPOINT_BROKERS: i8 = 1;

/// Describes the cluster.
pub async fn handle(
    k: &KafkaCtx,
    h: &Header,
    _req: DescribeClusterRequest,
) -> Result<DescribeClusterResponse, KafkaError> {
    let mut out = DescribeClusterResponse::default();
    if h.version >= 1 {
        out.endpoint_type = ENDPOINT_BROKERS;
    }
    out.cluster_id = kstr(k.broker.cluster_id.clone());
    out.controller_id = BrokerId(k.broker.controller.controller_id());
    out.brokers = k
        .brokers()
        .into_iter()
        .map(|node| {
            let mut b = DescribeClusterBroker::default();
            b.broker_id = BrokerId(node.id);
            b.host = kstr(node.host);
            b.port = node.port;
            b
        })
        .collect();
    Ok(out)
}
