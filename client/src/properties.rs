//! Settings from string properties, with Kafka's names where one exists
//! (`bootstrap.servers`, `linger.ms`, `group.id`, ...), so a program configured for a Kafka
//! client carries over. Each config type takes its own keys ([`ClientConfig::from_map`],
//! [`ProducerConfig::from_map`], [`ConsumerConfig::from_map`], [`GroupConfig::from_map`])
//! and rejects keys it does not know, naming them; [`Properties`] splits one map holding
//! keys of several types. `from_env` reads `WEIR_CLIENT_` variables:
//! `WEIR_CLIENT_LINGER_MS` is `linger.ms` (upper case, `.` as `_`); a misspelt one is an
//! error. `WEIR_BOOTSTRAP` also means `bootstrap.servers`, as for the CLI. (Other `WEIR_`
//! variables belong to the broker, benches and tests, hence the longer prefix.)
//!
//! Pure parsing: no I/O besides reading the environment in the `from_env` functions.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::{
    parse_compression, Acks, BufferFull, ClientConfig, ConsumerConfig, OffsetReset, ProducerConfig,
};
use crate::consumer::GroupConfig;
use crate::error::{Error, Result};

/// Which config a key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Client,
    Producer,
    Consumer,
    Group,
}

/// Every key, its scope, and what it sets (for error messages and docs).
const KEYS: &[(&str, Scope, &str)] = &[
    ("bootstrap.servers", Scope::Client, "HOST:PORT list"),
    ("client.id", Scope::Client, "name in broker logs"),
    ("request.timeout.ms", Scope::Client, "ms per response"),
    (
        "socket.connection.setup.timeout.ms",
        Scope::Client,
        "ms per TCP connect",
    ),
    ("retry.backoff.ms", Scope::Client, "ms before a retry"),
    (
        "metadata.max.age.ms",
        Scope::Client,
        "ms a metadata cache lives",
    ),
    ("max.frame.bytes", Scope::Client, "largest response frame"),
    ("linger.ms", Scope::Producer, "ms a batch waits for more"),
    ("batch.size", Scope::Producer, "bytes per batch"),
    (
        "compression.type",
        Scope::Producer,
        "none|gzip|snappy|lz4|zstd",
    ),
    ("acks", Scope::Producer, "0|1|all"),
    (
        "buffer.memory",
        Scope::Producer,
        "bytes of unacknowledged records",
    ),
    (
        "max.in.flight.requests.per.connection",
        Scope::Producer,
        "requests in flight",
    ),
    (
        "delivery.timeout.ms",
        Scope::Producer,
        "ms to acknowledge a record",
    ),
    ("enable.idempotence", Scope::Producer, "true|false"),
    (
        "buffer.full",
        Scope::Producer,
        "block|fail: what a send does when buffer.memory is used up",
    ),
    (
        "max.block.ms",
        Scope::Producer,
        "ms a send waits for buffer memory before failing",
    ),
    ("fetch.max.bytes", Scope::Consumer, "bytes per fetch"),
    (
        "max.partition.fetch.bytes",
        Scope::Consumer,
        "bytes per partition per fetch",
    ),
    (
        "fetch.max.wait.ms",
        Scope::Consumer,
        "ms a fetch waits for data",
    ),
    ("check.crcs", Scope::Consumer, "true|false"),
    ("auto.offset.reset", Scope::Consumer, "earliest|latest|none"),
    ("max.poll.records", Scope::Consumer, "records per poll"),
    (
        "max.buffered.bytes",
        Scope::Consumer,
        "bytes fetched ahead of poll",
    ),
    ("group.id", Scope::Group, "the group"),
    ("group.instance.id", Scope::Group, "static membership id"),
    ("session.timeout.ms", Scope::Group, "ms without heartbeat"),
    (
        "heartbeat.interval.ms",
        Scope::Group,
        "ms between heartbeats",
    ),
    ("max.poll.interval.ms", Scope::Group, "ms a rebalance waits"),
    ("enable.auto.commit", Scope::Group, "true|false"),
    (
        "auto.commit.interval.ms",
        Scope::Group,
        "ms between auto-commits",
    ),
    (
        "enable.auto.offset.store",
        Scope::Group,
        "true|false: commit positions, or only store_offset()",
    ),
    (
        "partition.assignment.strategy",
        Scope::Group,
        "sticky|cooperative-sticky|range|roundrobin",
    ),
];

fn scope_of(key: &str) -> Option<Scope> {
    KEYS.iter().find(|(k, _, _)| *k == key).map(|(_, s, _)| *s)
}

fn known_keys(scope: Scope) -> String {
    KEYS.iter()
        .filter(|(_, s, _)| *s == scope)
        .map(|(k, _, _)| *k)
        .collect::<Vec<_>>()
        .join(", ")
}

/// String properties by key, checked against the keys this crate knows.
///
/// ```
/// use weir_client::Properties;
/// let props = Properties::from_map([
///     ("bootstrap.servers", "127.0.0.1:9292"),
///     ("linger.ms", "0"),
///     ("group.id", "billing"),
///     ("enable.auto.commit", "false"),
/// ])?;
/// let client = props.client()?;
/// let producer = props.producer()?;
/// let group = props.group()?;
/// assert_eq!(group.auto_commit_interval, None);
/// assert!(Properties::from_map([("linger.msec", "0")]).is_err()); // names the bad key
/// # Ok::<(), weir_client::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Properties {
    map: BTreeMap<String, String>,
}

impl Properties {
    /// Properties from `(key, value)` pairs; an unknown key is an error naming it.
    pub fn from_map<I, K, V>(props: I) -> Result<Properties>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut map = BTreeMap::new();
        for (k, v) in props {
            let (k, v) = (k.as_ref().trim(), v.as_ref().trim());
            if scope_of(k).is_none() {
                return Err(Error::Config(format!(
                    "unknown property '{k}'; known: {}",
                    KEYS.iter()
                        .map(|(k, _, _)| *k)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            map.insert(k.to_owned(), v.to_owned());
        }
        Ok(Properties { map })
    }

    /// Properties from `WEIR_CLIENT_*` environment variables and `WEIR_BOOTSTRAP` (see
    /// the module docs); a `WEIR_CLIENT_` variable that names no property is an error.
    pub fn from_env() -> Result<Properties> {
        Self::from_vars(std::env::vars())
    }

    /// [`Properties::from_env`] over given variables (testable without touching the
    /// process environment).
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Properties> {
        let mut pairs = Vec::new();
        for (name, value) in vars {
            if name == "WEIR_BOOTSTRAP" {
                pairs.push(("bootstrap.servers".to_owned(), value));
                continue;
            }
            let Some(rest) = name.strip_prefix("WEIR_CLIENT_") else {
                continue;
            };
            let key = rest.to_ascii_lowercase().replace('_', ".");
            if scope_of(&key).is_none() {
                return Err(Error::Config(format!(
                    "environment variable {name} names no property ({key})"
                )));
            }
            pairs.push((key, value));
        }
        Properties::from_map(pairs)
    }

    /// Sets `key` (checked like [`Properties::from_map`]).
    pub fn set(mut self, key: &str, value: &str) -> Result<Properties> {
        let one = Properties::from_map([(key, value)])?;
        self.map.extend(one.map);
        Ok(self)
    }

    fn scoped(&self, scope: Scope) -> impl Iterator<Item = (&str, &str)> {
        self.map
            .iter()
            .filter(move |(k, _)| scope_of(k) == Some(scope))
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    fn only(&self, scope: Scope, what: &str) -> Result<()> {
        match self.map.keys().find(|k| scope_of(k) != Some(scope)) {
            Some(k) => Err(Error::Config(format!(
                "property '{k}' is not a {what} setting; {what} keys: {}",
                known_keys(scope)
            ))),
            None => Ok(()),
        }
    }

    /// The client settings (defaults for keys not given); `bootstrap.servers` is required.
    pub fn client(&self) -> Result<ClientConfig> {
        let servers = self.map.get("bootstrap.servers").ok_or_else(|| {
            Error::Config("bootstrap.servers is required (e.g. 127.0.0.1:9292)".into())
        })?;
        let mut c = ClientConfig::new(servers);
        for (k, v) in self.scoped(Scope::Client) {
            match k {
                "client.id" => c.client_id = v.to_owned(),
                "request.timeout.ms" => c.request_timeout = ms(k, v)?,
                "socket.connection.setup.timeout.ms" => c.connect_timeout = ms(k, v)?,
                "retry.backoff.ms" => c.retry_backoff = ms(k, v)?,
                "metadata.max.age.ms" => c.metadata_max_age = ms(k, v)?,
                "max.frame.bytes" => c.max_frame_bytes = number(k, v)?,
                _ => {}
            }
        }
        if c.bootstrap_servers.is_empty() {
            return Err(Error::NoBootstrap);
        }
        Ok(c)
    }

    /// The producer settings (defaults for keys not given).
    pub fn producer(&self) -> Result<ProducerConfig> {
        let mut p = ProducerConfig::default();
        for (k, v) in self.scoped(Scope::Producer) {
            match k {
                "linger.ms" => p.linger = ms(k, v)?,
                "batch.size" => p.batch_size = number(k, v)?,
                "compression.type" => {
                    p.compression = parse_compression(v)
                        .ok_or_else(|| bad(k, v, "none, gzip, snappy, lz4 or zstd"))?
                }
                "acks" => p.acks = Acks::parse(v).ok_or_else(|| bad(k, v, "0, 1 or all"))?,
                "buffer.memory" => p.buffer_memory = number(k, v)?,
                "max.in.flight.requests.per.connection" => p.max_in_flight = number(k, v)?,
                "delivery.timeout.ms" => p.delivery_timeout = ms(k, v)?,
                "enable.idempotence" => p.idempotence = boolean(k, v)?,
                "buffer.full" => {
                    p.buffer_full = match v {
                        "block" => BufferFull::Block,
                        "fail" => BufferFull::Fail,
                        _ => return Err(bad(k, v, "block or fail")),
                    }
                }
                "max.block.ms" => p.max_block = Some(ms(k, v)?),
                _ => {}
            }
        }
        Ok(p)
    }

    /// The consumer settings (defaults for keys not given).
    pub fn consumer(&self) -> Result<ConsumerConfig> {
        let mut c = ConsumerConfig::default();
        for (k, v) in self.scoped(Scope::Consumer) {
            match k {
                "fetch.max.bytes" => c.fetch_max_bytes = number(k, v)?,
                "max.partition.fetch.bytes" => c.partition_max_bytes = number(k, v)?,
                "fetch.max.wait.ms" => c.fetch_max_wait = ms(k, v)?,
                "check.crcs" => c.check_crcs = boolean(k, v)?,
                "auto.offset.reset" => {
                    c.auto_offset_reset = match v {
                        "earliest" => OffsetReset::Earliest,
                        "latest" => OffsetReset::Latest,
                        "none" => OffsetReset::Error,
                        _ => return Err(bad(k, v, "earliest, latest or none")),
                    }
                }
                "max.poll.records" => c.max_poll_records = number(k, v)?,
                "max.buffered.bytes" => c.max_buffered_bytes = number(k, v)?,
                _ => {}
            }
        }
        Ok(c)
    }

    /// The group settings; `group.id` is required.
    pub fn group(&self) -> Result<GroupConfig> {
        let id = self
            .map
            .get("group.id")
            .ok_or_else(|| Error::Config("group.id is required for a group consumer".into()))?;
        let mut g = GroupConfig::new(id);
        let mut auto_commit = true;
        for (k, v) in self.scoped(Scope::Group) {
            match k {
                "group.instance.id" => g.instance_id = Some(v.to_owned()),
                "session.timeout.ms" => g.session_timeout = ms(k, v)?,
                "heartbeat.interval.ms" => g.heartbeat_interval = ms(k, v)?,
                "max.poll.interval.ms" => g.rebalance_timeout = ms(k, v)?,
                "enable.auto.commit" => auto_commit = boolean(k, v)?,
                "auto.commit.interval.ms" => g.auto_commit_interval = Some(ms(k, v)?),
                "enable.auto.offset.store" => g.auto_offset_store = boolean(k, v)?,
                "partition.assignment.strategy" => {
                    g.assignor = match v {
                        "sticky" | "cooperative-sticky" => "sticky",
                        "range" => "range",
                        "roundrobin" => "roundrobin",
                        _ => {
                            return Err(bad(
                                k,
                                v,
                                "sticky, cooperative-sticky, range or roundrobin",
                            ))
                        }
                    }
                    .to_owned()
                }
                _ => {}
            }
        }
        if !auto_commit {
            g.auto_commit_interval = None;
        }
        Ok(g)
    }
}

fn bad(key: &str, value: &str, want: &str) -> Error {
    Error::Config(format!("{key}={value:?} is invalid; use {want}"))
}

fn number<T: std::str::FromStr>(key: &str, value: &str) -> Result<T> {
    value
        .parse()
        .map_err(|_| bad(key, value, "a non-negative whole number"))
}

fn ms(key: &str, value: &str) -> Result<Duration> {
    number::<u64>(key, value).map(Duration::from_millis)
}

fn boolean(key: &str, value: &str) -> Result<bool> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(bad(key, value, "true or false")),
    }
}

macro_rules! from_props {
    ($ty:ty, $scope:expr, $what:literal, $build:ident) => {
        impl $ty {
            #[doc = concat!("Settings from Kafka-named properties (", $what, " keys only; see `weir_client::properties`); unknown keys are errors naming them.")]
            pub fn from_map<I, K, V>(props: I) -> Result<Self>
            where
                I: IntoIterator<Item = (K, V)>,
                K: AsRef<str>,
                V: AsRef<str>,
            {
                let p = Properties::from_map(props)?;
                p.only($scope, $what)?;
                p.$build()
            }

            #[doc = concat!("Settings from the ", $what, " keys among the `WEIR_CLIENT_*` environment variables (see `weir_client::properties`).")]
            pub fn from_env() -> Result<Self> {
                let all = Properties::from_env()?;
                let mine: Vec<(String, String)> = all
                    .scoped($scope)
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
                Properties::from_map(mine)?.$build()
            }
        }
    };
}

from_props!(ClientConfig, Scope::Client, "client", client);
from_props!(ProducerConfig, Scope::Producer, "producer", producer);
from_props!(ConsumerConfig, Scope::Consumer, "consumer", consumer);
from_props!(GroupConfig, Scope::Group, "group", group);

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn kafka_names_set_the_fields() {
        let c = ClientConfig::from_map([
            ("bootstrap.servers", "a:1, b:2"),
            ("client.id", "me"),
            ("request.timeout.ms", "1500"),
        ])
        .unwrap();
        assert_eq!(c.bootstrap_servers, vec!["a:1", "b:2"]);
        assert_eq!(c.client_id, "me");
        assert_eq!(c.request_timeout, Duration::from_millis(1500));
        let p = ProducerConfig::from_map([
            ("linger.ms", "0"),
            ("acks", "1"),
            ("compression.type", "zstd"),
            ("enable.idempotence", "false"),
            ("buffer.full", "fail"),
        ])
        .unwrap();
        assert_eq!(p.linger, Duration::ZERO);
        assert_eq!(p.acks, Acks::Leader);
        assert!(!p.idempotence);
        assert_eq!(p.buffer_full, BufferFull::Fail);
        let g = GroupConfig::from_map([
            ("group.id", "billing"),
            ("enable.auto.commit", "false"),
            ("partition.assignment.strategy", "range"),
        ])
        .unwrap();
        assert_eq!(g.group_id, "billing");
        assert_eq!(g.auto_commit_interval, None);
        assert_eq!(g.assignor, "range");
        let c = ConsumerConfig::from_map([
            ("auto.offset.reset", "earliest"),
            ("max.poll.records", "7"),
        ])
        .unwrap();
        assert_eq!(c.auto_offset_reset, OffsetReset::Earliest);
        assert_eq!(c.max_poll_records, 7);
    }

    #[test]
    fn unknown_and_misplaced_keys_are_named() {
        let e = ClientConfig::from_map([("bootstrap.servers", "a:1"), ("bootstrap.server", "x")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown property 'bootstrap.server'"), "{e}");
        let e = ClientConfig::from_map([("bootstrap.servers", "a:1"), ("linger.ms", "5")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("'linger.ms' is not a client setting"), "{e}");
        let e = ProducerConfig::from_map([("acks", "2")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("acks=\"2\" is invalid"), "{e}");
        assert!(GroupConfig::from_map([("session.timeout.ms", "1")]).is_err());
    }

    #[test]
    fn one_map_splits_into_the_configs() {
        let p = Properties::from_map([
            ("bootstrap.servers", "h:9"),
            ("linger.ms", "2"),
            ("group.id", "g"),
        ])
        .unwrap();
        assert_eq!(p.client().unwrap().bootstrap_servers, vec!["h:9"]);
        assert_eq!(p.producer().unwrap().linger, Duration::from_millis(2));
        assert_eq!(p.group().unwrap().group_id, "g");
    }

    #[test]
    fn environment_names_map_to_properties() {
        let vars = [
            ("WEIR_BOOTSTRAP", "h:1"),
            ("WEIR_CLIENT_LINGER_MS", "3"),
            ("WEIR_BENCH_DIR", "/tmp"),
            ("PATH", "/bin"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let p = Properties::from_vars(vars).unwrap();
        assert_eq!(p.client().unwrap().bootstrap_servers, vec!["h:1"]);
        assert_eq!(p.producer().unwrap().linger, Duration::from_millis(3));
        let typo = [("WEIR_CLIENT_LINGER_MX".to_owned(), "3".to_owned())];
        let e = Properties::from_vars(typo).unwrap_err().to_string();
        assert!(e.contains("WEIR_CLIENT_LINGER_MX"), "{e}");
    }
}
