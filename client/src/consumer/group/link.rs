//! The member's line to its group coordinator: found with FindCoordinator, connected
//! lazily, and found again when a connection breaks or the broker says it is not (or no
//! longer) the coordinator, e.g. after a broker restart.
//!
//! Two connections: JoinGroup parks on the broker until the new generation forms, and
//! responses on one connection come back in order, so heartbeats and commits must not
//! queue behind it.

use std::sync::Arc;

use weir_protocol::native::v1;
use weir_protocol::native::Request;
use weir_protocol::ErrorCode;

use crate::client::Client;
use crate::connection::Connection;
use crate::error::{Error, Result};

/// The two connections to the current coordinator.
#[derive(Clone)]
pub(super) struct Conns {
    /// For JoinGroup only.
    join: Arc<Connection>,
    /// Sync, heartbeat, commit, offset fetch, leave.
    other: Arc<Connection>,
}

impl Conns {
    fn alive(&self) -> bool {
        !self.join.is_closed() && !self.other.is_closed()
    }
}

/// Which of the two connections a request uses.
#[derive(Debug, Clone, Copy)]
pub(super) enum Lane {
    /// The one JoinGroup parks on.
    Join,
    /// Everything else.
    Other,
}

pub(super) struct Link {
    client: Arc<Client>,
    group_id: String,
    // Async mutex: held across FindCoordinator and connect so that the heartbeat task and
    // `poll` share one discovery. Dropping a caller mid-way leaves `None`: the next call
    // starts over.
    conns: tokio::sync::Mutex<Option<Conns>>,
}

/// Error codes that mean "ask FindCoordinator again".
pub(super) fn coordinator_moved(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NotCoordinator
            | ErrorCode::CoordinatorNotAvailable
            | ErrorCode::CoordinatorLoadInProgress
    )
}

/// Errors after which the connection (not the request) is suspect.
pub(super) fn link_failure(e: &Error) -> bool {
    match e {
        Error::Connect { .. } | Error::ConnectionLost { .. } | Error::Timeout { .. } => true,
        Error::Broker { code, .. } => coordinator_moved(*code),
        _ => false,
    }
}

impl Link {
    pub(super) fn new(client: Arc<Client>, group_id: String) -> Link {
        Link {
            client,
            group_id,
            conns: tokio::sync::Mutex::new(None),
        }
    }

    /// The live connections, finding and connecting to the coordinator when needed.
    /// Cancellation safe: a dropped call leaves nothing half-set.
    pub(super) async fn get(&self) -> Result<Conns> {
        let mut guard = self.conns.lock().await;
        if let Some(c) = guard.as_ref().filter(|c| c.alive()) {
            return Ok(c.clone());
        }
        *guard = None;
        let fresh = self.discover().await?;
        *guard = Some(fresh.clone());
        Ok(fresh)
    }

    /// Drops `stale` so the next [`Link::get`] asks FindCoordinator again (unless another
    /// caller already replaced it).
    pub(super) async fn forget(&self, stale: &Conns) {
        let mut guard = self.conns.lock().await;
        if guard
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(&c.other, &stale.other))
        {
            *guard = None;
        }
    }

    async fn discover(&self) -> Result<Conns> {
        let fc = self
            .client
            .request_any(v1::FindCoordinatorRequest {
                key: self.group_id.clone(),
                key_type: 0,
            })
            .await?;
        Error::check(
            fc.error_code,
            || format!("find coordinator for {}", self.group_id),
            &fc.error_message,
        )?;
        let addr = format!("{}:{}", fc.host, fc.port);
        let cc = self.client.config();
        let connect =
            || Connection::connect(&addr, &cc.client_id, cc.connect_timeout, cc.max_frame_bytes);
        let join = Arc::new(connect().await?);
        let other = Arc::new(connect().await?);
        Ok(Conns { join, other })
    }

    /// Sends `request` to the coordinator on `lane`. A broken connection, or an error
    /// code from `code_of` saying the coordinator moved, makes the next call find the
    /// coordinator again; the error is returned either way (callers decide on retries,
    /// since not every request is safe to repeat).
    pub(super) async fn request<R: Request>(
        &self,
        lane: Lane,
        request: R,
        timeout: std::time::Duration,
        code_of: impl Fn(&R::Response) -> i32,
    ) -> Result<R::Response> {
        let conns = self.get().await?;
        let conn = match lane {
            Lane::Join => &conns.join,
            Lane::Other => &conns.other,
        };
        match conn.request(request, timeout).await {
            Ok(r) => {
                if coordinator_moved(ErrorCode::from_i32(code_of(&r))) {
                    self.forget(&conns).await;
                }
                Ok(r)
            }
            Err(e) => {
                if link_failure(&e) {
                    self.forget(&conns).await;
                }
                Err(e)
            }
        }
    }
}
