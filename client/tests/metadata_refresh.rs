//! The producer against two scripted brokers: the first metadata answer names broker 1 as
//! leader, which then refuses the produce with NOT_LEADER_OR_FOLLOWER; every later answer
//! names broker 2, which accepts it (or, in the delivery-timeout test, refuses too).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_util::codec::Framed;
use weir_client::{Acks, ClientConfig, Error, Producer, ProducerConfig, ProducerRecord};
use weir_protocol::native::v1::{
    request_envelope, response_envelope, BrokerMetadata, MetadataResponse, PartitionMetadata,
    PartitionProduceResponse, ProduceResponse, ResponseEnvelope, TopicMetadata,
    TopicProduceResponse,
};
use weir_protocol::native::ServerCodec;

const NOT_LEADER_OR_FOLLOWER: i32 = 6;

struct Cluster {
    addrs: [String; 2],
    metadata_calls: AtomicUsize,
    refused: AtomicUsize,
    /// Broker 2 refuses as well: no leader ever accepts.
    all_refuse: bool,
}

fn metadata(c: &Cluster) -> MetadataResponse {
    let leader = if c.metadata_calls.fetch_add(1, Ordering::SeqCst) == 0 {
        1
    } else {
        2
    };
    let broker = |id: i32| {
        let (host, port) = c.addrs[(id - 1) as usize].rsplit_once(':').unwrap();
        BrokerMetadata {
            node_id: id,
            host: host.into(),
            port: port.parse().unwrap(),
            rack: None,
        }
    };
    MetadataResponse {
        brokers: vec![broker(1), broker(2)],
        controller_id: 1,
        topics: vec![TopicMetadata {
            name: "t".into(),
            partitions: vec![PartitionMetadata {
                partition_index: 0,
                leader_id: leader,
                replica_nodes: vec![1, 2],
                isr_nodes: vec![1, 2],
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

async fn serve(l: TcpListener, node: i32, cluster: Arc<Cluster>) {
    loop {
        let Ok((s, _)) = l.accept().await else {
            return;
        };
        let cluster = cluster.clone();
        tokio::spawn(async move {
            let mut f = Framed::new(s, ServerCodec::default());
            while let Some(Ok(req)) = f.next().await {
                let body = match req.body {
                    Some(request_envelope::Body::Metadata(_)) => {
                        response_envelope::Body::Metadata(metadata(&cluster))
                    }
                    Some(request_envelope::Body::Produce(_)) => {
                        let (error_code, base_offset) = if node == 1 || cluster.all_refuse {
                            cluster.refused.fetch_add(1, Ordering::SeqCst);
                            (NOT_LEADER_OR_FOLLOWER, -1)
                        } else {
                            (0, 42)
                        };
                        response_envelope::Body::Produce(ProduceResponse {
                            responses: vec![TopicProduceResponse {
                                name: "t".into(),
                                partition_responses: vec![PartitionProduceResponse {
                                    index: 0,
                                    error_code,
                                    base_offset,
                                    log_append_time_ms: -1,
                                    ..Default::default()
                                }],
                            }],
                            throttle_time_ms: 0,
                        })
                    }
                    _ => return,
                };
                let resp = ResponseEnvelope {
                    correlation_id: req.correlation_id,
                    error_code: 0,
                    error_message: String::new(),
                    body: Some(body),
                };
                if f.send(resp).await.is_err() {
                    return;
                }
            }
        });
    }
}

async fn cluster(all_refuse: bool) -> Arc<Cluster> {
    let l1 = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let l2 = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cluster = Arc::new(Cluster {
        addrs: [
            l1.local_addr().unwrap().to_string(),
            l2.local_addr().unwrap().to_string(),
        ],
        metadata_calls: AtomicUsize::new(0),
        refused: AtomicUsize::new(0),
        all_refuse,
    });
    tokio::spawn(serve(l1, 1, cluster.clone()));
    tokio::spawn(serve(l2, 2, cluster.clone()));
    cluster
}

async fn producer(cluster: &Cluster, delivery_timeout: Duration) -> Producer {
    let mut cc = ClientConfig::new(&cluster.addrs[0]);
    cc.retry_backoff = Duration::from_millis(10);
    Producer::new(
        cc,
        ProducerConfig {
            acks: Acks::Leader,
            idempotence: false,
            linger: Duration::ZERO,
            delivery_timeout,
            ..ProducerConfig::default()
        },
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn producer_follows_the_new_leader_after_not_leader_or_follower() {
    let cluster = cluster(false).await;
    let producer = producer(&cluster, Duration::from_secs(20)).await;
    let md = producer
        .send(ProducerRecord::new("t", "v").with_partition(0))
        .await
        .unwrap_or_else(|e| panic!("not delivered to the new leader: {e}"));
    assert_eq!(md.offset, 42);
    assert_eq!(
        cluster.refused.load(Ordering::SeqCst),
        1,
        "one refusal, then re-routed"
    );
    assert!(cluster.metadata_calls.load(Ordering::SeqCst) >= 2);
}

#[tokio::test]
async fn retriable_errors_are_retried_until_the_delivery_timeout() {
    let cluster = cluster(true).await;
    let producer = producer(&cluster, Duration::from_millis(400)).await;
    let e = producer
        .send(ProducerRecord::new("t", "v").with_partition(0))
        .await
        .err()
        .unwrap();
    assert!(matches!(e, Error::DeliveryTimeout { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("NotLeaderOrFollower") && text.contains("raise delivery_timeout"),
        "{text}"
    );
    assert!(cluster.refused.load(Ordering::SeqCst) >= 2, "retried");
}
