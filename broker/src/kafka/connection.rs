//! One Kafka client connection, shaped like the native one (`server/connection.rs`): a
//! reader decodes frames and starts a task per request; a writer awaits those tasks in
//! arrival order, so responses leave in request order (clients check, P14) while requests
//! run concurrently, except that produce requests append one after another in arrival
//! order (`AppendTurns`), as Kafka does. The queue between them is bounded; request bytes
//! count against the broker-wide budget. Produce with acks=0 writes nothing (P15). A
//! request Kafka would not parse (bad header, unknown API, version not advertised,
//! undecodable body) closes the connection after the responses already owed, as Kafka
//! does.

use std::net::SocketAddr;
use std::sync::Arc;

use futures::StreamExt;
use kafka_protocol::messages::ApiKey;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;

use super::dispatch::{handle, Outgoing};
use super::error::KafkaError;
use super::{header, KafkaCtx};
use crate::server::{AppendTurns, ConnectionLimits, RequestMemory, ResponseWriter};

/// What a request task yields: an answer to write, nothing (acks=0), or a reason to close.
type Outcome = Result<Option<Outgoing>, KafkaError>;

/// A request being handled.
type InFlight = (i32, JoinHandle<Outcome>);

fn frame_codec(max: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(4)
        .max_frame_length(max)
        .new_codec()
}

/// Serves one connection until the peer closes, a request is unreadable, or shutdown.
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    ctx: Arc<KafkaCtx>,
    limits: ConnectionLimits,
    memory: RequestMemory,
    shutdown: CancellationToken,
) {
    tracing::debug!(%peer, "kafka connection opened");
    let _open = crate::instruments::recorders::connection_opened();
    let (read_half, write_half) = stream.into_split();
    let mut frames = FramedRead::new(read_half, frame_codec(limits.max_frame_bytes));
    let sink = ResponseWriter::new(write_half);
    let (tx, rx) = mpsc::channel::<InFlight>(limits.max_in_flight.max(1));
    // Cancelled when the writer stops (fatal request, peer gone), so reading stops too.
    let stop = shutdown.child_token();
    let writer = tokio::spawn(write_responses(sink, rx, peer, stop.clone()));
    let mut turns = AppendTurns::default();

    loop {
        let next = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            n = tokio::time::timeout(limits.max_idle, frames.next()) => match n {
                Ok(n) => n,
                Err(_) => {
                    tracing::info!(%peer, "closing idle kafka connection");
                    break;
                }
            },
        };
        let mut frame = match next {
            None => break,
            Some(Ok(f)) => f.freeze(),
            // The codec reports an oversized length as InvalidData; anything else is the
            // socket itself (a peer that reset), not bad input.
            Some(Err(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
                crate::instruments::recorders::bad_frame();
                tracing::warn!(%peer, error = %e, "closing kafka connection after a bad frame");
                break;
            }
            Some(Err(e)) => {
                tracing::debug!(%peer, error = %e, "kafka connection read failed");
                break;
            }
        };
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = memory.reserve(frame.len()) => p,
        };
        let h = match header::decode(&mut frame) {
            Ok(h) => h,
            Err(e) => {
                crate::instruments::recorders::bad_frame();
                tracing::warn!(%peer, error = %e, "closing kafka connection");
                break;
            }
        };
        let correlation_id = h.correlation_id;
        // Taken here, in the read loop, because this is where arrival order is known.
        let turn = (h.key == ApiKey::Produce).then(|| turns.next_turn());
        let ctx = ctx.clone();
        // The budget share is returned when the handler is done with the request, not
        // when its response is written (a client that stops reading must not starve others).
        let task = tokio::spawn(async move {
            let out = handle(&ctx, &h, frame, turn).await;
            drop(permit);
            out
        });
        if tx.send((correlation_id, task)).await.is_err() {
            break; // writer gone: the peer stopped reading, or a request was fatal
        }
    }
    drop(tx);
    let _ = writer.await;
    tracing::debug!(%peer, "kafka connection closed");
}

async fn write_responses(
    mut sink: ResponseWriter,
    mut rx: mpsc::Receiver<InFlight>,
    peer: SocketAddr,
    stop: CancellationToken,
) {
    let _stop = stop.drop_guard();
    while let Some((correlation_id, task)) = rx.recv().await {
        // Buffered responses must not wait behind a slow request (a long-polling fetch).
        if !task.is_finished() && sink.flush().await.is_err() {
            return;
        }
        let out = match task.await {
            Ok(Ok(Some(out))) => out,
            Ok(Ok(None)) => continue, // acks=0
            Ok(Err(e)) => {
                crate::instruments::recorders::bad_frame();
                tracing::warn!(%peer, correlation_id, error = %e, "closing kafka connection");
                break;
            }
            Err(e) => {
                tracing::error!(%peer, correlation_id, error = %e, "kafka handler failed");
                break;
            }
        };
        let written = match out {
            Outgoing::Body(bytes) => sink.feed_body(&bytes).await,
            Outgoing::Pieces(pieces) => sink.feed_pieces(pieces).await,
        };
        if let Err(e) = written {
            tracing::debug!(%peer, error = %e, "write failed; closing");
            return;
        }
        if rx.is_empty() && sink.flush().await.is_err() {
            return;
        }
    }
    let _ = sink.flush().await;
}
