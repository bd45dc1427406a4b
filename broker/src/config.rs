//! Broker configuration: `configs/single-node.toml` compiled in as the defaults, an optional
//! user file merged over it, then command-line flags. Unknown keys and values of the wrong
//! type are rejected naming the key; `validate` reports every bad value at once.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::{Table, Value};

use crate::storage::{CleanupPolicy, LogConfig};
use crate::topic_config::{parse_timestamp_type, TopicConfig};

/// The embedded default configuration.
pub const DEFAULT_TOML: &str = include_str!("../../configs/single-node.toml");

/// Why the configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// File.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// The file is not TOML.
    #[error("config file {} is not valid TOML: {source}", path.display())]
    Parse {
        /// File.
        path: PathBuf,
        /// Parser error.
        source: Box<toml::de::Error>,
    },
    /// One or more keys are unknown or have bad values (one message per key).
    #[error("invalid configuration:\n  {}", .0.join("\n  "))]
    Invalid(Vec<String>),
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct ServerConfig {
    pub node_id: i32,
    pub listen: String,
    /// Kafka wire-protocol listener; "" turns it off.
    pub kafka_listen: String,
    /// HOST:PORT Kafka clients are told to use (Metadata, FindCoordinator); "" = the bound
    /// address (127.0.0.1 when bound to 0.0.0.0).
    pub kafka_advertised_listen: String,
    pub metrics_listen: String,
    pub data_dir: PathBuf,
    pub max_frame_bytes: u64,
    pub max_in_flight_per_connection: u32,
    pub queued_max_request_bytes: u64,
    pub max_connections: u32,
    pub connections_max_idle_ms: u64,
    pub max_fetch_wait_ms: u64,
    pub fetch_max_bytes: u64,
    pub fetch_zero_copy: bool,
    pub shutdown_grace_ms: u64,
}

/// `[topics]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct TopicsConfig {
    pub default_partitions: i32,
    pub default_replication_factor: i32,
    pub auto_create: bool,
}

/// `[log]`: broker-wide defaults for partition logs, plus background-task schedules.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct LogSection {
    pub segment_bytes: u64,
    pub segment_ms: i64,
    pub segment_index_bytes: u32,
    pub index_interval_bytes: u32,
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub cleanup_policy: String,
    pub flush_messages: u64,
    pub flush_ms: i64,
    pub max_message_bytes: u32,
    pub message_timestamp_type: String,
    pub delete_retention_ms: i64,
    pub min_compaction_lag_ms: i64,
    pub min_cleanable_dirty_ratio: f64,
    pub preallocate: bool,
    pub min_insync_replicas: i32,
    pub retention_check_interval_ms: u64,
    pub flush_scheduler_interval_ms: u64,
    pub cleaner_enabled: bool,
    pub cleaner_backoff_ms: u64,
    pub cleaner_dedupe_buffer_bytes: u64,
}

/// `[metrics]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct MetricsConfig {
    pub enabled: bool,
    pub lag_refresh_interval_ms: u64,
    pub max_partition_series: u64,
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Config {
    pub server: ServerConfig,
    pub topics: TopicsConfig,
    pub log: LogSection,
    pub metrics: MetricsConfig,
    pub groups: GroupsSection,
    pub cluster: ClusterSection,
}

/// `[groups]`: the consumer-group coordinator.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct GroupsSection {
    pub offsets_topic_partitions: i32,
    pub offsets_topic_replication_factor: i32,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub initial_rebalance_delay_ms: i64,
    pub max_size: u32,
    pub offset_metadata_max_bytes: u32,
    pub consumer_heartbeat_interval_ms: i32,
    pub consumer_session_timeout_ms: i32,
}

/// `[cluster]`: the metadata quorum. Empty `voters` is a single node (a quorum of itself).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct ClusterSection {
    pub voters: String,
    pub controller_listen: String,
    pub advertised_listen: String,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    pub heartbeat_interval_ms: u64,
    pub broker_heartbeat_interval_ms: u64,
    pub broker_session_timeout_ms: u64,
    pub auto_leader_rebalance_enable: bool,
    pub leader_imbalance_check_interval_ms: u64,
    pub leader_imbalance_per_broker_percentage: u32,
    pub metadata_snapshot_after_entries: u64,
    pub replica_lag_time_max_ms: u64,
    pub replica_fetch_wait_max_ms: u64,
    pub replica_high_watermark_checkpoint_interval_ms: u64,
    /// `FROM=TO,...`: dial TO whenever a peer is reached at FROM (see [`crate::dial`]).
    pub dial_overrides: String,
}

impl ClusterSection {
    /// Whether this broker is one voter among several.
    pub fn is_cluster(&self) -> bool {
        !self.voters.trim().is_empty()
    }
}

/// Values given on the command line; `None` keeps the file's value.
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
    pub kafka_listen: Option<String>,
    pub metrics_listen: Option<String>,
    pub node_id: Option<i32>,
    pub voters: Option<String>,
    pub controller_listen: Option<String>,
    pub advertised_listen: Option<String>,
}

impl Config {
    /// Defaults, merged with `file` if given, then `overrides`; validated.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let user = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                Some(parse_table(&text, path)?)
            }
            None => None,
        };
        Config::from_tables(user, overrides)
    }

    /// Like [`Config::load`] with the user file's text instead of its path.
    pub fn from_toml_str(text: &str, overrides: &Overrides) -> Result<Config, ConfigError> {
        let user = parse_table(text, Path::new("<string>"))?;
        Config::from_tables(Some(user), overrides)
    }

    fn from_tables(user: Option<Table>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let mut merged = parse_table(DEFAULT_TOML, Path::new("<embedded defaults>"))?;
        if let Some(user) = user {
            let mut problems = Vec::new();
            merge(&mut merged, user, "", &mut problems);
            if !problems.is_empty() {
                return Err(ConfigError::Invalid(problems));
            }
        }
        let mut config: Config = Value::Table(merged)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(vec![e.to_string()]))?;
        if let Some(d) = &overrides.data_dir {
            config.server.data_dir = d.clone();
        }
        if let Some(l) = &overrides.listen {
            config.server.listen = l.clone();
        }
        if let Some(k) = &overrides.kafka_listen {
            config.server.kafka_listen = k.clone();
        }
        if let Some(m) = &overrides.metrics_listen {
            config.server.metrics_listen = m.clone();
        }
        if let Some(n) = overrides.node_id {
            config.server.node_id = n;
        }
        if let Some(v) = &overrides.voters {
            config.cluster.voters = v.clone();
        }
        if let Some(c) = &overrides.controller_listen {
            config.cluster.controller_listen = c.clone();
        }
        if let Some(a) = &overrides.advertised_listen {
            config.cluster.advertised_listen = a.clone();
        }
        config.validate()?;
        Ok(config)
    }

    fn validate_cluster(&self, bad: &mut Vec<String>) {
        let c = &self.cluster;
        if !c.advertised_listen.is_empty() && !is_host_port(&c.advertised_listen) {
            bad.push(format!(
                "cluster.advertised_listen: {:?} is not HOST:PORT",
                c.advertised_listen
            ));
        }
        if let Err(e) = crate::dial::parse(&c.dial_overrides) {
            bad.push(format!("cluster.dial_overrides: {e}"));
        }
        if c.election_timeout_min_ms <= c.heartbeat_interval_ms
            || c.election_timeout_max_ms <= c.election_timeout_min_ms
        {
            bad.push(
                "cluster.election_timeout_min_ms/max_ms: need heartbeat_interval_ms < min < max"
                    .to_string(),
            );
        }
        if c.broker_heartbeat_interval_ms == 0
            || c.broker_session_timeout_ms <= c.broker_heartbeat_interval_ms
        {
            bad.push(
                "cluster.broker_session_timeout_ms: must exceed broker_heartbeat_interval_ms (> 0)"
                    .to_string(),
            );
        }
        if c.replica_lag_time_max_ms == 0
            || c.replica_fetch_wait_max_ms == 0
            || c.replica_high_watermark_checkpoint_interval_ms == 0
        {
            bad.push(
                "cluster.replica_lag_time_max_ms/replica_fetch_wait_max_ms/replica_high_watermark_checkpoint_interval_ms: must be >= 1"
                    .to_string(),
            );
        }
        if c.metadata_snapshot_after_entries == 0 {
            bad.push("cluster.metadata_snapshot_after_entries: must be >= 1".to_string());
        }
        if c.leader_imbalance_check_interval_ms == 0
            || c.leader_imbalance_per_broker_percentage > 100
        {
            bad.push(
                "cluster.leader_imbalance_check_interval_ms/leader_imbalance_per_broker_percentage: need an interval > 0 and a percentage <= 100"
                    .to_string(),
            );
        }
        if !c.is_cluster() {
            return;
        }
        let me = u64::try_from(self.server.node_id).unwrap_or(u64::MAX);
        match crate::raft::voters::parse_voters(&c.voters, me) {
            Err(e) => bad.push(e.to_string()),
            Ok(voters) => {
                if c.controller_listen.parse::<SocketAddr>().is_err() {
                    bad.push(format!(
                        "cluster.controller_listen: {:?} is not HOST:PORT (required with cluster.voters)",
                        c.controller_listen
                    ));
                } else if voters.get(&me) != Some(&c.controller_listen) {
                    bad.push(format!(
                        "cluster.controller_listen {:?} differs from this node's entry in cluster.voters ({:?})",
                        c.controller_listen,
                        voters.get(&me)
                    ));
                }
            }
        }
    }

    /// Checks every value; the error lists each bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut bad = Vec::new();
        let s = &self.server;
        if s.node_id < 0 {
            bad.push("server.node_id: must be >= 0".to_string());
        }
        if s.listen.parse::<SocketAddr>().is_err() {
            bad.push(format!("server.listen: {:?} is not HOST:PORT", s.listen));
        }
        if !s.kafka_listen.is_empty() && s.kafka_listen.parse::<SocketAddr>().is_err() {
            bad.push(format!(
                "server.kafka_listen: {:?} is not HOST:PORT (or \"\" for off)",
                s.kafka_listen
            ));
        }
        if !s.kafka_advertised_listen.is_empty()
            && crate::kafka::split_host_port(&s.kafka_advertised_listen).is_none()
        {
            bad.push(format!(
                "server.kafka_advertised_listen: {:?} is not HOST:PORT",
                s.kafka_advertised_listen
            ));
        }
        if s.metrics_listen.parse::<SocketAddr>().is_err() {
            bad.push(format!(
                "server.metrics_listen: {:?} is not HOST:PORT",
                s.metrics_listen
            ));
        }
        if s.max_frame_bytes < 1024 || s.max_frame_bytes > u64::from(u32::MAX) {
            bad.push("server.max_frame_bytes: must lie in [1024, 4294967295]".to_string());
        }
        if s.max_in_flight_per_connection == 0 {
            bad.push("server.max_in_flight_per_connection: must be >= 1".to_string());
        }
        if s.connections_max_idle_ms == 0 {
            bad.push("server.connections_max_idle_ms: must be >= 1".to_string());
        }
        if s.queued_max_request_bytes < 1024 * 1024 {
            bad.push("server.queued_max_request_bytes: must be >= 1048576".to_string());
        }
        if s.fetch_max_bytes < 1024 {
            bad.push("server.fetch_max_bytes: must be >= 1024".to_string());
        }
        if s.max_connections == 0 {
            bad.push("server.max_connections: must be >= 1".to_string());
        }
        self.validate_cluster(&mut bad);
        if self.topics.default_partitions < 1 {
            bad.push("topics.default_partitions: must be >= 1".to_string());
        }
        if self.topics.default_replication_factor < 1 {
            bad.push("topics.default_replication_factor: must be >= 1".to_string());
        }
        let l = &self.log;
        if CleanupPolicy::parse(&l.cleanup_policy).is_err() {
            bad.push(format!(
                "log.cleanup_policy: {:?} is not delete, compact or compact,delete",
                l.cleanup_policy
            ));
        }
        if parse_timestamp_type(&l.message_timestamp_type).is_none() {
            bad.push(format!(
                "log.message_timestamp_type: {:?} is not CreateTime or LogAppendTime",
                l.message_timestamp_type
            ));
        }
        if l.flush_ms < -1 {
            bad.push("log.flush_ms: must be >= -1".to_string());
        }
        if l.retention_ms < -1 {
            bad.push("log.retention_ms: must be >= -1".to_string());
        }
        if l.retention_bytes < -1 {
            bad.push("log.retention_bytes: must be >= -1".to_string());
        }
        if l.min_insync_replicas < 1 {
            bad.push("log.min_insync_replicas: must be >= 1".to_string());
        }
        for (key, v) in [
            ("retention_check_interval_ms", l.retention_check_interval_ms),
            ("flush_scheduler_interval_ms", l.flush_scheduler_interval_ms),
            ("cleaner_backoff_ms", l.cleaner_backoff_ms),
        ] {
            if v == 0 {
                bad.push(format!("log.{key}: must be >= 1"));
            }
        }
        let g = &self.groups;
        if g.offsets_topic_partitions < 1 {
            bad.push("groups.offsets_topic_partitions: must be >= 1".to_string());
        }
        if g.offsets_topic_replication_factor < 1 {
            bad.push("groups.offsets_topic_replication_factor: must be >= 1".to_string());
        }
        if g.min_session_timeout_ms < 1 || g.max_session_timeout_ms < g.min_session_timeout_ms {
            bad.push(
                "groups.min_session_timeout_ms/max_session_timeout_ms: need 1 <= min <= max"
                    .to_string(),
            );
        }
        if g.initial_rebalance_delay_ms < 0 {
            bad.push("groups.initial_rebalance_delay_ms: must be >= 0".to_string());
        }
        if g.max_size == 0 {
            bad.push("groups.max_size: must be >= 1".to_string());
        }
        if g.consumer_heartbeat_interval_ms < 1
            || g.consumer_session_timeout_ms <= g.consumer_heartbeat_interval_ms
        {
            bad.push(
                "groups.consumer_heartbeat_interval_ms/consumer_session_timeout_ms: need \
                 1 <= interval < session timeout"
                    .to_string(),
            );
        }
        if self.metrics.lag_refresh_interval_ms == 0 {
            bad.push("metrics.lag_refresh_interval_ms: must be >= 1".to_string());
        }
        if bad.is_empty() {
            if let Err(e) = self.topic_defaults().log.validate() {
                bad.push(format!("log: {e}"));
            }
        }
        if bad.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(bad))
        }
    }

    /// The broker-wide topic defaults as a storage config (call after `validate`).
    pub fn topic_defaults(&self) -> TopicConfig {
        let l = &self.log;
        TopicConfig {
            log: LogConfig {
                segment_bytes: l.segment_bytes,
                segment_ms: l.segment_ms,
                segment_index_bytes: l.segment_index_bytes,
                index_interval_bytes: l.index_interval_bytes,
                retention_ms: l.retention_ms,
                retention_bytes: l.retention_bytes,
                cleanup_policy: CleanupPolicy::parse(&l.cleanup_policy).unwrap_or_default(),
                flush_messages: l.flush_messages.max(1),
                flush_ms: if l.flush_ms < 0 { i64::MAX } else { l.flush_ms },
                max_message_bytes: l.max_message_bytes,
                message_timestamp_type: parse_timestamp_type(&l.message_timestamp_type)
                    .unwrap_or(weir_protocol::batch::TimestampType::CreateTime),
                delete_retention_ms: l.delete_retention_ms,
                min_compaction_lag_ms: l.min_compaction_lag_ms,
                min_cleanable_dirty_ratio: l.min_cleanable_dirty_ratio,
                preallocate: l.preallocate,
            },
            min_insync_replicas: l.min_insync_replicas,
            unclean_leader_election: false,
            replication_throttled_rate: 0,
        }
    }
}

fn parse_table(text: &str, path: &Path) -> Result<Table, ConfigError> {
    text.parse::<Table>().map_err(|source| ConfigError::Parse {
        path: path.to_path_buf(),
        source: Box::new(source),
    })
}

/// Merges `user` over `base`. Every key must exist in the defaults with the same kind of
/// value (an integer is accepted where a float is expected).
fn merge(base: &mut Table, user: Table, prefix: &str, problems: &mut Vec<String>) {
    for (key, value) in user {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let Some(slot) = base.get_mut(&key) else {
            problems.push(format!("{path}: unknown config key"));
            continue;
        };
        match (slot, value) {
            (Value::Table(b), Value::Table(u)) => merge(b, u, &path, problems),
            (slot @ Value::Float(_), Value::Integer(i)) => *slot = Value::Float(i as f64),
            (slot, value) if slot.same_type(&value) => *slot = value,
            (slot, value) => problems.push(format!(
                "{path}: expected {}, got {}",
                slot.type_str(),
                value.type_str()
            )),
        }
    }
}

fn is_host_port(s: &str) -> bool {
    s.rsplit_once(':')
        .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {

    #[test]
    fn shipped_cluster_configs_are_valid() {
        for (n, text) in [
            (1, include_str!("../../configs/cluster/broker-1.toml")),
            (2, include_str!("../../configs/cluster/broker-2.toml")),
            (3, include_str!("../../configs/cluster/broker-3.toml")),
        ] {
            let c = Config::from_toml_str(text, &Overrides::default()).unwrap();
            assert_eq!(c.server.node_id, n);
            assert!(c.cluster.is_cluster());
        }
    }

    #[test]
    fn bad_cluster_settings_name_the_key() {
        for (toml, key) in [
            ("[cluster]\nvoters = \"0@127.0.0.1:1\"\n", "cluster.controller_listen"),
            ("[server]\nnode_id = 2\n[cluster]\nvoters = \"1@127.0.0.1:1\"\ncontroller_listen = \"127.0.0.1:1\"\n", "does not contain this node"),
            ("[cluster]\nvoters = \"0@127.0.0.1:1,0@127.0.0.1:2\"\ncontroller_listen = \"127.0.0.1:1\"\n", "listed twice"),
            ("[cluster]\nvoters = \"0@127.0.0.1:1\"\ncontroller_listen = \"127.0.0.1:2\"\n", "differs from this node's entry"),
            ("[cluster]\nadvertised_listen = \"nohost\"\n", "cluster.advertised_listen"),
            ("[cluster]\ndial_overrides = \"127.0.0.1:1\"\n", "cluster.dial_overrides"),
        ] {
            let err = Config::from_toml_str(toml, &Overrides::default()).unwrap_err().to_string();
            assert!(err.contains(key), "{toml}: {err}");
        }
    }
    use super::*;

    #[test]
    fn embedded_defaults_are_valid() {
        let c = Config::load(None, &Overrides::default()).unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:9292");
        assert_eq!(c.server.metrics_listen, "127.0.0.1:9293");
        assert_eq!(c.server.data_dir, PathBuf::from("./data"));
    }

    #[test]
    fn partial_file_and_flags_override() {
        let o = Overrides {
            listen: Some("127.0.0.1:0".into()),
            ..Default::default()
        };
        let c = Config::from_toml_str("[log]\nretention_ms = 5\n", &o).unwrap();
        assert_eq!(c.log.retention_ms, 5);
        assert_eq!(c.server.listen, "127.0.0.1:0");
        assert_eq!(c.log.segment_bytes, 1 << 30);
    }

    #[test]
    fn unknown_and_mistyped_keys_are_named() {
        let e = Config::from_toml_str(
            "[log]\nretention_mss = 5\nsegment_bytes = \"big\"\n[nope]\n",
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("log.retention_mss: unknown"), "{e}");
        assert!(e.contains("log.segment_bytes: expected integer"), "{e}");
        assert!(e.contains("nope: unknown"), "{e}");
    }

    #[test]
    fn bad_values_are_named() {
        let e = Config::from_toml_str(
            "[log]\ncleanup_policy = \"shred\"\n[server]\nlisten = \"nowhere\"\n",
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("log.cleanup_policy"), "{e}");
        assert!(e.contains("server.listen"), "{e}");
        let e = Config::from_toml_str("[log]\nsegment_bytes = 4294967296\n", &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("segment.bytes"), "{e}");
    }
}
