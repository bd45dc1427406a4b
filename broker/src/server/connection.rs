//! One client connection. A read task decodes frames and starts a handler task per
//! request; the writer awaits those tasks strictly in arrival order, so responses leave in
//! request order while requests execute concurrently, except that produce requests append
//! one after another in arrival order (`AppendTurns`). The queue between them is bounded
//! (`max_in_flight`): when it is full the reader stops reading, which pushes back on the
//! client through TCP. A frame that cannot be decoded (oversized length, garbage) ends
//! reading; responses already owed are still written, then the socket closes.

use std::net::SocketAddr;
use std::sync::Arc;

use futures::StreamExt;
use prost::Message;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use weir_protocol::native::v1::request_envelope::Body as Req;
use weir_protocol::native::ServerCodec;
use weir_protocol::ErrorCode;

use super::response_writer::ResponseWriter;
use super::AppendTurns;
use crate::ctx::BrokerCtx;
use crate::handlers::{dispatch_zero_copy, envelope_error, Reply};

/// Per-connection limits.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Largest request frame body.
    pub max_frame_bytes: usize,
    /// Requests executing or awaiting their turn to be written.
    pub max_in_flight: usize,
    /// Longest wait for the next complete request before closing.
    pub max_idle: std::time::Duration,
}

/// Broker-wide budget of request bytes received and not yet handled, in KiB permits.
#[derive(Debug, Clone)]
pub struct RequestMemory {
    permits: Arc<Semaphore>,
    total_kib: u32,
}

impl RequestMemory {
    /// A budget of `bytes`.
    pub fn new(bytes: u64) -> Self {
        let total_kib = u32::try_from(bytes / 1024)
            .unwrap_or(u32::MAX)
            .clamp(1, Semaphore::MAX_PERMITS as u32);
        RequestMemory {
            permits: Arc::new(Semaphore::new(total_kib as usize)),
            total_kib,
        }
    }

    /// Waits until `bytes` fit in the budget. A request larger than the whole budget
    /// takes all of it (and so runs alone) rather than waiting forever.
    pub(crate) async fn reserve(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        let kib = u32::try_from(bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, self.total_kib);
        self.permits.clone().acquire_many_owned(kib).await.ok()
    }
}

/// A request being handled: correlation id and handler task.
type InFlight = (i32, JoinHandle<Option<Reply>>);

/// Serves one connection until the peer closes, a frame is bad, or shutdown.
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    ctx: Arc<BrokerCtx>,
    limits: ConnectionLimits,
    memory: RequestMemory,
    shutdown: CancellationToken,
) {
    tracing::debug!(%peer, "connection opened");
    let _open = crate::instruments::recorders::connection_opened();
    let (read_half, write_half) = stream.into_split();
    let mut frames = FramedRead::new(read_half, ServerCodec::new(limits.max_frame_bytes));
    let sink = ResponseWriter::new(write_half);
    let (tx, rx) = mpsc::channel::<InFlight>(limits.max_in_flight.max(1));
    let writer = tokio::spawn(write_responses(sink, rx, peer));
    let mut turns = AppendTurns::default();

    loop {
        let next = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            n = tokio::time::timeout(limits.max_idle, frames.next()) => match n {
                Ok(n) => n,
                Err(_) => {
                    tracing::info!(%peer, "closing idle connection");
                    break;
                }
            },
        };
        match next {
            None => break,
            Some(Ok(req)) => {
                let correlation_id = req.correlation_id;
                let permit = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    p = memory.reserve(req.encoded_len()) => p,
                };
                // Taken here, in the read loop, because this is where arrival order is known.
                let turn = matches!(req.body, Some(Req::Produce(_))).then(|| turns.next_turn());
                let ctx = ctx.clone();
                // The request's share of the budget is returned when its handler is done
                // with it, not when the response is written: a client that stops reading
                // responses must not starve everyone else.
                let task = tokio::spawn(async move {
                    let response = dispatch_zero_copy(&ctx, req, turn).await;
                    drop(permit);
                    response
                });
                if tx.send((correlation_id, task)).await.is_err() {
                    break; // writer gone: the peer stopped reading
                }
            }
            Some(Err(e)) => {
                crate::instruments::recorders::bad_frame();
                tracing::warn!(%peer, error = %e, "closing connection after a bad frame");
                break;
            }
        }
    }
    drop(tx);
    let _ = writer.await;
    tracing::debug!(%peer, "connection closed");
}

async fn write_responses(
    mut sink: ResponseWriter,
    mut rx: mpsc::Receiver<InFlight>,
    peer: SocketAddr,
) {
    while let Some((correlation_id, task)) = rx.recv().await {
        // Buffered responses must not wait behind a slow request (a long-polling fetch).
        if !task.is_finished() && sink.flush().await.is_err() {
            return;
        }
        let response = match task.await {
            Ok(Some(r)) => r,
            Ok(None) => continue, // acks=0
            Err(e) => {
                tracing::error!(%peer, correlation_id, error = %e, "handler failed");
                Reply {
                    envelope: envelope_error(
                        correlation_id,
                        ErrorCode::Unknown,
                        "internal error".into(),
                    ),
                    in_file: Vec::new(),
                }
            }
        };
        if let Err(e) = sink.feed(response).await {
            tracing::debug!(%peer, error = %e, "write failed; closing");
            return;
        }
        // Batch writes: flush only when no further response is queued.
        if rx.is_empty() && sink.flush().await.is_err() {
            return;
        }
    }
    let _ = sink.flush().await;
}
