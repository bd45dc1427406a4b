//! The producer against two scripted brokers: the first metadata answer names broker 1 as
//! leader, which then refuses the produce with NOT_LEADER_OR_FOLLOWER (or, `Mode::Stuck`,
//! stops answering anything, as a SIGSTOPped broker does); every later answer names
//! broker 2, which accepts it (or, in the delivery-timeout test, refuses too).
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Broker 1 refuses produce with NOT_LEADER_OR_FOLLOWER.
    Refuse,
    /// Broker 2 refuses as well: no leader ever accepts.
    AllRefuse,
    /// Broker 1 answers nothing from its first produce on.
    Stuck,
}

struct Cluster {
    addrs: [String; 2],
    metadata_calls: AtomicUsize,
    refused: AtomicUsize,
    mode: Mode,
    /// Broker 1 got stuck (`Mode::Stuck`).
    stuck: std::sync::atomic::AtomicBool,
    /// Requests broker 1 received while stuck.
    ignored: AtomicUsize,
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
                if node == 1 && cluster.mode == Mode::Stuck {
                    if cluster.stuck.load(Ordering::SeqCst) {
                        cluster.ignored.fetch_add(1, Ordering::SeqCst);
                        continue;
                    }
                    if matches!(req.body, Some(request_envelope::Body::Produce(_))) {
                        cluster.stuck.store(true, Ordering::SeqCst);
                        continue;
                    }
                }
                let body = match req.body {
                    Some(request_envelope::Body::Metadata(_)) => {
                        response_envelope::Body::Metadata(metadata(&cluster))
                    }
                    Some(request_envelope::Body::Produce(_)) => {
                        let (error_code, base_offset) =
                            if node == 1 || cluster.mode == Mode::AllRefuse {
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

async fn cluster(mode: Mode) -> Arc<Cluster> {
    let a = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let b = TcpListener::bind("127.0.0.1:0").await.unwrap();
    // Broker 1's address sorts first, so "any broker" requests would try it first.
    let (l1, l2) = if a.local_addr().unwrap().to_string() < b.local_addr().unwrap().to_string() {
        (a, b)
    } else {
        (b, a)
    };
    let cluster = Arc::new(Cluster {
        addrs: [
            l1.local_addr().unwrap().to_string(),
            l2.local_addr().unwrap().to_string(),
        ],
        metadata_calls: AtomicUsize::new(0),
        refused: AtomicUsize::new(0),
        mode,
        stuck: Default::default(),
        ignored: AtomicUsize::new(0),
    });
    tokio::spawn(serve(l1, 1, cluster.clone()));
    tokio::spawn(serve(l2, 2, cluster.clone()));
    cluster
}

async fn producer(cluster: &Cluster, delivery_timeout: Duration) -> Producer {
    let mut cc = ClientConfig::new(&cluster.addrs[0]);
    cc.retry_backoff = Duration::from_millis(10);
    cc.request_timeout = Duration::from_millis(500);
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
    let cluster = cluster(Mode::Refuse).await;
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
    let cluster = cluster(Mode::AllRefuse).await;
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

/// weir-chaos: with a partition's leader SIGSTOPped, the cluster moved the partition within
/// a second, but the producer retried the silent leader after each request timeout (a
/// timeout did not make it ask for metadata again), and asked the silent broker first for
/// metadata when it did. Now a timeout refreshes the metadata, from the other brokers first.
#[tokio::test]
async fn a_produce_that_times_out_on_a_stuck_leader_goes_to_the_new_one() {
    let cluster = cluster(Mode::Stuck).await;
    let producer = producer(&cluster, Duration::from_secs(5)).await;
    let md = producer
        .send(ProducerRecord::new("t", "v").with_partition(0))
        .await
        .unwrap_or_else(|e| panic!("not delivered to the new leader: {e}"));
    assert_eq!(md.offset, 42);
    assert!(cluster.stuck.load(Ordering::SeqCst));
    assert_eq!(
        cluster.ignored.load(Ordering::SeqCst),
        0,
        "nothing more was asked of the stuck broker"
    );
}
