//! The Weir broker.
//!
//! Layout:
//! - [`config`]: TOML config (embedded `configs/single-node.toml` + file + flags);
//!   [`topic_config`]: topic-level keys under Kafka's dotted names.
//! - [`server`]: listener and per-connection pipeline (decode → handler → encode, in order).
//! - [`kafka`]: the Kafka wire-protocol listener, translating into the same handlers.
//! - [`handlers`]: one file per API and the single dispatch `match`.
//! - [`partition`]: a partition's log, leader epoch and high watermark; [`topics`]: the
//!   live topic table.
//! - [`controller`]: the one writer of metadata; [`metadata`]: the metadata log and image.
//! - [`storage`]: the storage types the broker uses (one place to swap implementations).
//! - [`flush_coordinator`]: the threads that fsync partitions for waiting producers.
//! - [`tasks`]: retention, flush and cleaner schedules. [`metrics`]: Prometheus endpoint and
//!   the lag/partition snapshot; [`instruments`]: metric names and recorders (facade only).
//! - [`clean_shutdown`]: the data directory's clean-shutdown marker.
//! - [`error`]: the one mapping from failures to protocol error codes.
//! - [`group`]: the consumer-group coordinator's pure logic (state machine, assignors,
//!   offsets, lag, `__consumer_offsets` records); [`coordinator`]: the service that owns
//!   the groups and their I/O.

// Tests may unwrap; the broker itself must not panic on anything a client or the disk
// can influence.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

pub mod applier;
pub mod clean_shutdown;
pub mod clock;
pub mod config;
pub mod controller;
pub mod coordinator;
pub mod ctx;
pub mod dial;
pub mod error;
pub mod flush_coordinator;
pub mod group;
pub mod handlers;
pub mod hw_checkpoint;
pub mod instruments;
pub mod kafka;
pub mod lock;
pub mod log_throttle;
pub mod meta_properties;
pub mod metadata;
pub mod metrics;
pub mod names;
pub mod parallel;
pub mod partition;
pub mod raft;
pub mod replica_set;
pub mod replication;
pub mod server;
pub mod storage;
pub mod tasks;
pub mod topic_config;
pub mod topics;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use config::Config;
use controller::{Controller, ControllerOpenError};
use ctx::BrokerCtx;

/// File in the data dir holding the bound listener address once the broker serves.
pub const ADDR_FILE: &str = "broker.addr";
/// File in the data dir holding the bound Kafka listener address (when it is on).
pub const KAFKA_ADDR_FILE: &str = "kafka.addr";
/// File in the data dir holding the bound metrics listener address.
pub const METRICS_ADDR_FILE: &str = "metrics.addr";

/// Why the broker could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// An I/O step failed.
    #[error("{what}: {source}")]
    Io {
        /// Which step.
        what: String,
        /// OS error.
        source: std::io::Error,
    },
    /// Metadata or partitions could not be opened.
    #[error(transparent)]
    Controller(#[from] ControllerOpenError),
    /// The data directory belongs to another node or its identity file is damaged.
    #[error(transparent)]
    MetaProperties(#[from] meta_properties::MetaPropertiesError),
    /// `__consumer_offsets` could not be prepared.
    #[error(transparent)]
    Groups(#[from] coordinator::OffsetsLogError),
    /// The metrics listener could not start.
    #[error("metrics exporter: {0}")]
    Metrics(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BrokerError {
    let what = what.into();
    move |source| BrokerError::Io { what, source }
}

/// Runs a broker until `shutdown` fires, then shuts down gracefully: stop accepting,
/// finish in-flight requests, flush and close every log.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), BrokerError> {
    let data_dir = config.server.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .map_err(io(format!("create data dir {}", data_dir.display())))?;
    let _lock = lock::DataDirLock::acquire(&data_dir).map_err(io("lock data dir"))?;
    // Validated by the config; installed before anything dials a peer.
    dial::install(dial::parse(&config.cluster.dial_overrides).unwrap_or_default());
    let identity = meta_properties::ensure(
        &data_dir,
        config.server.node_id,
        !config.cluster.is_cluster(),
    )?;

    // Before opening partitions, so recovery counters are recorded.
    let exporter = if config.metrics.enabled {
        Some(metrics::Exporter::install().map_err(|e| BrokerError::Metrics(e.to_string()))?)
    } else {
        None
    };
    let defaults = config.topic_defaults();
    let node_id = config.server.node_id;
    let settings = controller::ControllerSettings {
        default_partitions: config.topics.default_partitions,
        default_replication_factor: config.topics.default_replication_factor,
        ..Default::default()
    };
    let controller =
        Controller::open(node_id, &data_dir, defaults, settings, &config.cluster).await?;
    let controller = Arc::new(controller);
    // One cluster id for every member, from the quorum; a directory of another cluster is
    // refused before anything is served from it.
    let cluster_id = controller
        .settle_cluster_id(identity.cluster_id.clone())
        .await
        .map_err(|e| BrokerError::Io {
            what: "settle the cluster id with the quorum".into(),
            source: std::io::Error::other(e.message),
        })?;
    let identity = meta_properties::adopt_cluster_id(&data_dir, identity, &cluster_id)?;

    let g = &config.groups;
    let groups = coordinator::Coordinator::start(
        coordinator::CoordinatorConfig {
            offsets_topic_partitions: g.offsets_topic_partitions,
            group: group::GroupConfig {
                min_session_timeout_ms: g.min_session_timeout_ms,
                max_session_timeout_ms: g.max_session_timeout_ms,
                initial_rebalance_delay_ms: g.initial_rebalance_delay_ms,
                max_size: g.max_size as usize,
                offset_metadata_max_bytes: g.offset_metadata_max_bytes as usize,
                member_id_salt: format!("{:x}", clock::now_ms()),
                consumer_heartbeat_interval_ms: g.consumer_heartbeat_interval_ms,
                consumer_session_timeout_ms: g.consumer_session_timeout_ms,
            },
        },
        &controller,
        shutdown.clone(),
    )
    .await?;

    let listener = TcpListener::bind(&config.server.listen)
        .await
        .map_err(io(format!("listen on {}", config.server.listen)))?;
    let local = listener.local_addr().map_err(io("local address"))?;

    let (advertised_host, advertised_port) = match config.cluster.advertised_listen.rsplit_once(':')
    {
        // Validated as HOST:PORT by the config.
        Some((host, port)) => (host.to_string(), port.parse::<i32>().unwrap_or(0)),
        None if local.ip().is_unspecified() => ("127.0.0.1".to_string(), i32::from(local.port())),
        None => (local.ip().to_string(), i32::from(local.port())),
    };
    // Bound before registering, so the registration carries the Kafka address clients of
    // other brokers are sent to (a port of 0 is only known once bound). Connections wait
    // in the backlog until it serves, below.
    let kafka_listener = if config.server.kafka_listen.is_empty() {
        None
    } else {
        let s = &config.server;
        let listener = TcpListener::bind(&s.kafka_listen)
            .await
            .map_err(io(format!("listen on {} (kafka)", s.kafka_listen)))?;
        let bound = listener.local_addr().map_err(io("kafka local address"))?;
        let (host, port) =
            kafka::split_host_port(&s.kafka_advertised_listen).unwrap_or_else(|| {
                let host = if bound.ip().is_unspecified() {
                    "127.0.0.1".to_string()
                } else {
                    bound.ip().to_string()
                };
                (host, bound.port())
            });
        Some((listener, bound, host, i32::from(port)))
    };
    // Clients learn every broker's address from the metadata image.
    let kafka_advertised = kafka_listener
        .as_ref()
        .map(|(_, _, host, port)| (host.as_str(), *port));
    let incarnation = controller
        .register_broker(&advertised_host, advertised_port, kafka_advertised)
        .await
        .map_err(|e| BrokerError::Io {
            what: "register with the controller".into(),
            source: std::io::Error::other(e.message),
        })?;
    let ctx = Arc::new(BrokerCtx {
        node_id,
        advertised_host,
        advertised_port,
        cluster_id: identity.cluster_id.clone().unwrap_or(cluster_id),
        topics: controller.topics().clone(),
        groups,
        controller: controller.clone(),
        max_fetch_wait: Duration::from_millis(config.server.max_fetch_wait_ms),
        fetch_max_bytes: usize::try_from(config.server.fetch_max_bytes).unwrap_or(usize::MAX),
        fetch_zero_copy: config.server.fetch_zero_copy,
        auto_create_topics: config.topics.auto_create,
        shutdown: shutdown.clone(),
    });

    let l = &config.log;
    let topics = controller.topics().clone();
    let mut background = tokio::task::JoinSet::new();
    background.spawn(tasks::retention::run(
        topics.clone(),
        Duration::from_millis(l.retention_check_interval_ms),
        shutdown.clone(),
    ));
    background.spawn(tasks::flush::run(
        topics.clone(),
        Duration::from_millis(l.flush_scheduler_interval_ms),
        shutdown.clone(),
    ));
    if l.cleaner_enabled {
        background.spawn(tasks::cleaner::run(
            topics.clone(),
            Duration::from_millis(l.cleaner_backoff_ms),
            l.cleaner_dedupe_buffer_bytes,
            shutdown.clone(),
        ));
    }

    if let Some(exporter) = exporter {
        let m = &config.metrics;
        let addr: SocketAddr = config
            .server
            .metrics_listen
            .parse()
            .map_err(|e| BrokerError::Metrics(format!("server.metrics_listen: {e}")))?;
        let (listener, bound) = metrics::Exporter::bind(addr)
            .await
            .map_err(|e| BrokerError::Metrics(e.to_string()))?;
        write_file_atomic(&data_dir, METRICS_ADDR_FILE, &bound.to_string())?;
        tracing::info!(%bound, "metrics listening");
        let (e, t) = (exporter.clone(), topics.clone());
        let render: metrics::http::Render = Arc::new(move || e.render(&t));
        background.spawn(metrics::http::serve(listener, render, shutdown.clone()));
        background.spawn(tasks::metrics_refresh::run(
            exporter,
            topics.clone(),
            ctx.groups.clone(),
            Duration::from_millis(m.lag_refresh_interval_ms),
            usize::try_from(m.max_partition_series).unwrap_or(usize::MAX),
            shutdown.clone(),
        ));
    }

    // Replication: follow the partitions led elsewhere, and as leader keep the ISR
    // honest. A single node has neither followers nor leaders elsewhere.
    if config.cluster.is_cluster() {
        let c = &config.cluster;
        let mut fetch = replication::fetcher_settings(node_id);
        fetch.max_wait_ms = i32::try_from(c.replica_fetch_wait_max_ms).unwrap_or(500);
        background.spawn(replication::run(
            controller.clone(),
            fetch,
            shutdown.clone(),
        ));
        background.spawn(hw_checkpoint::run(
            controller.clone(),
            data_dir.clone(),
            Duration::from_millis(c.replica_high_watermark_checkpoint_interval_ms),
            shutdown.clone(),
        ));
        let lag = Duration::from_millis(c.replica_lag_time_max_ms);
        background.spawn(replication::isr::run(
            controller.clone(),
            lag,
            (lag / 2).min(Duration::from_millis(500)),
            shutdown.clone(),
        ));
    }

    // A cluster member heartbeats to the controller (and, as controller, fences, elects
    // and rebalances leaders); a single node has nobody to tell.
    let membership =
        config.cluster.is_cluster().then(|| {
            let c = &config.cluster;
            tokio::spawn(controller.clone().run_membership(
                incarnation,
                controller::MembershipSettings {
                    heartbeat_interval: Duration::from_millis(c.broker_heartbeat_interval_ms),
                    session_timeout: Duration::from_millis(c.broker_session_timeout_ms),
                    rebalance: c.auto_leader_rebalance_enable.then(|| {
                        controller::RebalanceSettings {
                            interval: Duration::from_millis(c.leader_imbalance_check_interval_ms),
                            threshold_percent: c.leader_imbalance_per_broker_percentage,
                        }
                    }),
                    offsets_topic: (
                        config.groups.offsets_topic_partitions,
                        config.groups.offsets_topic_replication_factor,
                    ),
                },
                shutdown.clone(),
            ))
        });

    let memory = server::RequestMemory::new(config.server.queued_max_request_bytes);
    let limits = server::ConnectionLimits {
        max_frame_bytes: usize::try_from(config.server.max_frame_bytes).unwrap_or(usize::MAX),
        max_in_flight: config.server.max_in_flight_per_connection as usize,
        max_idle: Duration::from_millis(config.server.connections_max_idle_ms),
    };
    let grace = Duration::from_millis(config.server.shutdown_grace_ms);
    let max_connections = config.server.max_connections as usize;
    if let Some((listener, bound, host, port)) = kafka_listener {
        let kctx = Arc::new(kafka::KafkaCtx {
            broker: ctx.clone(),
            advertised_host: host,
            advertised_port: port,
        });
        write_file_atomic(&data_dir, KAFKA_ADDR_FILE, &bound.to_string())?;
        tracing::info!(%bound, "kafka listener listening");
        background.spawn(kafka::run(
            listener,
            kctx,
            limits,
            memory.clone(),
            max_connections,
            grace,
            shutdown.clone(),
        ));
    }

    write_file_atomic(&data_dir, ADDR_FILE, &local.to_string())?;
    tracing::info!(%local, data_dir = %data_dir.display(), "weir broker listening");

    server::run(
        listener,
        ctx,
        limits,
        memory,
        max_connections,
        grace,
        shutdown.clone(),
    )
    .await;

    while background.join_next().await.is_some() {}
    if let Some(m) = membership {
        // The controlled shutdown: fenced, so leadership moves, before the logs close.
        let _ = m.await;
    }
    controller.close_all().await;
    let _ = std::fs::remove_file(data_dir.join(ADDR_FILE));
    let _ = std::fs::remove_file(data_dir.join(METRICS_ADDR_FILE));
    let _ = std::fs::remove_file(data_dir.join(KAFKA_ADDR_FILE));
    tracing::info!("weir broker stopped cleanly");
    Ok(())
}

/// Writes a file atomically (temp file + rename), so readers never see half of it.
fn write_file_atomic(dir: &Path, name: &str, text: &str) -> Result<(), BrokerError> {
    let tmp: PathBuf = dir.join(format!("{name}.tmp"));
    std::fs::write(&tmp, text).map_err(io(format!("write {name}")))?;
    std::fs::rename(&tmp, dir.join(name)).map_err(io(format!("rename {name}")))
}
