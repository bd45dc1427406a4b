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
pub mod versions;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::ctx::BrokerCtx;
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
