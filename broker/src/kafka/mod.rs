//! The Kafka wire-protocol listener: existing Kafka clients and tools (kcat, librdkafka,
//! kafka-python, ...) against the same partitions, offsets, groups and producer state as
//! the native listener.
//!
//! Layout:
//! - [`header`]: the request header decoder (pure, fuzzed); [`codec`]: body decode and
//!   response encode with the `kafka-protocol` crate's message types.
//! - [`connection`]: one socket, responses in request order; [`dispatch`]: the single
//!   `match` on the API key; [`versions`]: what is advertised.
//! - [`api`]: one file per API that translates a Kafka request into the native handler's
//!   request and its answer back (no API is implemented twice); [`native`]: that bridge.
//! - [`consumer_protocol`]: the Subscription/Assignment blobs inside JoinGroup/SyncGroup.
//! - [`error`]: what closes a connection.

mod api;
mod codec;
mod connection;
pub mod consumer_protocol;
mod dispatch;
pub mod error;
pub mod header;
mod native;
mod spliced;
pub mod versions;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::ctx::BrokerCtx;
use crate::metadata::MetadataImage;
use crate::server::{ConnectionLimits, RequestMemory};

/// What Kafka translations need besides the broker's own context.
#[derive(Debug)]
pub struct KafkaCtx {
    /// The broker.
    pub broker: Arc<BrokerCtx>,
    /// Host Kafka clients are told to connect to (Metadata, FindCoordinator).
    pub advertised_host: String,
    /// Port Kafka clients are told to connect to.
    pub advertised_port: i32,
}

impl KafkaCtx {
    /// This broker as Kafka clients should reach it.
    pub fn node(&self) -> Node {
        Node {
            id: self.broker.node_id,
            host: self.advertised_host.clone(),
            port: self.advertised_port,
        }
    }

    /// The brokers Kafka clients are offered (Metadata, DescribeCluster), from the
    /// metadata image; see [`live_brokers`].
    pub fn brokers(&self) -> Vec<Node> {
        live_brokers(&self.broker.controller.image(), &self.node())
    }

    /// Broker `id` at its Kafka address, if it registered one (fenced or not).
    pub fn broker(&self, id: i32) -> Option<Node> {
        if id == self.broker.node_id {
            return Some(self.node());
        }
        let image = self.broker.controller.image();
        let (host, port) = image.brokers.get(&id)?.kafka_address()?;
        Some(Node {
            id,
            host: host.to_string(),
            port,
        })
    }
}

/// Every unfenced registered broker that has a Kafka listener, at its Kafka address, by
/// id. `me` is always named by its own address, since the image may still hold the one
/// its previous incarnation registered, and is added when its registration is not
/// applied yet or when nobody else is left: a client given an empty list has nowhere to
/// send its next request (P20). Fenced brokers lead nothing and are not offered (as Kafka
/// does); brokers without a Kafka listener cannot be reached by these clients at all.
pub fn live_brokers(image: &MetadataImage, me: &Node) -> Vec<Node> {
    let mut out: Vec<Node> = image
        .brokers
        .iter()
        .filter(|(id, b)| !b.fenced && **id != me.id)
        .filter_map(|(id, b)| {
            let (host, port) = b.kafka_address()?;
            Some(Node {
                id: *id,
                host: host.to_string(),
                port,
            })
        })
        .collect();
    let registered_live = image.brokers.get(&me.id).is_some_and(|b| !b.fenced);
    if registered_live || !image.brokers.contains_key(&me.id) || out.is_empty() {
        out.push(me.clone());
        out.sort_by_key(|n| n.id);
    }
    out
}

/// A broker's id and Kafka address, as responses name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Broker id.
    pub id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
}

/// Serves Kafka clients on `listener` until `shutdown`, with the native listener's limits.
pub async fn run(
    listener: TcpListener,
    ctx: Arc<KafkaCtx>,
    limits: ConnectionLimits,
    memory: RequestMemory,
    max_connections: usize,
    grace: Duration,
    shutdown: CancellationToken,
) {
    let serve = move |stream, peer, shutdown| {
        connection::serve(stream, peer, ctx.clone(), limits, memory.clone(), shutdown)
    };
    crate::server::accept_loop(listener, max_connections, grace, shutdown, serve).await;
}

/// Splits "HOST:PORT" (host may be a name); `None` if it is not that shape.
pub fn split_host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return None;
    }
    Some((host.to_string(), port.parse().ok()?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::metadata::{BrokerFenceRecord, BrokerRecord, MetadataRecord, Record};

    fn register(img: &mut MetadataImage, id: i32, kafka_port: i32) {
        img.apply(&MetadataRecord {
            record: Some(Record::Broker(BrokerRecord {
                broker_id: id,
                host: "native".into(),
                port: 9000 + id,
                incarnation: 1,
                kafka_host: if kafka_port > 0 {
                    "kafka".into()
                } else {
                    String::new()
                },
                kafka_port,
            })),
        });
    }

    fn fence(img: &mut MetadataImage, id: i32) {
        img.apply(&MetadataRecord {
            record: Some(Record::BrokerFence(BrokerFenceRecord {
                broker_id: id,
                fenced: true,
            })),
        });
    }

    fn me(port: i32) -> Node {
        Node {
            id: 1,
            host: "me".into(),
            port,
        }
    }

    fn listed(nodes: &[Node]) -> Vec<(i32, &str, i32)> {
        nodes
            .iter()
            .map(|n| (n.id, n.host.as_str(), n.port))
            .collect()
    }

    #[test]
    fn every_live_broker_at_its_kafka_address() {
        let mut img = MetadataImage::new(1);
        // Before anything is registered: this broker alone.
        assert_eq!(listed(&live_brokers(&img, &me(19092))), [(1, "me", 19092)]);
        // Its own image entry may be a previous incarnation's: its own address wins.
        register(&mut img, 1, 9091);
        register(&mut img, 2, 9092);
        register(&mut img, 3, 9093);
        // No Kafka listener: not reachable by Kafka clients.
        register(&mut img, 4, 0);
        assert_eq!(
            listed(&live_brokers(&img, &me(19092))),
            [(1, "me", 19092), (2, "kafka", 9092), (3, "kafka", 9093)]
        );
        fence(&mut img, 3);
        assert_eq!(
            listed(&live_brokers(&img, &me(19092))),
            [(1, "me", 19092), (2, "kafka", 9092)]
        );
        // A fenced broker is not offered, unless the list would be empty.
        fence(&mut img, 1);
        assert_eq!(
            listed(&live_brokers(&img, &me(19092))),
            [(2, "kafka", 9092)]
        );
        fence(&mut img, 2);
        assert_eq!(listed(&live_brokers(&img, &me(19092))), [(1, "me", 19092)]);
    }
}
