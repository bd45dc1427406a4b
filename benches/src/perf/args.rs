//! Command line of `weir-perf`.

use std::net::{IpAddr, ToSocketAddrs};
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use weir_client::config::parse_compression;
use weir_client::{Acks, Compression};

use super::error::{PerfError, Result};

/// Load generator for Weir and, for comparison, Redis Streams and NATS JetStream.
#[derive(Debug, Parser)]
#[command(name = "weir-perf", version)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Workload kinds.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Producers send records as fast as allowed; latency = send (intended) to ack.
    Produce(Args),
    /// One consumer reads the topic from the beginning; latency = wait per non-empty poll.
    Consume(Args),
    /// Producers and a consumer at once; latency = consumer receive - producer send time
    /// carried in the first 8 bytes of every value.
    EndToEnd(Args),
}

/// The system under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum System {
    /// Weir through weir-client.
    Weir,
    /// Redis Streams: pipelined XADD, XREAD.
    Redis,
    /// NATS JetStream through async-nats: async publish, pull consumer.
    Nats,
}

impl System {
    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            System::Weir => "weir",
            System::Redis => "redis",
            System::Nats => "nats",
        }
    }
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Human-readable lines.
    Text,
    /// One JSON object.
    Json,
}

/// Flags shared by every workload.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// System under test.
    #[arg(long, value_enum, default_value = "weir")]
    pub system: System,
    /// HOST:PORT of the server; loopback only.
    #[arg(long, default_value = "127.0.0.1:9292")]
    pub bootstrap: String,
    /// Topic (Redis: stream key prefix; NATS: stream name and subject prefix).
    #[arg(long, default_value = "weir-perf")]
    pub topic: String,
    /// Records to send or read, in total.
    #[arg(long, default_value_t = 1_000_000)]
    pub records: u64,
    /// Value size in bytes (at least 8 for end-to-end, which stamps the send time).
    #[arg(long, default_value_t = 100)]
    pub record_size: usize,
    /// Concurrent producers, each with its own connection.
    #[arg(long, default_value_t = 1)]
    pub producers: usize,
    /// Partitions of the topic when it is created (Redis: stream keys; NATS: subjects).
    #[arg(long, default_value_t = 1)]
    pub partitions: i32,
    /// Replication factor of the topic when it is created (Weir; -1: the broker's
    /// `topics.default_replication_factor`).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub replication_factor: i32,
    /// 0, 1 or all (Weir only: Redis and NATS acknowledge every write).
    #[arg(long, default_value = "1", value_parser = parse_acks)]
    pub acks: Acks,
    /// none, gzip, snappy, lz4 or zstd (Weir only).
    #[arg(long, default_value = "none", value_parser = parse_codec)]
    pub compression: Compression,
    /// zstd level with `--compression zstd` (Weir; Kafka's default is 3).
    #[arg(long, default_value_t = 3, allow_negative_numbers = true)]
    pub zstd_level: i32,
    /// Total records/s over all producers; latency then counts from the intended send time.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Upper bound on the run in seconds, whatever `--records` says.
    #[arg(long, default_value_t = 120.0)]
    pub duration: f64,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub output: Output,
    /// PID of the server, to report its CPU seconds per million records.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Label in the report (default: the subcommand).
    #[arg(long)]
    pub workload: Option<String>,
    /// Topic config on creation, KEY=VALUE, repeatable (Weir: e.g. flush.messages=1).
    #[arg(long = "topic-config", value_parser = parse_kv)]
    pub topic_configs: Vec<(String, String)>,
    /// Producer linger in ms (Weir).
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u64,
    /// Producer batch size in bytes (Weir; default: the client's).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Idempotent producer (Weir).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub idempotence: bool,
    /// end-to-end: write a per-second timeline (latency by send second, dirty and
    /// writeback page cache, server CPU) as JSON lines to this file.
    #[arg(long)]
    pub timeline: Option<std::path::PathBuf>,
    /// TCP connections to open to the server and leave idle for the whole run (a
    /// server's cost of many quiet clients).
    #[arg(long, default_value_t = 0)]
    pub idle_connections: usize,
    /// Weir consumers: most bytes one fetch asks of a partition (the client's
    /// `max.partition.fetch.bytes`, 1 MiB by default). To see whether a consume run is
    /// bound by the fetch round trip; the comparison runs leave it alone.
    #[arg(long)]
    pub fetch_partition_bytes: Option<usize>,
}

impl Args {
    /// The run's time bound.
    pub fn time_limit(&self) -> Duration {
        Duration::from_secs_f64(self.duration.clamp(0.1, 86_400.0))
    }

    /// Checks what clap cannot: loopback address, sizes, counts.
    pub fn validate(&self, end_to_end: bool) -> Result<()> {
        check_loopback(&self.bootstrap)?;
        if self.producers == 0 || self.producers > 256 {
            return Err(PerfError::Config("--producers must be 1..=256".into()));
        }
        if self.partitions < 1 {
            return Err(PerfError::Config("--partitions must be at least 1".into()));
        }
        if self.replication_factor == 0 || self.replication_factor < -1 {
            return Err(PerfError::Config(
                "--replication-factor must be -1 (broker default) or at least 1".into(),
            ));
        }
        if end_to_end && self.record_size < super::stamp::STAMP_LEN {
            return Err(PerfError::Config(
                "--record-size must be at least 8 for end-to-end (it carries the send time)".into(),
            ));
        }
        if self.idle_connections > 20_000 {
            return Err(PerfError::Config(
                "--idle-connections must be at most 20000".into(),
            ));
        }
        if self.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
            return Err(PerfError::Config("--rate must be positive".into()));
        }
        Ok(())
    }
}

fn parse_acks(s: &str) -> std::result::Result<Acks, String> {
    Acks::parse(s).ok_or_else(|| format!("acks must be 0, 1 or all, not {s:?}"))
}

fn parse_codec(s: &str) -> std::result::Result<Compression, String> {
    parse_compression(s).ok_or_else(|| format!("unknown compression {s:?}"))
}

fn parse_kv(s: &str) -> std::result::Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

/// Refuses any address that resolves outside 127.0.0.0/8 or ::1: a load tool must not
/// be pointed at someone else's server by accident.
pub fn check_loopback(bootstrap: &str) -> Result<()> {
    let mut any = false;
    for part in bootstrap
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let addrs = part
            .to_socket_addrs()
            .map_err(|e| PerfError::Config(format!("cannot resolve {part:?}: {e}")))?;
        for a in addrs {
            any = true;
            if !is_loopback(a.ip()) {
                return Err(PerfError::Config(format!(
                    "{part} resolves to {}, which is not loopback; weir-perf only drives local servers",
                    a.ip()
                )));
            }
        }
    }
    if !any {
        return Err(PerfError::Config(format!("no address in {bootstrap:?}")));
    }
    Ok(())
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v| v.is_loopback()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(argv: &[&str]) -> std::result::Result<Cli, clap::Error> {
        Cli::try_parse_from(argv)
    }

    #[test]
    fn parses_a_full_produce_line() {
        let cli = parse(&[
            "weir-perf",
            "produce",
            "--bootstrap",
            "127.0.0.1:1234",
            "--topic",
            "t",
            "--records",
            "5000",
            "--record-size",
            "1024",
            "--producers",
            "4",
            "--partitions",
            "8",
            "--replication-factor",
            "3",
            "--acks",
            "all",
            "--compression",
            "zstd",
            "--rate",
            "50000",
            "--duration",
            "30",
            "--output",
            "json",
            "--topic-config",
            "flush.messages=1",
        ]);
        let Ok(Cli {
            command: Command::Produce(a),
        }) = cli
        else {
            panic!("did not parse: {cli:?}");
        };
        assert_eq!(a.system, System::Weir);
        assert_eq!(
            (a.records, a.record_size, a.producers, a.partitions),
            (5000, 1024, 4, 8)
        );
        assert_eq!(a.replication_factor, 3);
        assert_eq!(a.acks, Acks::All);
        assert_eq!(a.compression, Compression::Zstd);
        assert_eq!(a.rate, Some(50_000.0));
        assert_eq!(a.output, Output::Json);
        assert_eq!(a.topic_configs, vec![("flush.messages".into(), "1".into())]);
        assert_eq!(a.time_limit(), Duration::from_secs(30));
        assert!(a.validate(true).is_ok());
    }

    #[test]
    fn rejects_bad_values() {
        assert!(parse(&["weir-perf", "produce", "--acks", "2"]).is_err());
        assert!(parse(&["weir-perf", "consume", "--compression", "brotli"]).is_err());
        assert!(parse(&["weir-perf", "produce", "--topic-config", "novalue"]).is_err());
        assert!(parse(&["weir-perf", "end-to-end", "--system", "kafka"]).is_err());
        let Ok(Cli {
            command: Command::EndToEnd(a),
        }) = parse(&[
            "weir-perf",
            "end-to-end",
            "--system",
            "nats",
            "--record-size",
            "4",
        ])
        else {
            panic!("end-to-end should parse");
        };
        assert!(a.validate(true).is_err());
        assert!(a.validate(false).is_ok());
        assert_eq!(a.replication_factor, -1);
        let Ok(Cli {
            command: Command::Produce(a),
        }) = parse(&["weir-perf", "produce", "--replication-factor", "0"])
        else {
            panic!("produce should parse");
        };
        assert!(a.validate(false).is_err());
    }

    #[test]
    fn only_loopback() {
        assert!(check_loopback("127.0.0.1:9092").is_ok());
        assert!(check_loopback("127.0.0.2:9092,[::1]:1").is_ok());
        assert!(check_loopback("localhost:9092").is_ok());
        assert!(check_loopback("10.0.0.1:9092").is_err());
        assert!(check_loopback("127.0.0.1:1,192.168.1.1:2").is_err());
        assert!(check_loopback("").is_err());
        assert!(check_loopback("nonsense").is_err());
    }
}
