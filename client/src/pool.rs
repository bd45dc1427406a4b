//! One connection per broker address, connected lazily and replaced when it breaks.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::ClientConfig;
use crate::connection::Connection;
use crate::error::Result;

/// Connections by `HOST:PORT`.
pub struct Pool {
    config: Arc<ClientConfig>,
    // Async mutex: held across the connect, so concurrent callers share one attempt.
    conns: tokio::sync::Mutex<HashMap<String, Arc<Connection>>>,
}

impl Pool {
    /// An empty pool.
    pub fn new(config: Arc<ClientConfig>) -> Self {
        Pool {
            config,
            conns: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The live connection to `addr`, connecting (again) if there is none.
    ///
    /// Cancellation safety: safe; dropping it changes nothing.
    pub async fn get(&self, addr: &str) -> Result<Arc<Connection>> {
        let mut conns = self.conns.lock().await;
        if let Some(c) = conns.get(addr) {
            if !c.is_closed() {
                return Ok(c.clone());
            }
        }
        let c = Arc::new(
            Connection::connect(
                addr,
                &self.config.client_id,
                self.config.connect_timeout,
                self.config.max_frame_bytes,
            )
            .await?,
        );
        conns.insert(addr.to_owned(), c.clone());
        Ok(c)
    }
}
