//! One TCP connection to a broker with pipelined requests.
//!
//! A writer task owns the write half and a reader task the read half, so a request future
//! dropped mid-way can never leave half a frame on the wire. Requests are matched to
//! responses by correlation id through a map of oneshot senders; when the connection
//! breaks, every pending request fails with [`Error::ConnectionLost`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::codec::{FramedRead, FramedWrite};
use weir_protocol::native::v1::{RequestEnvelope, ResponseEnvelope};
use weir_protocol::native::{ClientCodec, Request};
use weir_protocol::ErrorCode;

use crate::error::{Error, Result};

type Reply = oneshot::Sender<Result<ResponseEnvelope>>;

struct Outgoing {
    envelope: RequestEnvelope,
    /// `None` for requests that get no response (produce with acks=0).
    reply: Option<Reply>,
    /// Told once the frame is handed to the socket writer (for requests without a
    /// response, so their sender knows when the bytes are off its hands).
    written: Option<oneshot::Sender<()>>,
}

#[derive(Default)]
struct State {
    pending: HashMap<i32, Reply>,
    closed: Option<String>,
    /// A request timed out and no response has arrived since: the broker may be paused
    /// or cut off, so "any broker" requests try the others first.
    stalled: bool,
}

struct Shared {
    addr: String,
    // std Mutex: held only to insert/remove one entry, never across an await.
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn close(&self, reason: &str) {
        let pending = {
            let mut s = self.lock();
            if s.closed.is_none() {
                s.closed = Some(reason.to_owned());
            }
            std::mem::take(&mut s.pending)
        };
        for (_, tx) in pending {
            let _ = tx.send(Err(self.lost(reason)));
        }
    }

    fn lost(&self, reason: &str) -> Error {
        Error::ConnectionLost {
            addr: self.addr.clone(),
            reason: reason.to_owned(),
        }
    }
}

/// A pipelined connection to one broker.
pub struct Connection {
    shared: Arc<Shared>,
    client_id: String,
    tx: mpsc::UnboundedSender<Outgoing>,
    next_correlation: AtomicI32,
    tasks: [JoinHandle<()>; 2],
}

impl Connection {
    /// Connects to `addr`.
    ///
    /// Cancellation safety: safe; dropping it changes nothing.
    pub async fn connect(
        addr: &str,
        client_id: &str,
        connect_timeout: Duration,
        max_frame_bytes: usize,
    ) -> Result<Connection> {
        let connect_err = |reason: String| Error::Connect {
            addr: addr.to_owned(),
            reason,
        };
        let stream = tokio::time::timeout(connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| connect_err(format!("timed out after {connect_timeout:?}")))?
            .map_err(|e| connect_err(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let (read_half, write_half) = stream.into_split();
        let shared = Arc::new(Shared {
            addr: addr.to_owned(),
            state: Mutex::new(State::default()),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let sink = FramedWrite::new(write_half, ClientCodec::new(max_frame_bytes));
        let frames = FramedRead::new(read_half, ClientCodec::new(max_frame_bytes));
        let writer = tokio::spawn(write_loop(sink, rx, shared.clone()));
        let reader = tokio::spawn(read_loop(frames, shared.clone()));
        Ok(Connection {
            shared,
            client_id: client_id.to_owned(),
            tx,
            next_correlation: AtomicI32::new(1),
            tasks: [writer, reader],
        })
    }

    /// The broker address.
    pub fn addr(&self) -> &str {
        &self.shared.addr
    }

    /// Whether a request timed out with no response from the broker since.
    pub fn is_stalled(&self) -> bool {
        self.shared.lock().stalled
    }

    /// Whether the connection broke; a closed connection fails every request.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().closed.is_some()
    }

    fn envelope<R: Request>(&self, request: R) -> RequestEnvelope {
        let id = self.next_correlation.fetch_add(1, Ordering::Relaxed) & i32::MAX;
        RequestEnvelope::new(id, &self.client_id, request)
    }

    /// Sends `request` and waits up to `timeout` for its response.
    ///
    /// Cancellation safety: safe; a dropped request still goes out whole (the writer task
    /// owns the socket) and its response is discarded.
    pub async fn request<R: Request>(&self, request: R, timeout: Duration) -> Result<R::Response> {
        let envelope = self.envelope(request);
        let correlation_id = envelope.correlation_id;
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Outgoing {
                envelope,
                reply: Some(reply),
                written: None,
            })
            .map_err(|_| self.shared.lost("connection closed"))?;
        let response = match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => r?,
            Ok(Err(_)) => return Err(self.shared.lost("connection closed")),
            Err(_) => {
                {
                    let mut s = self.shared.lock();
                    s.pending.remove(&correlation_id);
                    s.stalled = true;
                }
                return Err(Error::Timeout {
                    addr: self.shared.addr.clone(),
                    ms: timeout.as_millis() as u64,
                });
            }
        };
        self.unwrap_response::<R>(response)
    }

    /// Sends a request that gets no response (produce with acks=0).
    pub fn send_oneway<R: Request>(&self, request: R) -> Result<()> {
        let envelope = self.envelope(request);
        self.tx
            .send(Outgoing {
                envelope,
                reply: None,
                written: None,
            })
            .map_err(|_| self.shared.lost("connection closed"))
    }

    /// Sends a request that gets no response and waits until its frame was handed to the
    /// socket writer, so a caller that frees memory afterwards stays bounded by a slow
    /// socket instead of queueing without limit.
    ///
    /// Cancellation safety: safe; the request is sent either way.
    pub async fn send_oneway_written<R: Request>(&self, request: R) -> Result<()> {
        let envelope = self.envelope(request);
        let (written, rx) = oneshot::channel();
        self.tx
            .send(Outgoing {
                envelope,
                reply: None,
                written: Some(written),
            })
            .map_err(|_| self.shared.lost("connection closed"))?;
        rx.await.map_err(|_| self.shared.lost("connection closed"))
    }

    fn unwrap_response<R: Request>(&self, env: ResponseEnvelope) -> Result<R::Response> {
        let code = ErrorCode::from_i32(env.error_code);
        if !code.is_ok() {
            return Err(Error::Broker {
                code,
                context: format!("{} request to {}", R::KEY, self.shared.addr),
                message: env.error_message,
            });
        }
        env.body
            .and_then(R::response_from)
            .ok_or_else(|| Error::Protocol {
                addr: self.shared.addr.clone(),
                reason: format!("response to {} has another or no body", R::KEY),
            })
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // The writer is not aborted: it ends by itself once the queue (now closed) is
        // written, so a fire-and-forget produce enqueued just before is not lost.
        let [_writer, reader] = &self.tasks;
        reader.abort();
        self.shared.close("connection dropped by the client");
    }
}

async fn write_loop(
    mut sink: FramedWrite<tokio::net::tcp::OwnedWriteHalf, ClientCodec>,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    shared: Arc<Shared>,
) {
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        // Feed everything already queued, then flush once: one syscall for many requests.
        while let Some(out) = next.take() {
            if let Some(reply) = out.reply {
                let mut s = shared.lock();
                if let Some(reason) = &s.closed {
                    let _ = reply.send(Err(shared.lost(reason)));
                    drop(s);
                    next = rx.try_recv().ok();
                    continue;
                }
                s.pending.insert(out.envelope.correlation_id, reply);
            }
            if let Err(e) = sink.feed(out.envelope).await {
                shared.close(&format!("write failed: {e}"));
                return;
            }
            if let Some(w) = out.written {
                let _ = w.send(());
            }
            next = rx.try_recv().ok();
        }
        if let Err(e) = sink.flush().await {
            shared.close(&format!("write failed: {e}"));
            return;
        }
    }
}

async fn read_loop(
    mut frames: FramedRead<tokio::net::tcp::OwnedReadHalf, ClientCodec>,
    shared: Arc<Shared>,
) {
    let reason = loop {
        match frames.next().await {
            Some(Ok(env)) => {
                let reply = {
                    let mut s = shared.lock();
                    s.stalled = false;
                    s.pending.remove(&env.correlation_id)
                };
                // No entry: the request timed out and its caller gave up.
                if let Some(reply) = reply {
                    let _ = reply.send(Ok(env));
                }
            }
            Some(Err(e)) => break read_failure(&e),
            None => break CLOSED_BY_BROKER.to_owned(),
        }
    };
    shared.close(&reason);
}

const CLOSED_BY_BROKER: &str = "closed by the broker";

/// Why reading stopped, in the reader's words: a reset or an abrupt end is the broker
/// going away (a restart, a crash), not a malformed frame.
fn read_failure(e: &weir_protocol::native::FrameError) -> String {
    use std::io::ErrorKind;
    match e {
        weir_protocol::native::FrameError::Io(io)
            if matches!(
                io.kind(),
                ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::BrokenPipe
                    | ErrorKind::UnexpectedEof
            ) =>
        {
            format!("{CLOSED_BY_BROKER} ({io})")
        }
        other => format!("bad frame from broker: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::read_failure;
    use weir_protocol::native::FrameError;

    #[test]
    fn a_reset_reads_as_the_broker_closing_the_connection() {
        let reset = FrameError::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        let msg = read_failure(&reset);
        assert!(msg.starts_with("closed by the broker"), "{msg}");
        assert!(!msg.contains("bad frame"), "{msg}");
        let bad = FrameError::TooLarge { len: 10, max: 1 };
        assert!(read_failure(&bad).starts_with("bad frame from broker"));
    }
}
