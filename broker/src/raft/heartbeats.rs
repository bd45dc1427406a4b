//! What the quorum's leader has heard from brokers: the last heartbeat of each, by the
//! leader's clock. The controller's fencing decisions read it (`controller::fencing`);
//! nothing here is written to the metadata log, so heartbeats cost no log traffic.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One broker's last heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Beat {
    /// The broker's process incarnation.
    pub incarnation: i64,
    /// When it arrived (ms since the epoch, the receiver's clock).
    pub at_ms: i64,
    /// It asked to be fenced before stopping.
    pub shutting_down: bool,
}

/// Last heartbeat per broker id, shared by the controller listener and the controller.
#[derive(Debug, Clone, Default)]
pub struct Heartbeats {
    inner: Arc<Mutex<HashMap<i32, Beat>>>,
}

impl Heartbeats {
    /// Records a heartbeat.
    pub fn record(&self, broker: i32, beat: Beat) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(broker, beat);
    }

    /// A copy of what was heard.
    pub fn snapshot(&self) -> HashMap<i32, Beat> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
