//! Metrics: Prometheus text at `http://<server.metrics_listen>/metrics`.
//!
//! - [`names`] and [`recorders`] live in [`crate::instruments`] (facade only, so code
//!   that records does not depend on this aggregator); re-exported here.
//! - [`snapshot`]: group lag/offsets/members/state and per-partition families rendered
//!   from a periodic snapshot, so series of deleted groups and topics disappear (the
//!   exporter would keep them forever); [`collect`] takes that snapshot from the broker
//!   and renders per-topic throughput; [`process`]: memory, fds, uptime, build info.
//! - [`http`]: the endpoint; it concatenates the exporter's render with ours.
//!
//! `[metrics] enabled = false` installs no recorder and opens no listener; the recorders
//! then cost an atomic load each.

pub mod collect;
pub mod http;
pub mod process;
pub mod snapshot;
pub mod text;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

use crate::topics::Topics;

pub use crate::instruments::{names, recorders, Purgatory, RequestTimer};

/// Why the exporter could not start.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The recorder could not be built or installed (e.g. one already is).
    #[error("metrics recorder: {0}")]
    Recorder(#[from] metrics_exporter_prometheus::BuildError),
    /// The listener could not bind.
    #[error("metrics listener on {addr}: {source}")]
    Listen {
        /// Address.
        addr: SocketAddr,
        /// OS error.
        source: std::io::Error,
    },
}

/// The installed exporter: the recorder's handle plus the latest snapshot text.
#[derive(Clone)]
pub struct Exporter {
    handle: PrometheusHandle,
    snapshot: Arc<RwLock<Arc<str>>>,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter").finish_non_exhaustive()
    }
}

impl Exporter {
    /// Installs the global recorder with latency buckets and registers every handle.
    /// Call before anything records (partition recovery counts at start).
    pub fn install() -> Result<Exporter, MetricsError> {
        process::mark_start();
        let handle = PrometheusBuilder::new()
            .set_buckets(names::SECONDS_BUCKETS)?
            .install_recorder()?;
        names::describe_all();
        recorders::register();
        Ok(Exporter {
            handle,
            snapshot: Arc::new(RwLock::new(Arc::from(""))),
        })
    }

    /// Replaces the snapshot text (the refresh task) and runs the exporter's upkeep
    /// (histogram buffers are drained there).
    pub fn publish(&self, text: String) {
        let text: Arc<str> = Arc::from(text);
        match self.snapshot.write() {
            Ok(mut s) => *s = text,
            Err(p) => *p.into_inner() = text,
        }
        self.handle.run_upkeep();
    }

    /// The whole scrape body.
    pub fn render(&self, topics: &Topics) -> String {
        let mut out = self.handle.render();
        let snapshot = match self.snapshot.read() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        };
        out.push_str(&snapshot);
        let mut e = text::Exposition::default();
        collect::throughput(&mut e, topics);
        process::render(&mut e);
        out.push_str(&e.finish());
        out
    }

    /// Binds the listener; returns it with its bound address (port 0 picks one).
    pub async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), MetricsError> {
        let l = TcpListener::bind(addr)
            .await
            .map_err(|source| MetricsError::Listen { addr, source })?;
        let local = l
            .local_addr()
            .map_err(|source| MetricsError::Listen { addr, source })?;
        Ok((l, local))
    }
}
