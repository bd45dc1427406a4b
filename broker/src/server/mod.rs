//! The native-protocol listener: accepts connections (bounded by a semaphore, backing off
//! on accept errors) and hands each to `connection::serve`. The accept loop is shared with
//! the Kafka listener (`crate::kafka`), so both get the same limits and shutdown, and
//! both order the appends of a connection's produce requests with [`AppendTurns`].

mod append_turns;
mod connection;
mod response_writer;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::ctx::BrokerCtx;

pub use append_turns::{AppendTurn, AppendTurns};
pub use connection::{ConnectionLimits, RequestMemory};
pub(crate) use response_writer::ResponseWriter;

/// Accepts until `shutdown` fires, then waits up to `grace` for open connections to
/// finish their in-flight requests.
pub async fn run(
    listener: TcpListener,
    ctx: Arc<BrokerCtx>,
    limits: ConnectionLimits,
    memory: RequestMemory,
    max_connections: usize,
    grace: Duration,
    shutdown: CancellationToken,
) {
    let serve = move |stream, peer, shutdown| {
        connection::serve(stream, peer, ctx.clone(), limits, memory.clone(), shutdown)
    };
    accept_loop(listener, max_connections, grace, shutdown, serve).await;
}

/// Accepts until `shutdown` fires, running `serve` per connection (at most
/// `max_connections` at once), then waits up to `grace` for open connections to finish.
pub async fn accept_loop<F, Fut>(
    listener: TcpListener,
    max_connections: usize,
    grace: Duration,
    shutdown: CancellationToken,
    serve: F,
) where
    F: Fn(TcpStream, SocketAddr, CancellationToken) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(max_connections));
    let mut connections = JoinSet::new();
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let conn = serve(stream, peer, shutdown.clone());
                connections.spawn(async move {
                    conn.await;
                    drop(permit);
                });
            }
            Err(e) => {
                // Usually EMFILE: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        // Reap finished connections so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    tracing::info!(
        open = connections.len(),
        "listener closed; draining connections"
    );
    let drained = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            left = connections.len(),
            "grace period over; dropping connections"
        );
        connections.abort_all();
    }
}
