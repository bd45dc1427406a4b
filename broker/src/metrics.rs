//! Prometheus exporter: the `metrics` facade's values as text at `http://<addr>/metrics`.
//! Basic for now (connections, requests, bad frames, produced/fetched bytes); the
//! observability issue extends it.

use std::net::SocketAddr;

use metrics_exporter_prometheus::PrometheusBuilder;

/// Installs the global recorder and starts the HTTP listener on the current runtime.
pub fn install(addr: SocketAddr) -> Result<(), metrics_exporter_prometheus::BuildError> {
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()?;
    metrics::describe_gauge!("weir_connections", "open client connections");
    metrics::describe_counter!("weir_requests_total", "requests received");
    metrics::describe_counter!(
        "weir_bad_frames_total",
        "connections closed for a bad frame"
    );
    Ok(())
}
