//! One connection per broker address, connected lazily and replaced when it breaks, and
//! what the pool knows of each broker's health (for "any broker" requests).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::config::ClientConfig;
use crate::connection::Connection;
use crate::error::Result;

/// One broker address: its live connection, if any, and whether the last connect failed.
#[derive(Default)]
struct Slot {
    // std Mutex: held to read or swap the Arc, never across an await.
    conn: Mutex<Option<Arc<Connection>>>,
    // Async mutex: held across the connect, so concurrent callers share one attempt; per
    // address, so a broker that does not answer its connect delays no other broker.
    connecting: tokio::sync::Mutex<()>,
    connect_failed: AtomicBool,
}

impl Slot {
    fn live(&self) -> Option<Arc<Connection>> {
        let g = match self.conn.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        g.as_ref().filter(|c| !c.is_closed()).cloned()
    }

    fn set(&self, c: Arc<Connection>) {
        match self.conn.lock() {
            Ok(mut g) => *g = Some(c),
            Err(p) => *p.into_inner() = Some(c),
        }
    }
}

/// Connections by `HOST:PORT`.
pub struct Pool {
    config: Arc<ClientConfig>,
    // std Mutex: held only to find or add a slot.
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

impl Pool {
    /// An empty pool.
    pub fn new(config: Arc<ClientConfig>) -> Self {
        Pool {
            config,
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn slot(&self, addr: &str) -> Arc<Slot> {
        let mut slots = match self.slots.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        slots.entry(addr.to_owned()).or_default().clone()
    }

    /// The live connection to `addr`, connecting (again) if there is none.
    ///
    /// Cancellation safety: safe; dropping it changes nothing.
    pub async fn get(&self, addr: &str) -> Result<Arc<Connection>> {
        let slot = self.slot(addr);
        if let Some(c) = slot.live() {
            return Ok(c);
        }
        let _connecting = slot.connecting.lock().await;
        if let Some(c) = slot.live() {
            return Ok(c);
        }
        let connected = Connection::connect(
            addr,
            &self.config.client_id,
            self.config.connect_timeout,
            self.config.max_frame_bytes,
        )
        .await;
        slot.connect_failed
            .store(connected.is_err(), Ordering::Relaxed);
        let c = Arc::new(connected?);
        slot.set(c.clone());
        Ok(c)
    }

    /// Whether `addr` looks unreachable or stuck: its last connect failed, or a request on
    /// its connection timed out and nothing has answered since. Unknown addresses are not.
    pub fn is_suspect(&self, addr: &str) -> bool {
        let slot = {
            let slots = match self.slots.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            match slots.get(addr) {
                Some(s) => s.clone(),
                None => return false,
            }
        };
        slot.connect_failed.load(Ordering::Relaxed) || slot.live().is_some_and(|c| c.is_stalled())
    }
}
