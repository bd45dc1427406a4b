//! A plain request/response connection from one broker to another's native listener
//! (replica fetches, ISR changes sent to the controller). One request at a time.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;
use weir_protocol::native::v1::RequestEnvelope;
use weir_protocol::native::{ClientCodec, Request};

/// A plain request/response connection to another broker's native listener.
pub struct Conn {
    framed: Framed<TcpStream, ClientCodec>,
    next_id: i32,
}

impl Conn {
    /// Connects (bounded).
    pub async fn connect(addr: &str) -> Result<Conn, String> {
        let stream = tokio::time::timeout(
            Duration::from_secs(5),
            TcpStream::connect(crate::dial::target(addr)),
        )
        .await
        .map_err(|_| format!("connect to {addr} timed out"))?
        .map_err(|e| format!("connect to {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        Ok(Conn {
            framed: Framed::new(
                stream,
                ClientCodec::new(weir_protocol::native::DEFAULT_MAX_FRAME_BYTES),
            ),
            next_id: 0,
        })
    }

    /// Sends `req` and waits (bounded) for its answer.
    pub async fn call<R: Request>(&mut self, req: R) -> Result<R::Response, String> {
        self.next_id = self.next_id.wrapping_add(1);
        let id = self.next_id;
        let env = RequestEnvelope::new(id, "weir-broker", req);
        self.framed.send(env).await.map_err(|e| e.to_string())?;
        // Bounded: the leader answers a fetch within its max wait.
        let next = tokio::time::timeout(Duration::from_secs(30), self.framed.next())
            .await
            .map_err(|_| "the leader did not answer in time".to_string())?;
        let resp = match next {
            Some(Ok(r)) => r,
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("the leader closed the connection".into()),
        };
        if resp.correlation_id != id {
            return Err(format!("answer {} for request {id}", resp.correlation_id));
        }
        if resp.error_code != 0 {
            return Err(format!("error {}: {}", resp.error_code, resp.error_message));
        }
        resp.body
            .and_then(R::response_from)
            .ok_or_else(|| "answer of another API".to_string())
    }
}
